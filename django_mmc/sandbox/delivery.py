"""Background work of the sandbox: a timer thread and webhook deliveries.

``Activity`` counts everything still to happen (scheduled status steps,
deliveries waiting, in flight or waiting for a retry) so that
``Sandbox.wait_for_webhooks()`` can tell when the platform has gone quiet.
Work carries the *generation* it was created in; ``reset()`` starts a new
generation, so work left over from before a reset neither counts nor acts.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import queue
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from .. import contract
from ..dialect import DEFAULT_DIALECT, Dialect
from .defaults import WEBHOOK_TIMEOUT
from .faults import Faults

logger = logging.getLogger("django_mmc.sandbox")


class Activity:
    """A counter of pending work with a wait-until-idle, per generation."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._count = 0
        self.generation = 0

    def add(self, generation: int, n: int = 1) -> bool:
        """Count ``n`` more units; False (and nothing counted) if stale."""
        with self._cond:
            if generation != self.generation:
                return False
            self._count += n
            return True

    def done(self, generation: int, n: int = 1) -> None:
        with self._cond:
            if generation != self.generation:
                return
            self._count -= n
            if self._count <= 0:
                self._count = 0
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        with self._cond:
            return self._count

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is pending; False if ``timeout`` ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)

    def new_generation(self) -> int:
        """Forget all pending work; returns the new generation."""
        with self._cond:
            self.generation += 1
            self._count = 0
            self._cond.notify_all()
            return self.generation


class Scheduler:
    """One thread that runs callables at a later monotonic time.

    Callables run on the scheduler thread and must be quick (they update
    state or hand a delivery to the pool); exceptions are logged, never
    fatal.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="mmc-sandbox-scheduler", daemon=True)
        self._thread.start()

    def call_later(self, delay: float, func: Callable[[], None]) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), func))
            self._cond.notify()

    def clear(self) -> None:
        with self._cond:
            self._heap.clear()

    def stop(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._stopping = True
            self._heap.clear()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, _, func = heapq.heappop(self._heap)
            try:
                func()
            except Exception:
                logger.exception("MMC sandbox: scheduled work failed")


@dataclass
class Delivery:
    """One event on its way to one agent; ``attempt`` counts POSTs made."""

    agent_id: str
    event_id: str
    event_type: str
    body: bytes
    generation: int
    order_key: str = ""
    duplicate: bool = False
    attempt: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class WebhookDispatcher:
    """Pushes signed events to agents' endpoints from a small thread pool.

    Guarantees: the body of every attempt is the same bytes and carries
    ``X-MMC-Signature`` computed over them with the agent's current secret;
    a delivery answered non-2xx, or failing to connect, is retried after each
    of ``retry_delays`` in turn and then given up; every attempt, drop and
    give-up is reported to ``on_log``.

    Order: events about one dialogue (or one notification) always go through
    the same worker, so they arrive in the order they happened unless a
    retry or webhook shuffling reorders them; events about different objects
    are delivered in parallel, so one slow receiver does not stall the rest.
    """

    def __init__(
        self,
        *,
        scheduler: Scheduler,
        activity: Activity,
        faults: Faults,
        retry_delays: tuple[float, ...],
        workers: int,
        agent_target: Callable[[str], tuple[str | None, str] | None],
        on_log: Callable[[dict[str, Any], int], None],
        wire: Dialect = DEFAULT_DIALECT,
    ) -> None:
        # The signature header and scheme come from the wire, like every name.
        self._wire = wire
        self._scheduler = scheduler
        self._activity = activity
        self._faults = faults
        self.retry_delays = tuple(float(d) for d in retry_delays)
        self._workers = workers
        self._agent_target = agent_target
        self._on_log = on_log
        self._queues: list[queue.Queue[Delivery | None]] = [
            queue.Queue() for _ in range(max(1, workers))
        ]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, work_queue in enumerate(self._queues):
            thread = threading.Thread(
                target=self._work,
                args=(work_queue,),
                name=f"mmc-sandbox-webhooks-{index}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = WEBHOOK_TIMEOUT + 2) -> None:
        for work_queue in self._queues:
            work_queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    def submit(self, agent_id: str, event: dict[str, Any]) -> bool:
        """Queue ``event`` for ``agent_id``; False if the agent has no endpoint."""
        target = self._agent_target(agent_id)
        if target is None or target[0] is None:
            return False
        generation = self._activity.generation
        data = event["data"]
        body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        fault = self._faults.for_webhook(data["attributes"]["eventType"])
        relationships = data.get("relationships", {})
        subject = relationships.get("dialogue") or relationships.get("notification")
        order_key = subject["data"]["id"] if subject else data["id"]
        copies = [False, True] if fault.duplicate else [False]
        for duplicate in copies:
            delivery = Delivery(
                agent_id=agent_id,
                event_id=data["id"],
                event_type=data["attributes"]["eventType"],
                body=body,
                generation=generation,
                order_key=order_key,
                duplicate=duplicate,
            )
            if fault.drop:
                self._log(delivery, error="dropped by fault injection", dropped=True)
                continue
            if not self._activity.add(generation):
                return True
            delay = fault.delay if not duplicate else self._faults.shuffle_delay()
            if delay > 0:
                self._scheduler.call_later(delay, lambda d=delivery: self._enqueue(d))
            else:
                self._enqueue(delivery)
        return True

    def _enqueue(self, delivery: Delivery) -> None:
        index = zlib.crc32(delivery.order_key.encode()) % len(self._queues)
        self._queues[index].put(delivery)

    def _log(self, delivery: Delivery, **fields: Any) -> None:
        entry = {
            "agent_id": delivery.agent_id,
            "event_id": delivery.event_id,
            "event_type": delivery.event_type,
            "attempt": delivery.attempt,
            "status_code": None,
            "error": None,
            "delivered": False,
            "gave_up": False,
            "dropped": False,
            "duplicate": delivery.duplicate,
            "url": None,
            "time": time.time(),
        }
        entry.update(fields)
        self._on_log(entry, delivery.generation)

    def _work(self, work_queue: queue.Queue[Delivery | None]) -> None:
        # One session per thread: requests.Session is not thread-safe, and
        # keeping it gives keep-alive to the receiver.
        session = requests.Session()
        try:
            while True:
                delivery = work_queue.get()
                if delivery is None:
                    return
                if delivery.generation != self._activity.generation:
                    continue  # left over from before a reset
                try:
                    self._attempt(session, delivery)
                except Exception:
                    logger.exception("MMC sandbox: webhook delivery crashed")
                    self._activity.done(delivery.generation)
        finally:
            session.close()

    def _attempt(self, session: requests.Session, delivery: Delivery) -> None:
        target = self._agent_target(delivery.agent_id)
        delivery.attempt += 1
        if target is None or target[0] is None:
            self._log(delivery, error="agent has no endpoint", gave_up=True)
            self._activity.done(delivery.generation)
            return
        url, secret = target
        wire = self._wire
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": contract.JSONAPI_MEDIA_TYPE,
            wire.signature_header: wire.sign(delivery.body, secret, timestamp),
            "User-Agent": "mmc-sandbox",
        }
        if wire.signature_timestamp_header:
            headers[wire.signature_timestamp_header] = timestamp
        status_code: int | None = None
        error: str | None = None
        try:
            response = session.post(
                url, data=delivery.body, headers=headers, timeout=WEBHOOK_TIMEOUT
            )
            status_code = response.status_code
            response.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        delivered = status_code is not None and 200 <= status_code < 300
        if delivered:
            self._log(delivery, status_code=status_code, delivered=True, url=url)
            self._activity.done(delivery.generation)
            return
        retry_index = delivery.attempt - 1
        if (
            retry_index < len(self.retry_delays)
            and delivery.generation == self._activity.generation
        ):
            self._log(delivery, status_code=status_code, error=error, url=url)
            self._scheduler.call_later(
                self.retry_delays[retry_index], lambda: self._enqueue(delivery)
            )
            return
        self._log(delivery, status_code=status_code, error=error, url=url, gave_up=True)
        self._activity.done(delivery.generation)
