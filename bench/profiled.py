"""A sidecar whose profiler runs only while the benchmark says so.

``python -m llmcache.bench.profiled OUT.prof sidecar ARGS...`` starts ``llmcache sidecar``
with cProfile off; SIGUSR1 switches it on, SIGUSR2 switches it off and writes OUT.prof.
So the profile holds request handling only, not imports and start-up.
"""

from __future__ import annotations

import argparse
import cProfile
import signal
import sys
from types import FrameType

from llmcache.sidecar import cli as sidecar_cli


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
    if argv[:1] != ["sidecar"]:
        raise SystemExit("usage: python -m llmcache.bench.profiled OUT.prof sidecar ARGS...")
    parser = argparse.ArgumentParser(prog="llmcache sidecar (profiled)")
    sidecar_cli.add_arguments(parser)
    return sidecar_cli.run(parser.parse_args(argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
