"""Session fixture: one real node (tests/node/cluster.py) with the images of tests/node/images.sh.

Tests that use it are marked ``node`` automatically (``-m "not node"`` deselects them). When
selected on a machine that lacks what a node needs (root, containerd, runc, the CNI plugins,
buildah, mmdebstrap, the kubelet) they FAIL with how to get it: ``make system-deps controlplane``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.node.cluster import Node, build_images, missing_prerequisites


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "node" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.node)


@pytest.fixture(scope="session")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    missing = missing_prerequisites()
    if missing:
        pytest.fail(
            "a test node needs: " + "; ".join(missing) + ". `make system-deps controlplane` "
            "installs and builds all of it.",
            pytrace=False,
        )
    images = build_images()
    with Node.running(tmp_path_factory.mktemp("node"), images) as running:
        yield running
