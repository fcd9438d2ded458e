"""A sidecar whose profiler runs only while the benchmark says so.

``python -m llmcache.bench.profiled OUT.prof sidecar ARGS...`` starts ``llmcache sidecar``
with cProfile off; SIGUSR1 switches it on, SIGUSR2 switches it off and writes OUT.prof.
So the profile holds request handling only, not imports and start-up.
"""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

from llmcache.cli import main as llmcache_main


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
    profiler = cProfile.Profile()

    def start(_sig: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        print(f"profile written to {out}", flush=True)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    return llmcache_main(argv)


if __name__ == "__main__":
    sys.exit(main())
