"""A real control plane for tests: certificates, etcd + kube-apiserver processes, kubeconfigs,
and a small synchronous API client (server-side apply, dry runs, waits).

The binaries come from ``tests/controlplane/build.sh``; nothing here is mocked. The client is
plain ``urllib`` with client certificates, so it needs no Kubernetes client library.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests import support
from tests.support import Proc, free_port

REPO = Path(__file__).resolve().parents[2]
CONTROLPLANE_SRC = REPO / "tests" / "controlplane"
BUILD_SCRIPT = CONTROLPLANE_SRC / "build.sh"

T = TypeVar("T")


# --------------------------------------------------------------------------- waiting


def wait_for(
    predicate: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1, what: str = ""
) -> T:
    """``tests.support.wait_for`` with the API server's slower pace as defaults."""
    return support.wait_for(predicate, timeout, interval, what)


# --------------------------------------------------------------------------- certificates


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertAuthority:
    """A throw-away CA that signs serving and client certificates (ECDSA P-256, one day)."""

    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def cert_pem(self) -> bytes:
        return _pem(self.cert)

    def issue(
        self,
        common_name: str,
        organizations: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> tuple[bytes, bytes]:
        """(cert PEM, key PEM). With SANs it is a serving certificate, else a client one.

        Kubernetes maps a client certificate's CN to the user name and each O to a group.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
        subject.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        serving = bool(dns_names or ip_addresses)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [
                        ExtendedKeyUsageOID.SERVER_AUTH
                        if serving
                        else ExtendedKeyUsageOID.CLIENT_AUTH
                    ]
                ),
                critical=False,
            )
        )
        if serving:
            sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
            sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return _pem(builder.sign(self.key, hashes.SHA256())), _key_pem(key)


def write_pair(directory: Path, name: str, cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(key_pem)
    key_path.chmod(0o600)
    return cert_path, key_path


def webhook_certs(directory: Path) -> tuple[bytes, Path, Path]:
    """A fresh CA and a serving certificate for 127.0.0.1/localhost: (ca_pem, cert, key).

    For an operator's webhook server on loopback; put ``ca_pem`` into the webhook
    configuration's ``caBundle`` (kopf: ``WebhookServer(cafile=..., certfile=..., pkeyfile=...)``).
    """
    ca = CertAuthority("llmcache-test-webhook-ca")
    cert, key = ca.issue("localhost", dns_names=["localhost"], ip_addresses=["127.0.0.1"])
    cert_path, key_path = write_pair(directory, "webhook", cert, key)
    (directory / "webhook-ca.crt").write_bytes(ca.cert_pem)
    return ca.cert_pem, cert_path, key_path


def service_account_identity(namespace: str, name: str) -> tuple[str, list[str]]:
    """User name and groups the API server gives a ServiceAccount (so RBAC bindings match)."""
    return (
        f"system:serviceaccount:{namespace}:{name}",
        ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
    )


def write_kubeconfig(
    path: Path, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str
) -> Path:
    """A self-contained kubeconfig (embedded ``-data`` fields) for one client certificate."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "llmcache-test",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)},
            }
        ],
        "contexts": [
            {"name": "llmcache-test", "context": {"cluster": "llmcache-test", "user": user}}
        ],
        "current-context": "llmcache-test",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# --------------------------------------------------------------------------- API client


class ApiError(Exception):
    """A non-2xx answer; ``message`` is the API server's own ``Status.message``."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.message = body.get("message", "") if isinstance(body, dict) else str(body)
        self.reason = body.get("reason", "") if isinstance(body, dict) else ""
        super().__init__(f"HTTP {status} {self.reason}: {self.message}")


class KubeClient:
    """Just enough of a Kubernetes client for tests: discovery, SSA, CRUD, dry runs."""

    def __init__(self, kubeconfig: Path, timeout: float = 30.0) -> None:
        config = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = config.get("current-context") or config["contexts"][0]["name"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in config["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        self.timeout = timeout
        self._scratch = tempfile.TemporaryDirectory(prefix="kubeclient-")
        scratch = Path(self._scratch.name)

        def material(entry: dict[str, Any], key: str) -> str | None:
            if entry.get(f"{key}-data"):
                target = scratch / key
                target.write_bytes(base64.b64decode(entry[f"{key}-data"]))
                return str(target)
            value = entry.get(key)
            return str(value) if value else None

        self.ssl = ssl.create_default_context(cafile=material(cluster, "certificate-authority"))
        cert, key = material(user, "client-certificate"), material(user, "client-key")
        if cert and key:
            self.ssl.load_cert_chain(cert, key)
        token = user.get("token") or (
            Path(user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None
        )
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}

    # ---- raw HTTP

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> Any:
        """JSON answer of one call; raises :class:`ApiError` for non-2xx answers."""
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        url = self.server + path + ("?" + urllib.parse.urlencode(query) if query else "")
        req = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={**self.headers, "Content-Type": content_type, "Accept": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=self.ssl, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                raise ApiError(err.code, json.loads(text)) from None
            except ValueError:
                raise ApiError(err.code, text.decode(errors="replace")) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode(errors="replace")

    # ---- discovery

    def resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        """(collection path, namespaced) of a kind, from discovery (refreshed on a miss)."""
        if (api_version, kind) not in self._resources:
            base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            listing = self.request("GET", base)
            for res in listing["resources"]:
                if "/" not in res["name"]:
                    self._resources[(api_version, res["kind"])] = (
                        f"{base}/{res['name']}",
                        bool(res["namespaced"]),
                    )
        if (api_version, kind) not in self._resources:
            raise KeyError(f"{kind} is not served in {api_version}")
        return self._resources[(api_version, kind)]

    def path(
        self, api_version: str, kind: str, name: str | None = None, namespace: str | None = None
    ) -> str:
        collection, namespaced = self.resource(api_version, kind)
        if namespaced:
            prefix, plural = collection.rsplit("/", 1)
            collection = f"{prefix}/namespaces/{namespace or 'default'}/{plural}"
        return f"{collection}/{name}" if name else collection

    def path_of(self, obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return self.path(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))

    # ---- verbs

    def apply(
        self,
        obj: dict[str, Any],
        dry_run: bool = False,
        field_manager: str = "llmcache-tests",
        force: bool = True,
        subresource: str = "",
    ) -> dict[str, Any]:
        """Server-side apply (``application/apply-patch+yaml``); ``dry_run`` → ``dryRun=All``."""
        query = {"fieldManager": field_manager, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        path = self.path_of(obj) + (f"/{subresource}" if subresource else "")
        result: dict[str, Any] = self.request(
            "PATCH", path, json.dumps(obj), "application/apply-patch+yaml", query
        )
        return result

    def apply_yaml(self, text_or_path: str | Path, dry_run: bool = False) -> list[dict[str, Any]]:
        """Apply every document of a YAML stream (file path or text), in order."""
        text = Path(text_or_path).read_text() if isinstance(text_or_path, Path) else text_or_path
        return [self.apply(doc, dry_run=dry_run) for doc in yaml.safe_load_all(text) if doc]

    def create(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], namespace=meta.get("namespace"))
        result: dict[str, Any] = self.request(
            "POST", path, obj, query={"dryRun": "All"} if dry_run else None
        )
        return result

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """The object, or ``None`` when it does not exist."""
        try:
            result: dict[str, Any] = self.request(
                "GET", self.path(api_version, kind, name, namespace)
            )
        except ApiError as err:
            if err.status == 404:
                return None
            raise
        return result

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": selector} if selector else None
        items: list[dict[str, Any]] = self.request(
            "GET", self.path(api_version, kind, namespace=namespace), query=query
        )["items"]
        return items

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: dict[str, Any],
        namespace: str | None = None,
        subresource: str = "",
    ) -> dict[str, Any]:
        path = self.path(api_version, kind, name, namespace) + (
            f"/{subresource}" if subresource else ""
        )
        result: dict[str, Any] = self.request("PATCH", path, patch, "application/merge-patch+json")
        return result

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete; ``False`` when it was already gone."""
        try:
            self.request("DELETE", self.path(api_version, kind, name, namespace))
        except ApiError as err:
            if err.status == 404:
                return False
            raise
        return True

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 30.0, what: str = ""
    ) -> T:
        return wait_for(predicate, timeout=timeout, what=what)

    def wait_established(self, crd_name: str, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until a CRD is Established, then forget cached discovery of its group."""

        def established() -> dict[str, Any] | None:
            crd = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd_name)
            conditions = {
                c["type"]: c["status"]
                for c in ((crd or {}).get("status") or {}).get("conditions") or []
            }
            return crd if conditions.get("Established") == "True" else None

        crd = wait_for(established, timeout=timeout, what=f"CRD {crd_name} Established")
        self._resources.clear()
        return crd

    def ensure_namespace(self, name: str) -> dict[str, Any]:
        return self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


# --------------------------------------------------------------------------- binaries


def versions() -> dict[str, str]:
    """KEY=VALUE pairs of tests/controlplane/versions.env (the pinned releases)."""
    pairs = {}
    for line in (CONTROLPLANE_SRC / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pairs[key] = value
    return pairs


def binaries_dir() -> Path:
    """Where build.sh puts the binaries (same rule as the script)."""
    override = os.environ.get("LLMCACHE_CONTROLPLANE_DIR")
    if override:
        return Path(override)
    version = versions()["KUBERNETES_VERSION"]
    return Path.home() / ".cache" / "llmcache" / "controlplane" / version


def missing_binaries() -> list[Path]:
    directory = binaries_dir()
    return [
        directory / b for b in ("etcd", "kube-apiserver") if not os.access(directory / b, os.X_OK)
    ]


# --------------------------------------------------------------------------- processes


class Daemon:
    """A long-running binary whose output goes to a log file (read back on failure)."""

    def __init__(self, name: str, args: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.popen = subprocess.Popen(
            list(args), stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, wait, then SIGKILL."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
        self._log.close()


def _clean_env() -> dict[str, str]:
    """No proxies: the API server must reach webhooks on 127.0.0.1 directly."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


# --------------------------------------------------------------------------- control plane


@dataclass
class ControlPlane:
    """etcd + kube-apiserver on loopback with throw-away data and certificates.

    ``kubeconfig_for(user, groups)`` issues a client certificate (CN=user, O=groups) so tests
    and operators run as any identity under real RBAC; the admin is in ``system:masters``.
    """

    workdir: Path
    binaries: Path
    apiserver_args: tuple[str, ...] = ()
    """Extra kube-apiserver flags (e.g. ``--watch-cache=false``)."""
    server: str = ""
    etcd_url: str = ""
    ca_path: Path = field(default_factory=Path)
    admin_kubeconfig: Path = field(default_factory=Path)
    daemons: list[Daemon] = field(default_factory=list)
    _ca: CertAuthority | None = None
    _kubeconfigs: dict[tuple[str, tuple[str, ...]], Path] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        binaries: Path,
        workdir: Path,
        timeout: float = 120.0,
        apiserver_args: Sequence[str] = (),
    ) -> ControlPlane:
        plane = cls(workdir=workdir, binaries=binaries, apiserver_args=tuple(apiserver_args))
        try:
            plane._start(timeout)
        except BaseException:
            plane.stop()
            raise
        return plane

    # ---- start-up

    def _start(self, timeout: float) -> None:
        pki = self.workdir / "pki"
        pki.mkdir(parents=True, exist_ok=True)
        self._ca = ca = CertAuthority("llmcache-test-ca")
        self.ca_path = pki / "ca.crt"
        self.ca_path.write_bytes(ca.cert_pem)
        serving_cert, serving_key = write_pair(
            pki,
            "apiserver",
            *ca.issue(
                "kube-apiserver",
                dns_names=[
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                ],
                ip_addresses=["127.0.0.1", "10.0.0.1"],
            ),
        )
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (pki / "sa.key").write_bytes(_key_pem(sa_key))
        (pki / "sa.pub").write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

        env = _clean_env()
        etcd_port, peer_port = free_port(), free_port()
        self.etcd_url = etcd_url = f"http://127.0.0.1:{etcd_port}"
        etcd = Daemon(
            "etcd",
            [
                str(self.binaries / "etcd"),
                "--name=test",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=test=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            self.workdir / "etcd.log",
            env,
        )
        self.daemons.append(etcd)
        deadline = time.monotonic() + timeout
        self._wait_ready(etcd, lambda: _etcd_healthy(etcd_url), deadline)

        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        apiserver = Daemon(
            "kube-apiserver",
            [
                str(self.binaries / "kube-apiserver"),
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={pki}",
                f"--tls-cert-file={serving_cert}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={self.ca_path}",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--allow-privileged=true",
                "--authorization-mode=RBAC",
                "--disable-admission-plugins=ServiceAccount",
                f"--service-account-issuer={self.server}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                *self.apiserver_args,
            ],
            self.workdir / "kube-apiserver.log",
            env,
        )
        self.daemons.append(apiserver)
        self.admin_kubeconfig = self.kubeconfig_for("llmcache-test-admin", ["system:masters"])
        admin = KubeClient(self.admin_kubeconfig, timeout=5)

        def ready() -> bool:
            try:
                return bool(admin.request("GET", "/readyz") == "ok")
            except (ApiError, OSError):
                return False

        self._wait_ready(apiserver, ready, deadline)

    def _wait_ready(self, daemon: Daemon, ready: Callable[[], bool], deadline: float) -> None:
        while not ready():
            if not daemon.alive():
                raise RuntimeError(
                    f"{daemon.name} exited with {daemon.popen.returncode}:\n{daemon.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{daemon.name} not ready in time:\n{daemon.tail()}")
            time.sleep(0.2)

    # ---- identities

    def kubeconfig_for(self, user: str, groups: Iterable[str] = ()) -> Path:
        """A kubeconfig authenticating as ``user`` in ``groups`` (cached per identity)."""
        assert self._ca is not None, "control plane not started"
        key = (user, tuple(groups))
        if key not in self._kubeconfigs:
            cert, pkey = self._ca.issue(user, organizations=key[1])
            directory = self.workdir / "kubeconfigs"
            directory.mkdir(exist_ok=True)
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in user)
            path = directory / f"{safe}-{len(self._kubeconfigs)}.yaml"
            self._kubeconfigs[key] = write_kubeconfig(
                path, self.server, self._ca.cert_pem, cert, pkey, user
            )
        return self._kubeconfigs[key]

    def kubeconfig_for_service_account(self, namespace: str, name: str) -> Path:
        """As ``system:serviceaccount:<namespace>:<name>``, which RBAC bindings to it match."""
        user, groups = service_account_identity(namespace, name)
        return self.kubeconfig_for(user, groups)

    def client(self, kubeconfig: Path | None = None) -> KubeClient:
        return KubeClient(kubeconfig or self.admin_kubeconfig)

    def compact_etcd(self) -> int:
        """Compact etcd's history up to its current revision (what the API server does every
        5 minutes), through etcd's JSON gateway: watches from older resourceVersions get
        410 Gone where the API server reads etcd's history. Returns that revision."""

        def post(path: str, body: dict[str, Any]) -> Any:
            request = urllib.request.Request(
                f"{self.etcd_url}/v3/kv/{path}", data=json.dumps(body).encode(), method="POST"
            )
            with urllib.request.urlopen(request, timeout=10) as resp:
                return json.loads(resp.read())

        revision = int(
            post("range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"]
        )
        post("compaction", {"revision": str(revision), "physical": True})
        return revision

    def logs(self, name: str = "kube-apiserver", lines: int = 60) -> str:
        return next(d.tail(lines) for d in self.daemons if d.name == name)

    # ---- teardown

    def stop(self) -> None:
        """API server first (it needs etcd to shut down cleanly), then etcd."""
        for daemon in reversed(self.daemons):
            daemon.stop()
        self.daemons.clear()


def _etcd_healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
            return bool(json.loads(resp.read()).get("health") == "true")
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- operators


OPERATOR_READY = r"listening on (http://\S+)"


def run_operator(
    kubeconfig: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready: str = OPERATOR_READY,
    count: int = 1,
    timeout: float = 60.0,
) -> Proc:
    """``llmcache operator <args>`` in a subprocess, authenticated by ``kubeconfig`` only.

    Waits for ``count`` lines matching ``ready``; stop it with ``proc.stop()``.
    """
    return run_python(["-m", "llmcache", "operator", *args], kubeconfig, env, ready, count, timeout)


def run_kopf(
    script: Path,
    kubeconfig: Path,
    *args: str,
    env: dict[str, str] | None = None,
    ready: str = r"(kopf-ready)",
    timeout: float = 60.0,
) -> Proc:
    """``kopf run --standalone <args> <script>`` in a subprocess as the kubeconfig's identity."""
    return run_python(
        ["-m", "kopf", "run", "--standalone", *args, str(script)],
        kubeconfig,
        env,
        ready,
        1,
        timeout,
    )


def run_python(
    argv: Sequence[str],
    kubeconfig: Path,
    env: dict[str, str] | None,
    ready: str,
    count: int,
    timeout: float,
) -> Proc:
    # Only the kubeconfig authenticates; no proxies between the child and the API server.
    child_env = {
        **_clean_env(),
        "KUBECONFIG": str(kubeconfig),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    return Proc(
        [sys.executable, *argv],
        env=child_env,
        ready=re.compile(ready),
        count=count,
        timeout=timeout,
    )
