"""The memory probe: ``python -m benchmarks.memory COUNT`` in a fresh process.

Sends one campaign to COUNT recipients generated lazily and prints, as one
JSON line, the process's peak RSS (``VmHWM``) before and after. The tasks go
to a queue nobody consumes; the runner deletes it afterwards.
"""

from __future__ import annotations

import json
import sys
import time


def main(argv: list[str]) -> int:
    import django

    django.setup()
    import benchmarks.celery_app  # noqa: F401 - the broker the enqueues go to
    import django_mmc
    from benchmarks.scenarios import CONTEXT, TEMPLATE, numbers
    from benchmarks.stack import status_kb

    count = int(argv[0])
    # Warm-up: imports, the broker connection, the first queries.
    django_mmc.send_notifications(numbers(9_000_000, 10), TEMPLATE, CONTEXT)
    baseline_hwm, baseline_rss = status_kb("VmHWM"), status_kb("VmRSS")
    began = time.perf_counter()
    sent = django_mmc.send_notifications(numbers(0, count), TEMPLATE, CONTEXT)
    seconds = time.perf_counter() - began
    print(json.dumps({
        "recipients": sent,
        "seconds": round(seconds, 1),
        "per_second": round(sent / seconds, 1),
        "baseline_hwm_kb": baseline_hwm,
        "baseline_rss_kb": baseline_rss,
        "peak_hwm_kb": status_kb("VmHWM"),
        "final_rss_kb": status_kb("VmRSS"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
