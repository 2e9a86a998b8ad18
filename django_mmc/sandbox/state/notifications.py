"""Notifications: one template sent to one recipient, outside any dialogue."""

from __future__ import annotations

import itertools
from typing import Any

from ...testing import format_timestamp
from . import documents
from .base import linked
from .directory import Directory
from .errors import not_found
from .records import Notification, Page


class Notifications(Directory):
    """Create, read and list notifications; polled by ``filter[id]``."""

    def _setup(self) -> None:
        super()._setup()
        # Id sequences survive reset(), so an id is never reused by one sandbox
        # (a test's database may still hold the previous test's ids).
        self._notification_ids = itertools.count(79746)

    def _reset(self) -> None:
        super()._reset()
        self.notifications: dict[str, Notification] = {}

    def _render_notification(self, n: Notification) -> dict[str, Any]:
        wire = self.wire
        return {
            "type": wire.type_notifications,
            "id": n.id,
            "attributes": {
                "status": wire.platform_status(n.status),
                "channelType": n.channel_type,
                "createdAt": n.created_at,
                "updatedAt": n.updated_at,
                "failure": dict(n.failure) if n.failure else None,
            },
            "relationships": {
                "recipient": self._render_recipient(n.recipient, n.customer_id),
                "template": linked(wire.type_templates, n.template_id),
                "channelGroup": linked(wire.type_channel_groups, n.channel_group_id),
            },
        }

    def create_notification(self, document: Any, key: str | None) -> dict[str, Any]:
        """Validate and accept one notification; returns its resource object."""
        wire = self.wire
        attrs, rels = documents.primary(
            document,
            wire.type_notifications,
            attributes=("channelType", "context"),
            relationships=("recipient", "template", "channelGroup"),
        )
        recipient, customer_id = self._recipient(rels)
        template_id = documents.to_one(rels, "template", wire.type_templates)
        group_id = documents.to_one(rels, "channelGroup", wire.type_channel_groups)
        assert template_id is not None and group_id is not None
        channel_type = documents.channel_type(attrs)
        group = self._group(group_id)
        self._check_channel(group, channel_type)
        context = self._check_template(template_id, channel_type, attrs.get("context"))
        plan, plan_failure = self._plan(recipient, channel_type)
        now = format_timestamp()
        accepted = self.lifecycle.accepted
        with self.lock:
            notification = Notification(
                id=str(next(self._notification_ids)),
                status=accepted,
                created_at=now,
                updated_at=now,
                channel_type=channel_type,
                plan=plan,
                plan_failure=plan_failure,
                history=[{"status": accepted, "at": now}],
                idempotency_key=key,
                recipient=recipient,
                customer_id=customer_id,
                template_id=template_id,
                channel_group_id=group_id,
                context=context,
            )
            self.notifications[notification.id] = notification
            resource = self._render_notification(notification)
        self._flush((), [("notification", notification.id)])
        return resource

    def notification_resource(self, notification_id: str) -> dict[str, Any]:
        """One notification's resource object, or 404."""
        with self.lock:
            notification = self.notifications.get(notification_id)
            if notification is None:
                raise not_found(f"Notification {notification_id!r} does not exist.")
            return self._render_notification(notification)

    def notifications_document(self, ids: list[str] | None, page: Page) -> dict[str, Any]:
        """A page of every notification, or of those in ``ids`` (unknown ids skipped)."""
        with self.lock:
            if ids is None:
                chosen = list(self.notifications.values())
            else:
                seen = set()
                chosen = []
                for notification_id in ids:
                    notification = self.notifications.get(notification_id)
                    if notification is not None and notification_id not in seen:
                        seen.add(notification_id)
                        chosen.append(notification)
            resources = [self._render_notification(n) for n in chosen]
        return self._paginate(resources, page)

    def notifications_by_key(self, key: str, page: Page) -> dict[str, Any]:
        """The notification created with ``Idempotency-Key: key`` (a list of
        none or one): whether the platform ever had a send whose answer was lost."""
        with self.lock:
            resources = [self._render_notification(n) for n in self.notifications.values()
                         if n.idempotency_key == key]
        return self._paginate(resources, page)

    @staticmethod
    def _notification_snapshot(n: Notification) -> dict[str, Any]:
        return {
            "id": n.id,
            "status": n.status,
            "recipient": n.recipient,
            "template": n.template_id,
            "channelGroup": n.channel_group_id,
            "channelType": n.channel_type,
            "context": dict(n.context),
            "idempotency_key": n.idempotency_key,
            "failure": dict(n.failure) if n.failure else None,
            "createdAt": n.created_at,
            "updatedAt": n.updated_at,
            "history": [dict(h) for h in n.history],
        }
