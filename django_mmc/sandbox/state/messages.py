"""Messages in a dialogue: the agent's, and the recipient's replies."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from ... import contract
from ...testing import build_event, format_timestamp
from ..defaults import CONTROL_PREFIX
from . import documents
from .base import Events, linked
from .dialogues import Dialogues
from .errors import ApiError, invalid, not_found
from .files import Files
from .records import Dialogue, Message, Page, is_e164


class Messages(Dialogues, Files):
    """Send, read and list messages; :meth:`reply` plays the recipient."""

    def _setup(self) -> None:
        super()._setup()
        self._message_ids = itertools.count(88121)

    def _reset(self) -> None:
        super()._reset()
        self.messages: dict[str, Message] = {}

    def _render_message(self, m: Message) -> dict[str, Any]:
        wire = self.wire
        attributes: dict[str, Any] = {
            "direction": m.direction,
            "status": wire.platform_status(m.status) if m.status else m.status,
            "text": m.text,
            "channelType": m.channel_type,
            "createdAt": m.created_at,
            "updatedAt": m.updated_at,
            "failure": dict(m.failure) if m.failure else None,
        }
        if m.context is not None:
            attributes["context"] = dict(m.context)
        return {
            "type": wire.type_messages,
            "id": m.id,
            "attributes": attributes,
            "relationships": {
                "dialogue": linked(wire.type_dialogues, m.dialogue_id),
                "template": linked(wire.type_templates, m.template_id),
                "files": {"data": [{"type": wire.type_files, "id": f} for f in m.file_ids]},
            },
        }

    def _add_message(self, dialogue: Dialogue, *, status: str, now: str, **fields: Any) -> Message:
        # Called with the lock held.
        message = Message(
            id=f"m-{next(self._message_ids)}",
            status=status,
            created_at=now,
            updated_at=now,
            history=[{"status": status, "at": now}],
            dialogue_id=dialogue.id,
            agent_id=dialogue.agent_id,
            **fields,
        )
        self.messages[message.id] = message
        dialogue.message_ids.append(message.id)
        return message

    def _add_opening_message(self, dialogue: Dialogue, template_id: str,
                             context: dict[str, str]) -> None:
        # Called with the lock held, from create_dialogue.
        self._add_message(
            dialogue, status=self.lifecycle.accepted, now=dialogue.opened_at,
            channel_type=dialogue.channel_type, plan=[], plan_failure=None,
            idempotency_key=None, direction=contract.DIRECTION_OUTBOUND, text=None,
            template_id=template_id, context=context, file_ids=[],
        )

    def _dialogue_closed(self, dialogue: Dialogue) -> ApiError:
        return ApiError(
            409,
            contract.ERROR_DIALOGUE_CLOSED,
            f"Dialogue {dialogue.id} is closed.",
            meta={"dialogueId": dialogue.id, "dialogueAgentId": dialogue.agent_id},
        )

    def create_message(
        self, agent_id: str, dialogue_id: str, document: Any, key: str | None
    ) -> dict[str, Any]:
        """Send a free-text or template message in an open dialogue."""
        wire = self.wire
        attrs, rels = documents.primary(
            document,
            wire.type_messages,
            attributes=("text", "context", "channelType"),
            relationships=("files", "template"),
        )
        template_id = documents.to_one(rels, "template", wire.type_templates, required=False)
        file_ids = documents.to_many(rels, "files", wire.type_files)
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            if dialogue.status != contract.DIALOGUE_OPEN:
                raise self._dialogue_closed(dialogue)
            recipient = dialogue.recipient
            group = self.channel_groups[dialogue.channel_group_id]
            default_channel = dialogue.channel_type
            missing_files = [
                (index, file_id)
                for index, file_id in enumerate(file_ids)
                if file_id not in self.files
            ]
        if missing_files:
            index, file_id = missing_files[0]
            raise not_found(
                f"File {file_id!r} does not exist.", f"/data/relationships/files/data/{index}"
            )
        channel_type = documents.channel_type(attrs, default_channel)
        self._check_channel(group, channel_type)
        text = attrs.get("text")
        context: dict[str, str] | None = None
        if template_id is not None:
            if text is not None:
                raise invalid(
                    "A message has either 'text' or a template, not both.", "/data/attributes/text"
                )
            context = self._check_template(template_id, channel_type, attrs.get("context"))
        else:
            if "context" in attrs:
                raise invalid(
                    "'context' needs a template relationship.", "/data/attributes/context"
                )
            if not isinstance(text, str) or not text.strip():
                raise invalid(
                    "A message needs a non-empty 'text' or a template.", "/data/attributes/text"
                )
        plan, plan_failure = self._plan(recipient, channel_type)
        now = format_timestamp()
        with self.lock:
            # Re-checked: the dialogue may have closed while we validated.
            if dialogue.status != contract.DIALOGUE_OPEN:
                raise ApiError(
                    409, contract.ERROR_DIALOGUE_CLOSED, f"Dialogue {dialogue_id} is closed."
                )
            message = self._add_message(
                dialogue,
                status=self.lifecycle.accepted,
                now=now,
                channel_type=channel_type,
                plan=plan,
                plan_failure=plan_failure,
                idempotency_key=key,
                direction=contract.DIRECTION_OUTBOUND,
                text=text,
                template_id=template_id,
                context=context,
                file_ids=file_ids,
            )
            resource = self._render_message(message)
        self._flush((), [("message", message.id)])
        return resource

    def message_resource(self, agent_id: str, dialogue_id: str, message_id: str) -> dict[str, Any]:
        """One message of one of the agent's dialogues, or 404."""
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            message = self.messages.get(message_id)
            if message is None or message.dialogue_id != dialogue.id:
                raise not_found(f"Message {message_id!r} does not exist in this dialogue.")
            return self._render_message(message)

    def messages_document(self, agent_id: str, dialogue_id: str, page: Page) -> dict[str, Any]:
        """A page of one dialogue's messages, both directions, oldest first."""
        with self.lock:
            dialogue = self._owned_dialogue(agent_id, dialogue_id)
            resources = [self._render_message(self.messages[m]) for m in dialogue.message_ids]
        return self._paginate(resources, page)

    # -- the recipient's side ------------------------------------------------

    def reply(
        self,
        number: str,
        text: str,
        *,
        channel_group: str,
        channel_type: str,
        files: Sequence[Any] = (),
        by_customer_id: bool = False,
    ) -> dict[str, Any]:
        """The recipient writes; routes to the open dialogue or opens one.
        ``by_customer_id``: a dialogue the platform opens for it names the
        customer by its customer id (with the number beside it)."""
        if not is_e164(number):
            raise ValueError(f"{number!r} is not a valid E.164 number")
        group = self.channel_groups.get(str(channel_group))
        if group is None:
            raise ValueError(f"Unknown channel group {channel_group!r}")
        if channel_type not in group.channel_types:
            raise ValueError(f"Channel group {group.id} has no {channel_type} channel")
        file_ids = [self._inbound_file(item) for item in files]
        events: Events = []
        now = format_timestamp()
        with self.lock:
            opened = False
            dialogue_id = self.open_dialogues.get((number, group.id))
            if dialogue_id is None:
                agent_id = group.designated_agent
                if agent_id is None or agent_id not in self.agents:
                    raise ValueError(f"Channel group {group.id} has no designated agent")
                dialogue = self._open_dialogue(
                    agent_id=agent_id,
                    recipient=number,
                    group_id=group.id,
                    channel_type=channel_type,
                    initiated_by=contract.INITIATED_BY[1],
                    key=None,
                    events=events,
                    customer_id=self._customer_id_locked(number) if by_customer_id else None,
                )
                opened = True
            else:
                dialogue = self.dialogues[dialogue_id]
            message = self._add_message(
                dialogue,
                status=self.lifecycle.delivered,
                now=now,
                channel_type=channel_type,
                plan=[],
                plan_failure=None,
                direction=contract.DIRECTION_INBOUND,
                text=text,
                file_ids=file_ids,
            )
            file_list = [
                {**f.metadata(), "url": f"{self.base_url}{CONTROL_PREFIX}/files/{f.id}"}
                for f in (self.files[i] for i in file_ids)
            ]
            event = build_event(
                contract.EVENT_MESSAGE_RECEIVED,
                agent_id=dialogue.agent_id,
                occurred_at=now,
                text=text,
                channel_type=channel_type,
                files=file_list,
                message=message.id,
                dialogue=dialogue.id,
                channel_group=group.id,
                **self._event_recipient(number, dialogue.customer_id),
            )
            events.append((dialogue.agent_id, event))
            result = {
                "dialogue_id": dialogue.id,
                "message_id": message.id,
                "agent_id": dialogue.agent_id,
                "opened": opened,
            }
        self._flush(events, ())
        return result

    def _inbound_file(self, item: Any) -> str:
        """A file the recipient sends: an uploaded file id, a dict or a tuple."""
        if isinstance(item, str):
            if self.file_content(item) is None:
                raise ValueError(f"Unknown file {item!r}")
            return item
        if isinstance(item, Mapping):
            name = item.get("name", "file")
            content = item.get("content", b"")
            content_type = item.get("contentType", "application/octet-stream")
        else:
            name, content, *rest = item
            content_type = rest[0] if rest else "application/octet-stream"
        if isinstance(content, str):
            content = content.encode("utf-8")
        return self.create_file(str(name), str(content_type), bytes(content))["id"]

    def _message_snapshot(self, m: Message) -> dict[str, Any]:
        dialogue = self.dialogues.get(m.dialogue_id)
        return {
            "id": m.id,
            "status": m.status,
            "direction": m.direction,
            "dialogue": m.dialogue_id,
            "agent": m.agent_id,
            "recipient": dialogue.recipient if dialogue else None,
            "channelGroup": dialogue.channel_group_id if dialogue else None,
            "channelType": m.channel_type,
            "text": m.text,
            "template": m.template_id,
            "context": dict(m.context) if m.context is not None else None,
            "files": list(m.file_ids),
            "idempotency_key": m.idempotency_key,
            "failure": dict(m.failure) if m.failure else None,
            "createdAt": m.created_at,
            "updatedAt": m.updated_at,
            "history": [dict(h) for h in m.history],
        }
