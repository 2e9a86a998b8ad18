"""Load generators that run in their own processes, so the client is never
the runner's GIL: ``python -m benchmarks.loadgen raw-sends|webhooks CONFIG``.

Both speak a line protocol on stdin/stdout: the process prepares, prints
``ready``, then for every JSON command line it gets it prints one JSON line
with its result; an empty line or end of input ends it. Timestamps are
``time.time()`` so the runner can combine several processes.

* ``raw-sends``: the ceiling of the send scenario, a plain ``requests.Session``
  loop that posts the same notification documents django_mmc would post.
* ``webhooks``: a pool of threads, each with its own keep-alive session,
  posting signed events to a path.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from typing import Any

import requests

JSONAPI = "application/vnd.api+json"


def _emit(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def _commands() -> Any:
    for line in sys.stdin:
        line = line.strip()
        if not line:
            return
        yield json.loads(line)


# -- raw sends ----------------------------------------------------------------------


def notification_document(number: str, template_id: str, group_id: str, channel_type: str,
                          context: dict[str, str]) -> dict[str, Any]:
    """The JSON:API body of one create, exactly as the contract spells it."""
    return {"data": {
        "type": "notifications",
        "attributes": {"channelType": channel_type, "context": context},
        "relationships": {
            "recipient": {"data": {"type": "customers", "id": number}},
            "template": {"data": {"type": "templates", "id": template_id}},
            "channelGroup": {"data": {"type": "channel-groups", "id": group_id}},
        },
    }}


def raw_sends(config: dict[str, Any]) -> None:
    session = requests.Session()
    session.headers.update({"Accept": JSONAPI, "Content-Type": JSONAPI})
    url = config["url"]
    _emit("ready")
    for command in _commands():
        session.headers["Authorization"] = f"Bearer {command['token']}"
        numbers = command["numbers"]
        errors = 0
        cpu = time.process_time()
        started = time.time()
        for number in numbers:
            body = json.dumps(notification_document(
                number, config["template_id"], config["group_id"], config["channel_type"],
                config["context"]), separators=(",", ":")).encode()
            response = session.post(url, data=body,
                                    headers={"Idempotency-Key": str(uuid.uuid4())},
                                    timeout=30)
            if response.status_code != 201:
                errors += 1
            response.content  # noqa: B018 - read the whole answer, as a client does
        finished = time.time()
        _emit({"sent": len(numbers), "errors": errors, "started": started,
               "finished": finished, "cpu_seconds": time.process_time() - cpu})


# -- webhooks -----------------------------------------------------------------------


def webhooks(config: dict[str, Any]) -> None:
    from django_mmc.testing import build_event, signed_delivery

    threads = int(config["threads"])
    sessions = [requests.Session() for _ in range(threads)]
    for session in sessions:
        session.headers["Accept"] = JSONAPI
    _emit("ready")
    for command in _commands():
        # Everything is signed before the clock starts.
        deliveries = []
        for index in range(command["count"]):
            event = build_event(
                "notification.status", event_id=f"{command['event_prefix']}-{index}",
                notification=str(900_000 + index), status="DELIVERED",
                agent_id=config["agent_id"],
            )
            deliveries.append(signed_delivery(event, config["secret"]))
        url = config["base_url"] + command["path"]
        latencies: list[list[float]] = [[] for _ in range(threads)]
        statuses: list[dict[int, int]] = [{} for _ in range(threads)]
        barrier = threading.Barrier(threads + 1)

        def work(slot: int, url: str = url, deliveries: list = deliveries,
                 latencies: list = latencies, statuses: list = statuses,
                 barrier: threading.Barrier = barrier) -> None:
            session = sessions[slot]
            mine = deliveries[slot::threads]
            barrier.wait()
            for body, headers in mine:
                start = time.perf_counter()
                try:
                    response = session.post(url, data=body, headers=headers, timeout=30)
                    response.content  # noqa: B018
                    code = response.status_code
                except requests.RequestException:
                    code = 0
                latencies[slot].append((time.perf_counter() - start) * 1000)
                statuses[slot][code] = statuses[slot].get(code, 0) + 1

        workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
        for worker in workers:
            worker.start()
        cpu = time.process_time()
        barrier.wait()
        started = time.time()
        for worker in workers:
            worker.join()
        finished = time.time()
        merged: dict[str, int] = {}
        for counts in statuses:
            for code, count in counts.items():
                merged[str(code)] = merged.get(str(code), 0) + count
        _emit({"sent": command["count"], "statuses": merged, "started": started,
               "finished": finished, "cpu_seconds": time.process_time() - cpu,
               "latencies_ms": [round(v, 3) for slot in latencies for v in slot]})


def main(argv: list[str]) -> int:
    kind, config = argv[0], json.loads(argv[1])
    {"raw-sends": raw_sends, "webhooks": webhooks}[kind](config)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
