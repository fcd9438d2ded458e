"""Map the top-level folders under the single ``llmcache`` package.

``operator`` is a standard-library module name, so ``operator/`` must never be importable
as a top-level package: it is ``llmcache.operator``, ``sidecar/`` is ``llmcache.sidecar``
and ``bench/`` is ``llmcache.bench``.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {
    "llmcache": "llmcache",
    "llmcache.sidecar": "sidecar",
    "llmcache.operator": "operator",
    "llmcache.bench": "bench",
}


def _packages() -> list[str]:
    found = []
    for name, root in ROOTS.items():
        for init in sorted(Path(root).rglob("__init__.py")):
            parts = init.parent.relative_to(root).parts
            found.append(".".join((name, *parts)))
    return found


setup(
    package_dir=ROOTS,
    packages=_packages(),
    package_data={"llmcache": ["py.typed"], "llmcache.sidecar.semantic": ["data/*.tsv"]},
)
