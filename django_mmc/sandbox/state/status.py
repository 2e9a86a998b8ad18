"""Status progress of notifications and messages, by plan or by hand."""

from __future__ import annotations

from typing import Any

from ... import contract
from ...testing import build_event, format_timestamp
from .messages import Messages
from .notifications import Notifications
from .records import Delivered, Message, Notification


class Status(Notifications, Messages):
    """Moves statuses forward and produces the matching status events.

    A send is accepted with a plan of steps (``SENT``, ``DELIVERED``,
    ``READ`` or a scripted failure); the server calls :meth:`progress` on a
    timer to take them one at a time, and :meth:`set_status` overtakes them.
    """

    def _record(self, kind: str, object_id: str) -> Delivered | None:
        if kind == "notification":
            return self.notifications.get(object_id)
        if kind == "message":
            return self.messages.get(object_id)
        raise ValueError(f"kind must be 'notification' or 'message', not {kind!r}")

    def _apply_status(
        self, record: Delivered, status: str, failure: dict[str, str] | None
    ) -> tuple[str, dict[str, Any]]:
        # Called with the lock held; returns the status event to send.
        now = format_timestamp()
        record.status = status
        record.updated_at = now
        if status in self.lifecycle.failures:
            record.failure = dict(
                failure or record.plan_failure or self.lifecycle.default_failure(status)
            )
        record.history.append({"status": status, "at": now})
        about: dict[str, str]
        if isinstance(record, Notification):
            event_type, agent_id = contract.EVENT_NOTIFICATION_STATUS, self.notification_agent
            about = {"notification": record.id}
        else:
            assert isinstance(record, Message)
            event_type, agent_id = contract.EVENT_MESSAGE_STATUS, record.agent_id
            about = {"message": record.id, "dialogue": record.dialogue_id}
        event = build_event(
            event_type,
            agent_id=agent_id,
            occurred_at=now,
            status=status,
            failure=record.failure,
            **about,
        )
        return agent_id, event

    def progress(self, kind: str, object_id: str) -> None:
        """Take the next planned status step of one object, if any is left."""
        lifecycle = self.lifecycle
        events = []
        more = False
        with self.lock:
            record = self._record(kind, object_id)
            if record is None or record.status in lifecycle.terminal:
                return
            # A manual set_status may have overtaken planned steps: skip them.
            while record.plan and not lifecycle.can_move(record.status, record.plan[0]):
                record.plan.pop(0)
            if not record.plan:
                return
            status = record.plan.pop(0)
            events.append(self._apply_status(record, status, None))
            more = bool(record.plan) and record.status not in lifecycle.terminal
        self._flush(events, [(kind, object_id)] if more else ())

    def set_status(
        self, kind: str, object_id: str, status: str, failure: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """Move one object's status forward by hand; sends the status event."""
        with self.lock:
            record = self._record(kind, object_id)
            if record is None:
                raise KeyError(f"Unknown {kind} {object_id!r}")
            if not self.lifecycle.can_move(record.status, status):
                raise ValueError(f"{kind} {object_id} cannot go from {record.status} to {status}")
            event = self._apply_status(record, status, failure)
            if isinstance(record, Notification):
                snapshot = self._notification_snapshot(record)
            else:
                assert isinstance(record, Message)
                snapshot = self._message_snapshot(record)
        self._flush([event], ())
        return snapshot
