"""Dialogues: one conversation with one recipient, owned by one agent.

At most one dialogue per ``(recipient, channel group)`` is open at a time;
:attr:`open_dialogues` is that rule's index.
"""

from __future__ import annotations

import itertools
from typing import Any

from ... import contract
from ...testing import build_event, format_timestamp
from . import documents
from .base import Events, linked
from .directory import Directory
from .errors import ApiError, invalid, not_found
from .records import Agent, Dialogue, Page


class Dialogues(Directory):
    """Open, read, list and close dialogues, from the agent's side or the platform's."""

    def _setup(self) -> None:
        super()._setup()
        self._dialogue_ids = itertools.count(5501)

    def _reset(self) -> None:
        super()._reset()
        self.dialogues: dict[str, Dialogue] = {}
        self.open_dialogues: dict[tuple[str, str], str] = {}

    def _render_dialogue(self, d: Dialogue) -> dict[str, Any]:
        wire = self.wire
        return {
            "type": wire.type_dialogues,
            "id": d.id,
            "attributes": {
                "status": d.status,
                "initiatedBy": d.initiated_by,
                "channelType": d.channel_type,
                "openedAt": d.opened_at,
                "closedAt": d.closed_at,
                "closedBy": d.closed_by,
            },
            "relationships": {
                "recipient": self._render_recipient(d.recipient, d.customer_id),
                "channelGroup": linked(wire.type_channel_groups, d.channel_group_id),
                "dialogueAgent": linked(wire.type_dialogue_agents, d.agent_id),
            },
        }

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise not_found(f"Dialogue agent {agent_id!r} does not exist.")
        return agent

    def _open_dialogue(
        self,
        *,
        agent_id: str,
        recipient: str,
        group_id: str,
        channel_type: str,
        initiated_by: str,
        key: str | None,
        events: Events,
        customer_id: str | None = None,
    ) -> Dialogue:
        # Called with the lock held and exclusivity already checked.
        now = format_timestamp()
        dialogue = Dialogue(
            id=str(next(self._dialogue_ids)),
            agent_id=agent_id,
            recipient=recipient,
            channel_group_id=group_id,
            channel_type=channel_type,
            initiated_by=initiated_by,
            opened_at=now,
            status=contract.DIALOGUE_OPEN,
            idempotency_key=key,
            customer_id=customer_id,
        )
        self.dialogues[dialogue.id] = dialogue
        self.open_dialogues[(recipient, group_id)] = dialogue.id
        event = build_event(
            contract.EVENT_DIALOGUE_OPENED,
            agent_id=agent_id,
            occurred_at=now,
            initiated_by=initiated_by,
            channel_type=channel_type,
            dialogue=dialogue.id,
            channel_group=group_id,
            **self._event_recipient(recipient, customer_id),
        )
        events.append((agent_id, event))
        return dialogue

    def create_dialogue(self, agent_id: str, document: Any, key: str | None) -> dict[str, Any]:
        """Open a dialogue for ``agent_id``; 409 DIALOGUE_ACTIVE if one is open."""
        wire = self.wire
        self._agent(agent_id)
        # An opening template rides along only where the dialect takes one.
        with_template = wire.opening_template == "create"
        attrs, rels = documents.primary(
            document,
            wire.type_dialogues,
            attributes=("channelType", "context") if with_template else ("channelType",),
            relationships=(("recipient", "channelGroup", "template") if with_template
                           else ("recipient", "channelGroup")),
        )
        recipient, customer_id = self._recipient(rels)
        group_id = documents.to_one(rels, "channelGroup", wire.type_channel_groups)
        assert group_id is not None
        channel_type = documents.channel_type(attrs)
        group = self._group(group_id)
        self._check_channel(group, channel_type)
        template_id = documents.to_one(rels, "template", wire.type_templates, required=False)
        context = None
        if template_id is not None:
            context = self._check_template(template_id, channel_type, attrs.get("context"))
        elif "context" in attrs:
            raise invalid("'context' needs a template relationship.", "/data/attributes/context")
        events: Events = []
        with self.lock:
            active_id = self.open_dialogues.get((recipient, group_id))
            if active_id is not None:
                active = self.dialogues[active_id]
                raise ApiError(
                    409,
                    contract.ERROR_DIALOGUE_ACTIVE,
                    f"Dialogue {active.id} with {recipient} on channel group {group_id} "
                    f"is open, owned by agent {active.agent_id}.",
                    meta={"dialogueId": active.id, "dialogueAgentId": active.agent_id},
                )
            dialogue = self._open_dialogue(
                agent_id=agent_id,
                recipient=recipient,
                group_id=group_id,
                channel_type=channel_type,
                initiated_by=contract.INITIATED_BY[0],
                key=key,
                events=events,
                customer_id=customer_id,
            )
            if template_id is not None:
                self._add_opening_message(dialogue, template_id, context or {})
            resource = self._render_dialogue(dialogue)
        self._flush(events, ())
        return resource

    def _add_opening_message(self, dialogue: Dialogue, template_id: str,
                             context: dict[str, str]) -> None:
        """Record the template a create call carried as the dialogue's first
        message (the transcript's part, :class:`.messages.Messages`)."""

    def _owned_dialogue(self, agent_id: str, dialogue_id: str) -> Dialogue:
        # Called with the lock held.
        if agent_id not in self.agents:
            raise not_found(f"Dialogue agent {agent_id!r} does not exist.")
        dialogue = self.dialogues.get(dialogue_id)
        if dialogue is None:
            raise not_found(f"Dialogue {dialogue_id!r} does not exist.")
        if dialogue.agent_id != agent_id:
            raise ApiError(
                403,
                contract.ERROR_NOT_DIALOGUE_OWNER,
                f"Dialogue {dialogue_id} belongs to agent {dialogue.agent_id}.",
                meta={"dialogueId": dialogue.id, "dialogueAgentId": dialogue.agent_id},
            )
        return dialogue

    def dialogue_resource(self, agent_id: str, dialogue_id: str) -> dict[str, Any]:
        """One of the agent's dialogues; 404 if unknown, 403 if another agent's."""
        with self.lock:
            return self._render_dialogue(self._owned_dialogue(agent_id, dialogue_id))

    def dialogues_document(self, agent_id: str, status: str | None, page: Page) -> dict[str, Any]:
        """A page of the agent's dialogues, all or those in ``status``."""
        self._agent(agent_id)
        with self.lock:
            resources = [
                self._render_dialogue(d)
                for d in self.dialogues.values()
                if d.agent_id == agent_id and (status is None or d.status == status)
            ]
        return self._paginate(resources, page)

    def update_dialogue(self, agent_id: str, dialogue_id: str, document: Any) -> dict[str, Any]:
        """PATCH: the only change allowed is closing; closing again is a no-op."""
        wire = self.wire
        attrs, _ = documents.primary(
            document,
            wire.type_dialogues,
            attributes=("status",),
            relationships=(),
            resource_id=dialogue_id,
        )
        status = attrs.get("status")
        events: Events = []
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            if status != contract.DIALOGUE_CLOSED:
                raise invalid(
                    f"A dialogue can only be set to {contract.DIALOGUE_CLOSED}.",
                    "/data/attributes/status",
                )
            self._close(dialogue, contract.CLOSED_BY[0], events)
            resource = self._render_dialogue(dialogue)
        self._flush(events, ())
        return resource

    def close_dialogue(self, dialogue_id: str, closed_by: str) -> dict[str, Any]:
        """Close from the platform's side (``KeyError`` for an unknown id)."""
        if closed_by not in contract.CLOSED_BY:
            raise ValueError(f"closed_by must be one of {contract.CLOSED_BY}")
        events: Events = []
        with self.lock:
            dialogue = self.dialogues.get(dialogue_id)
            if dialogue is None:
                raise KeyError(f"Unknown dialogue {dialogue_id!r}")
            self._close(dialogue, closed_by, events)
            snapshot = self._dialogue_snapshot(dialogue)
        self._flush(events, ())
        return snapshot

    def _close(self, dialogue: Dialogue, closed_by: str, events: Events) -> None:
        # Called with the lock held.
        if dialogue.status == contract.DIALOGUE_CLOSED:
            return
        now = format_timestamp()
        dialogue.status = contract.DIALOGUE_CLOSED
        dialogue.closed_at = now
        dialogue.closed_by = closed_by
        self.open_dialogues.pop((dialogue.recipient, dialogue.channel_group_id), None)
        event = build_event(
            contract.EVENT_DIALOGUE_CLOSED,
            agent_id=dialogue.agent_id,
            occurred_at=now,
            closed_by=closed_by,
            dialogue=dialogue.id,
        )
        events.append((dialogue.agent_id, event))

    @staticmethod
    def _dialogue_snapshot(d: Dialogue) -> dict[str, Any]:
        return {
            "id": d.id,
            "status": d.status,
            "agent": d.agent_id,
            "recipient": d.recipient,
            "channelGroup": d.channel_group_id,
            "channelType": d.channel_type,
            "initiatedBy": d.initiated_by,
            "openedAt": d.opened_at,
            "closedAt": d.closed_at,
            "closedBy": d.closed_by,
            "idempotency_key": d.idempotency_key,
            "messages": list(d.message_ids),
        }
