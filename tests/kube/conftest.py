"""Session fixtures: one real etcd + kube-apiserver (built by tests/controlplane/build.sh).

Tests that use them are marked ``controlplane`` automatically, so ``-m "not controlplane"``
deselects them; when selected and the binaries are missing they FAIL with the build command.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kube.kubeutil import (
    BUILD_SCRIPT,
    ControlPlane,
    KubeClient,
    binaries_dir,
    missing_binaries,
)

FIXTURES = {"controlplane", "kubeconfig", "kube"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.controlplane)


@pytest.fixture(scope="session")
def controlplane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """The running control plane: ``server``, ``ca_path``, ``admin_kubeconfig``,
    ``kubeconfig_for(user, groups)``, ``kubeconfig_for_service_account(ns, name)``, ``client()``."""
    missing = missing_binaries()
    if missing:
        pytest.fail(
            f"control-plane binaries missing: {', '.join(map(str, missing))}. "
            f"Build them once with: bash {BUILD_SCRIPT.relative_to(BUILD_SCRIPT.parents[2])} "
            f"(or set LLMCACHE_CONTROLPLANE_DIR to a directory holding etcd and kube-apiserver).",
            pytrace=False,
        )
    plane = ControlPlane.start(binaries_dir(), tmp_path_factory.mktemp("controlplane"))
    yield plane
    plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(controlplane: ControlPlane) -> Path:
    """Path of the admin kubeconfig (client certificate in ``system:masters``)."""
    return controlplane.admin_kubeconfig


@pytest.fixture(scope="session")
def kube(controlplane: ControlPlane) -> KubeClient:
    """Admin API client (server-side apply, get, delete, dry runs)."""
    return controlplane.client()
