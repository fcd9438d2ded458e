"""A one-node Kubernetes cluster for tests: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler, containerd and a kubelet, all from a temporary directory, with a bridge network
of its own. Pods really run (runc), images come from local OCI archives (tests/node/images.sh).

Networking without kube-proxy, cluster DNS or IP forwarding:

- a bridge ``lc<id>`` holds the node's address (``.1`` of the pod /24) and, as a /32, the
  ``kubernetes`` Service's ClusterIP; kube-apiserver listens on that ClusterIP, so in-cluster
  clients (KUBERNETES_SERVICE_HOST) reach it as local delivery on the host;
- pods get a route to the Service range through the node's address and no default route; the
  bridge CNI plugin runs with ``isGateway: false`` (it would switch on ``ip_forward``);
- the API server calls webhooks at their Service's endpoints (``--enable-aggregator-routing``).

Teardown stops every process by PID (containerd's shims are found by the socket they were
given), unmounts what was mounted under the work directory, removes the bridge, the pods'
network namespaces and the kubelet's cgroups, and checks ``ip_forward`` is as it was found.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.kube.kubeutil import (
    ApiError,
    CertAuthority,
    Daemon,
    KubeClient,
    binaries_dir,
    wait_for,
    write_kubeconfig,
    write_pair,
)
from tests.support import free_port

HERE = Path(__file__).resolve().parent
IMAGES_SCRIPT = HERE / "images.sh"
NODE_BINARIES = ("etcd", "kube-apiserver", "kubelet", "kube-scheduler", "kube-controller-manager")
HOST_TOOLS = {
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "ip": "iproute2",
    "buildah": "buildah",
    "mmdebstrap": "mmdebstrap",
}
CNI_DIR = Path("/usr/lib/cni")
CNI_PLUGINS = ("bridge", "host-local", "loopback")
NETNS_DIR = Path("/var/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
NODE_NAME = "llmcache-node"
PAUSE_IMAGE = "localhost/llmcache-test/pause:1"
SIDECAR_IMAGE = "localhost/llmcache:test"
OPERATOR_IMAGE = "localhost/llmcache:test-operator"
APP_IMAGE = "localhost/llmcache-test/app:1"


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run a node, each with how to get it."""
    missing: list[str] = []
    if os.geteuid() != 0:
        missing.append("root (containerd, runc and the kubelet mount and make network namespaces)")
    for tool, package in HOST_TOOLS.items():
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            missing.append(f"{tool} (apt-get install {package})")
    for plugin in CNI_PLUGINS:
        if not (CNI_DIR / plugin).exists():
            missing.append(f"{CNI_DIR / plugin} (apt-get install containernetworking-plugins)")
    if not Path("/bin/busybox").exists():
        missing.append("/bin/busybox (apt-get install busybox-static)")
    for binary in NODE_BINARIES:
        if not os.access(binaries_dir() / binary, os.X_OK):
            missing.append(f"{binaries_dir() / binary} (bash tests/controlplane/build.sh)")
    return missing


def run(*argv: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=timeout)


def build_images() -> Path:
    """tests/node/images.sh: the OCI archives (cached; rebuilt when llmcache's sources change)."""
    out = subprocess.run(["bash", str(IMAGES_SCRIPT)], capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"tests/node/images.sh failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- network


def _used_networks() -> list[ipaddress.IPv4Network]:
    used: list[ipaddress.IPv4Network] = []
    routes = json.loads(run("ip", "-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default" and ":" not in dst:
            with contextlib.suppress(ValueError):
                used.append(ipaddress.IPv4Network(dst, strict=False))
    for link in json.loads(run("ip", "-j", "-4", "addr").stdout or "[]"):
        for addr in link.get("addr_info", []):
            used.append(ipaddress.IPv4Interface(f"{addr['local']}/{addr['prefixlen']}").network)
    return used


def free_subnet() -> ipaddress.IPv4Network:
    """A /23 in 10.217.0.0/16 that no route or address on this host overlaps."""
    used = _used_networks()
    for candidate in ipaddress.IPv4Network("10.217.0.0/16").subnets(new_prefix=23):
        if not any(candidate.overlaps(u) for u in used if u.prefixlen > 0):
            return candidate
    raise RuntimeError("no free /23 in 10.217.0.0/16 for the test node's bridge")


@dataclass
class Bridge:
    """The node's bridge: pods in the lower /24, Services in the upper one."""

    name: str
    subnet: ipaddress.IPv4Network
    created: bool = False

    @property
    def pods(self) -> ipaddress.IPv4Network:
        return next(self.subnet.subnets(new_prefix=24))

    @property
    def services(self) -> ipaddress.IPv4Network:
        return list(self.subnet.subnets(new_prefix=24))[1]

    @property
    def node_ip(self) -> str:
        return str(self.pods.network_address + 1)

    @property
    def apiserver_ip(self) -> str:
        """The ``kubernetes`` Service's ClusterIP: the first address of the Service range."""
        return str(self.services.network_address + 1)

    def create(self) -> None:
        run("ip", "link", "add", self.name, "type", "bridge")
        self.created = True
        run("ip", "addr", "add", f"{self.node_ip}/{self.pods.prefixlen}", "dev", self.name)
        run("ip", "addr", "add", f"{self.apiserver_ip}/32", "dev", self.name)
        run("ip", "link", "set", self.name, "up")

    def delete(self) -> None:
        if self.created:
            run("ip", "link", "del", self.name, check=False)
            self.created = False

    def cni_config(self, ipam_dir: Path) -> dict[str, Any]:
        return {
            "cniVersion": "1.0.0",
            "name": f"llmcache-{self.name}",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": self.name,
                    # isGateway would turn on ip_forward for the whole host.
                    "isGateway": False,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [
                            [
                                {
                                    "subnet": str(self.pods),
                                    "rangeStart": str(self.pods.network_address + 10),
                                    "gateway": self.node_ip,
                                }
                            ]
                        ],
                        # The Service range only (the API server lives there): no default route.
                        "routes": [{"dst": str(self.services), "gw": self.node_ip}],
                        "dataDir": str(ipam_dir),
                    },
                }
            ],
        }


# --------------------------------------------------------------------------- mounts, cgroups


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` (deepest first), from /proc/self/mountinfo."""
    prefix = str(root.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> None:
    for _ in range(3):
        points = _mounts_under(root)
        if not points:
            return
        for point in points:
            run("umount", "--lazy", point, check=False)


def make_cgroups(name: str) -> None:
    """``/<name>`` in every cgroup v1 hierarchy: the kubelet's ``cgroupRoot`` must exist. A new
    cpuset cgroup starts with no CPUs or memory nodes: give it its parent's."""
    for hierarchy in CGROUP_ROOT.iterdir():
        if not (hierarchy / "cgroup.procs").exists():
            continue
        top = hierarchy / name
        top.mkdir(exist_ok=True)
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (top / knob).exists() and not (top / knob).read_text().strip():
                (top / knob).write_text((hierarchy / knob).read_text())


def remove_cgroups(name: str) -> None:
    """rmdir the kubelet's cgroup subtree ``/<name>`` in every v1 hierarchy, leaves first."""
    if not CGROUP_ROOT.is_dir():
        return
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / name
        if not top.is_dir():
            continue
        dirs = sorted(
            (Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True
        )
        for directory in dirs:
            with contextlib.suppress(OSError):
                directory.rmdir()


# --------------------------------------------------------------------------- the node


@dataclass
class Node:
    """The running one-node cluster. ``client()`` is an admin :class:`KubeClient`."""

    workdir: Path
    bridge: Bridge
    daemons: list[Daemon] = field(default_factory=list)
    server: str = ""
    admin_kubeconfig: Path = field(default_factory=Path)
    containerd_socket: Path = field(default_factory=Path)
    cgroup_root: str = ""
    _ca: CertAuthority | None = None
    _netns_before: set[str] = field(default_factory=set)
    _ip_forward: str = ""

    @classmethod
    @contextlib.contextmanager
    def running(cls, workdir: Path, images: Path, timeout: float = 180.0) -> Iterator[Node]:
        run_id = secrets.token_hex(3)
        node = cls(workdir=workdir, bridge=Bridge(f"lc{run_id}", free_subnet()))
        node.cgroup_root = f"llmcache-node-{run_id}"
        node._ip_forward = IP_FORWARD.read_text().strip()
        node._netns_before = set(os.listdir(NETNS_DIR)) if NETNS_DIR.is_dir() else set()
        try:
            node._start(images, time.monotonic() + timeout)
            yield node
        finally:
            node.stop()

    # ---- identities

    def kubeconfig_for(self, user: str, groups: tuple[str, ...] = ()) -> Path:
        assert self._ca is not None
        cert, key = self._ca.issue(user, organizations=groups)
        directory = self.workdir / "kubeconfigs"
        directory.mkdir(exist_ok=True)
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
        return write_kubeconfig(
            directory / f"{safe}.yaml", self.server, self._ca.cert_pem, cert, key, user
        )

    def client(self) -> KubeClient:
        return KubeClient(self.admin_kubeconfig)

    def logs(self, name: str, lines: int = 60) -> str:
        return next((d.tail(lines) for d in self.daemons if d.name == name), "")

    # ---- start-up

    def _daemon(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Daemon:
        base = {
            k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")
        }
        daemon = Daemon(name, args, self.workdir / f"{name}.log", {**base, **(env or {})})
        self.daemons.append(daemon)
        return daemon

    def _wait(self, daemon: Daemon, ready: Any, deadline: float) -> None:
        while not ready():
            if not daemon.alive():
                raise RuntimeError(
                    f"{daemon.name} exited {daemon.popen.returncode}:\n{daemon.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{daemon.name} not ready in time:\n{daemon.tail()}")
            time.sleep(0.2)

    def _start(self, images: Path, deadline: float) -> None:
        bins = binaries_dir()
        pki = self.workdir / "pki"
        pki.mkdir(parents=True)
        self._ca = ca = CertAuthority("llmcache-node-ca")
        ca_path = pki / "ca.crt"
        ca_path.write_bytes(ca.cert_pem)
        self.bridge.create()
        bridge = self.bridge

        # ---- etcd
        etcd_port, peer_port = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = self._daemon(
            "etcd",
            [
                str(bins / "etcd"),
                "--name=node",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=node=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait(etcd, lambda: _etcd_healthy(etcd_url), deadline)

        # ---- kube-apiserver on the kubernetes Service's ClusterIP
        serving = write_pair(
            pki,
            "apiserver",
            *ca.issue(
                "kube-apiserver",
                dns_names=["kubernetes", "kubernetes.default", "kubernetes.default.svc"],
                ip_addresses=[bridge.apiserver_ip],
            ),
        )
        kubelet_client = write_pair(
            pki, "apiserver-kubelet-client", *ca.issue("kube-apiserver", ["system:masters"])
        )
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(
            sa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self.server = f"https://{bridge.apiserver_ip}:443"
        apiserver = self._daemon(
            "kube-apiserver",
            [
                str(bins / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={serving[0]}",
                f"--tls-private-key-file={serving[1]}",
                f"--client-ca-file={ca_path}",
                f"--bind-address={bridge.apiserver_ip}",
                f"--advertise-address={bridge.apiserver_ip}",
                "--secure-port=443",
                f"--service-cluster-ip-range={bridge.services}",
                "--allow-privileged=true",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--kubelet-client-certificate={kubelet_client[0]}",
                f"--kubelet-client-key={kubelet_client[1]}",
                f"--kubelet-certificate-authority={ca_path}",
                "--kubelet-preferred-address-types=InternalIP",
                # Webhooks and aggregated APIs at their endpoints: there is no kube-proxy.
                "--enable-aggregator-routing=true",
                "--profiling=false",
            ],
        )
        self.admin_kubeconfig = self.kubeconfig_for("llmcache-node-admin", ("system:masters",))
        admin = KubeClient(self.admin_kubeconfig, timeout=5)

        def api_ready() -> bool:
            try:
                return bool(admin.request("GET", "/readyz") == "ok")
            except (ApiError, OSError):
                return False

        self._wait(apiserver, api_ready, deadline)

        # ---- controller-manager and scheduler (Deployments, StatefulSets, Endpoints, SAs)
        # One identity for every controller (no per-controller ServiceAccounts): it needs
        # more than the bootstrap role of system:kube-controller-manager grants.
        cm_kubeconfig = self.kubeconfig_for("system:kube-controller-manager", ("system:masters",))
        self._daemon(
            "kube-controller-manager",
            [
                str(bins / "kube-controller-manager"),
                f"--kubeconfig={cm_kubeconfig}",
                f"--authentication-kubeconfig={cm_kubeconfig}",
                f"--authorization-kubeconfig={cm_kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                f"--cert-dir={self.workdir / 'kcm'}",
                f"--root-ca-file={ca_path}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={bridge.services}",
                "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle-controller",
            ],
        )
        sched_kubeconfig = self.kubeconfig_for("system:kube-scheduler")
        self._daemon(
            "kube-scheduler",
            [
                str(bins / "kube-scheduler"),
                f"--kubeconfig={sched_kubeconfig}",
                f"--authentication-kubeconfig={sched_kubeconfig}",
                f"--authorization-kubeconfig={sched_kubeconfig}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
            ],
        )

        # ---- containerd with its own root, state, socket and CNI configuration
        cdir = self.workdir / "containerd"
        cni_conf = self.workdir / "cni" / "net.d"
        cni_conf.mkdir(parents=True)
        (cni_conf / "10-llmcache.conflist").write_text(
            json.dumps(bridge.cni_config(self.workdir / "cni" / "ipam"), indent=2)
        )
        self.containerd_socket = cdir / "containerd.sock"
        (cdir).mkdir()
        (cdir / "config.toml").write_text(
            CONTAINERD_CONFIG.format(
                root=cdir / "root",
                state=cdir / "state",
                socket=self.containerd_socket,
                pause=PAUSE_IMAGE,
                cni_bin=CNI_DIR,
                cni_conf=cni_conf,
            )
        )
        containerd = self._daemon(
            "containerd", ["containerd", "--config", str(cdir / "config.toml")]
        )
        self._wait(containerd, lambda: self._ctr("version", check=False).returncode == 0, deadline)
        for archive in ("pause", "sidecar", "operator", "app"):
            self._ctr(
                "images", "import", "--no-unpack", str(images / f"{archive}.tar"), timeout=300
            )

        # ---- kubelet
        kubelet_dir = self.workdir / "kubelet"
        kubelet_dir.mkdir()
        make_cgroups(self.cgroup_root)
        kubelet_serving = write_pair(
            pki,
            "kubelet",
            *ca.issue(NODE_NAME, dns_names=[NODE_NAME], ip_addresses=[bridge.node_ip]),
        )
        kubelet_kubeconfig = self.kubeconfig_for(f"system:node:{NODE_NAME}", ("system:nodes",))
        resolv = self.workdir / "resolv.conf"
        resolv.write_text("# pods of the test node resolve names from /etc/hosts only\n")
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": bridge.node_ip,
            "port": free_port(),
            "readOnlyPort": 0,
            "healthzPort": 0,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(ca_path)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(kubelet_serving[0]),
            "tlsPrivateKeyFile": str(kubelet_serving[1]),
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            # cgroup v1 hosts: kubelet >= 1.35 refuses them unless told otherwise.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "cgroupRoot": f"/{self.cgroup_root}",
            "failSwapOn": False,
            "resolvConf": str(resolv),
            "podLogsDir": str(self.workdir / "pod-logs"),
            "evictionHard": {
                "memory.available": "1Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "serializeImagePulls": False,
            "registerNode": True,
            "syncFrequency": "5s",
            "fileCheckFrequency": "5s",
        }
        (kubelet_dir / "config.json").write_text(json.dumps(config))
        kubelet = self._daemon(
            "kubelet",
            [
                str(bins / "kubelet"),
                f"--config={kubelet_dir / 'config.json'}",
                f"--kubeconfig={kubelet_kubeconfig}",
                f"--root-dir={kubelet_dir}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={bridge.node_ip}",
                "--v=1",
            ],
            # No iptables on its PATH: the kubelet would add its canary chains to the host.
            env={"PATH": "/usr/local/bin:/usr/bin:/bin"},
        )

        def node_ready() -> bool:
            node = admin.get("v1", "Node", NODE_NAME)
            conditions = {
                c["type"]: c["status"]
                for c in ((node or {}).get("status") or {}).get("conditions", [])
            }
            return conditions.get("Ready") == "True"

        self._wait(kubelet, node_ready, deadline)
        # The default ServiceAccount and the root CA ConfigMap every pod mounts.
        wait_for(
            lambda: admin.get("v1", "ServiceAccount", "default", "default"),
            timeout=max(1.0, deadline - time.monotonic()),
            what="default ServiceAccount",
        )

    def _ctr(
        self, *args: str, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return run(
            "ctr",
            "--address",
            str(self.containerd_socket),
            "-n",
            "k8s.io",
            *args,
            check=check,
            timeout=timeout,
        )

    # ---- teardown

    def _shim_pids(self) -> list[int]:
        """containerd-shim processes started by this node's containerd (they name its socket)."""
        pids = []
        needle = str(self.containerd_socket).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if b"containerd-shim" in cmdline and needle in cmdline:
                    pids.append(int(entry.name))
        return pids

    def _cgroup_pids(self) -> set[int]:
        """Every process in the kubelet's cgroup subtree: the pods' containers."""
        pids: set[int] = set()
        top = CGROUP_ROOT / "pids" / self.cgroup_root
        if self.cgroup_root and top.is_dir():
            for directory, _, files in os.walk(top):
                if "cgroup.procs" in files:
                    with contextlib.suppress(OSError, ValueError):
                        text = (Path(directory) / "cgroup.procs").read_text()
                        pids.update(int(p) for p in text.split())
        return pids

    def stop(self) -> None:
        """Everything down, the host as it was."""
        kubelet = next((d for d in self.daemons if d.name == "kubelet"), None)
        if kubelet is not None:
            kubelet.stop()
        containerd = next((d for d in self.daemons if d.name == "containerd"), None)
        if containerd is not None and containerd.alive():
            tasks = self._ctr("tasks", "list", "--quiet", check=False).stdout.split()
            for task in tasks:
                self._ctr("tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False)
            for task in tasks:
                self._ctr("tasks", "delete", "--force", task, check=False)
        # Whatever is left in the pods' cgroups, then the shims, by PID.
        leftovers = self._cgroup_pids()
        shims = self._shim_pids()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()
        for pid in shims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        for pid in (*leftovers, *shims):
            _wait_gone(pid)
        if NETNS_DIR.is_dir():
            for name in set(os.listdir(NETNS_DIR)) - self._netns_before:
                if name.startswith("cni-"):
                    run("umount", "--lazy", str(NETNS_DIR / name), check=False)
                    with contextlib.suppress(OSError):
                        (NETNS_DIR / name).unlink()
        unmount_all(self.workdir)
        if not _mounts_under(self.workdir):
            # The unpacked images and pod volumes (about 1 GB); the daemons' logs stay.
            for bulky in ("containerd", "kubelet", "etcd"):
                shutil.rmtree(self.workdir / bulky, ignore_errors=True)
        self.bridge.delete()
        if self.cgroup_root:
            remove_cgroups(self.cgroup_root)
        now = IP_FORWARD.read_text().strip()
        if self._ip_forward and now != self._ip_forward:
            IP_FORWARD.write_text(self._ip_forward)
            raise AssertionError(f"net.ipv4.ip_forward changed {self._ip_forward} -> {now}")


def _wait_gone(pid: int, timeout: float = 10) -> None:
    proc = Path(f"/proc/{pid}")
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not proc.exists(), timeout, what=f"pid {pid} gone")


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


CONTAINERD_CONFIG = """\
version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause}"
  # No CAP_SYS_RESOURCE here: runc cannot lower oom_score_adj below the daemon's own.
  restrict_oom_score_adj = true
  enable_selinux = false
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{cni_bin}"
    conf_dir = "{cni_conf}"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
"""
