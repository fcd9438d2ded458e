"""How many threads the local embedding model and numpy's BLAS may use.

numpy's OpenBLAS starts one thread per core and spins them for every matrix product. Beside
a busy application on two cores, two threads made one embedding take 250 to 340 ms (over the
default 250 ms lookup deadline) where one thread took at most 29 ms, so the sidecar pins
the model to one thread by default (``--embed-threads``, ``LLMCACHE_EMBED_THREADS``). The
model runs on onnxruntime, which takes its count when it loads (``model_threads``); numpy's
BLAS still scores the semantic index and gets the same count.

Pinning BLAS works two ways: the ``*_NUM_THREADS`` variables, read once when the library
loads (so ``llmcache.cli`` sets them before any command imports numpy), and threadpoolctl,
which resizes the pools of libraries already loaded (the ``embed`` extra installs it).
This module imports no numpy, so it can run first.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

ENV = "LLMCACHE_EMBED_THREADS"
DEFAULT = 1
VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def configured(value: str | None = None) -> int:
    """The wanted thread count: ``value``, else ``LLMCACHE_EMBED_THREADS``, else 1."""
    raw = value if value is not None else os.environ.get(ENV)
    if raw is None or raw == "":
        return DEFAULT
    n = int(raw)
    if n < 1:
        raise ValueError(f"embedding threads must be at least 1, not {n}")
    return n


_pinned: int | None = None


def pin_before_import(n: int) -> None:
    """Set the BLAS/OpenMP thread variables (only a library loaded later reads them) and the
    count a model loaded later gets."""
    global _pinned
    _pinned = n
    for name in VARIABLES:
        os.environ[name] = str(n)


def pin_from_env() -> None:
    """``pin_before_import`` with ``LLMCACHE_EMBED_THREADS`` (or 1); a bad value is left for
    the command's own flag check to report."""
    try:
        n = configured()
    except ValueError:
        return
    pin_before_import(n)


def limit(n: int) -> int:
    """Pin the BLAS/OpenMP pools to ``n`` threads, loaded or not; return the pools' size."""
    pin_before_import(n)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        found = current()
        if found != n:
            log.warning(
                "BLAS already loaded with %d threads; install threadpoolctl (the `embed` extra) "
                "to change it at run time",
                found,
            )
        return found
    threadpool_limits(n)
    return current()


def model_threads() -> int:
    """The threads a model loaded now gets: the pinned count, else the configured one."""
    if _pinned is not None:
        return _pinned
    try:
        return configured()
    except ValueError:
        return DEFAULT


def current() -> int:
    """Threads the loaded BLAS/OpenMP pools may use (the largest pool); without threadpoolctl,
    what the environment asked the libraries for."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return int(os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count() or 1)
    sizes = [int(p.get("num_threads", 0)) for p in threadpool_info()]
    return max(sizes, default=int(os.environ.get("OPENBLAS_NUM_THREADS") or 1))
