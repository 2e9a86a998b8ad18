"""Stored responses, replayed for a repeated ``Idempotency-Key``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ... import contract
from .base import PlatformBase
from .errors import ApiError
from .records import IDEMPOTENCY_TTL, StoredResponse

#: What a create produces: ``(status, headers, body)``.
Response = tuple[int, list[tuple[str, str]], bytes]


class Idempotency(PlatformBase):
    """The first response to each ``(client, key)``, kept for 24 hours."""

    def _setup(self) -> None:
        super()._setup()
        # Striped locks: one key always maps to the same lock, and memory stays
        # bounded however many keys a benchmark uses.
        self._key_locks = [threading.Lock() for _ in range(64)]

    def _reset(self) -> None:
        super()._reset()
        self.stored_responses: dict[tuple[str, str], StoredResponse] = {}

    def idempotent(
        self, client_id: str, key: str, print_: str, produce: Callable[[], Response]
    ) -> tuple[int, list[tuple[str, str]], bytes, bool]:
        """Run ``produce`` once per ``(client_id, key)``; replay it afterwards.

        Returns ``(status, headers, body, replayed)``. A per-key lock makes
        concurrent requests with one key wait for the first, so they can
        never create two objects. A repeat whose fingerprint differs gets
        ``422 IDEMPOTENCY_KEY_REUSED``.
        """
        slot = (client_id, key)
        key_lock = self._key_locks[hash(slot) % len(self._key_locks)]
        with key_lock:
            with self.lock:
                stored = self.stored_responses.get(slot)
            if stored is not None and time.time() - stored.stored_at < IDEMPOTENCY_TTL:
                if stored.fingerprint != print_:
                    raise ApiError(
                        422,
                        contract.ERROR_IDEMPOTENCY_KEY_REUSED,
                        "This Idempotency-Key was used with a different request.",
                    )
                return stored.status, list(stored.headers), stored.body, True
            status, headers, body = produce()
            with self.lock:
                self.stored_responses[slot] = StoredResponse(
                    print_, status, list(headers), body, time.time()
                )
            return status, headers, body, False
