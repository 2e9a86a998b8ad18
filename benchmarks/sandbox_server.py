"""The sandbox as the benchmark runs it, in its own process:
``python -m benchmarks.sandbox_server PORT LATENCY``.

Everything the benchmark depends on is spelled out here rather than taken
from the sandbox's defaults: no rate limit (the ceilings are measured against
the same unlimited sandbox), no automatic status steps, the given latency.
Serves on 127.0.0.1 until SIGTERM or SIGINT.
"""

from __future__ import annotations

import signal
import sys
import threading

from django_mmc.sandbox import Sandbox


def main(argv: list[str]) -> int:
    port, latency = int(argv[0]), float(argv[1])
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    sandbox = Sandbox(host="127.0.0.1", port=port, latency=latency, progress_interval=None,
                      rate_limit=None)
    sandbox.start()
    print(f"serving at {sandbox.url}", flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
