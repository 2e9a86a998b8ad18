"""Channel groups, channels and templates: the seeded, read-only directory."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from ... import contract
from . import documents
from .base import PlatformBase, linked
from .errors import ApiError, error_object, invalid, not_found
from .records import Channel, ChannelGroup, Page, Script, Template


def load_fixtures(path: str | Path) -> dict[str, Any]:
    """The seed document at ``path`` (see the packaged ``fixtures.json``)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    for key in ("channelGroups", "templates"):
        if key not in data:
            raise ValueError(f"Sandbox fixtures {path} have no {key!r}")
    return data


class Directory(PlatformBase):
    """What the fixtures seed; it never changes, so it is rendered once."""

    def _setup(self) -> None:
        super()._setup()
        fixtures = self._fixtures
        self.channel_groups: dict[str, ChannelGroup] = {}
        for group in fixtures["channelGroups"]:
            gid = str(group["id"])
            channels = [
                Channel(str(c["id"]), c["channelType"], c.get("name", ""), gid)
                for c in group.get("channels", [])
            ]
            agent = group.get("designatedAgent")
            self.channel_groups[gid] = ChannelGroup(
                gid, group.get("name", ""), None if agent is None else str(agent), channels
            )
        self.templates: dict[str, Template] = {}
        for item in fixtures["templates"]:
            template = Template(
                id=str(item["id"]),
                name=item["name"],
                description=item.get("description", ""),
                channel_types=list(item.get("channelTypes", contract.CHANNEL_TYPES)),
                parameters=[
                    {"name": p["name"], "required": bool(p.get("required", False))}
                    for p in item.get("parameters", [])
                ],
                preview=item.get("preview", ""),
            )
            template.resource = self._render_template(template)
            self.templates[template.id] = template
        #: Recipients whose sends follow fixed status steps (a failure, say).
        self.scripts: dict[str, Script] = {}
        for item in fixtures.get("scriptedRecipients", []):
            self.scripts[item["number"]] = Script(
                number=item["number"],
                channel_types=item.get("channelTypes"),
                steps=list(item["steps"]),
                failure=item.get("failure"),
            )
        self._channel_groups_resources = [
            self._render_group(g) for g in self.channel_groups.values()
        ]
        self._channel_resources = [
            self._render_channel(c) for g in self.channel_groups.values() for c in g.channels
        ]
        self.known_channel_types = sorted(
            {c.channel_type for g in self.channel_groups.values() for c in g.channels}
        )

    def _reset(self) -> None:
        super()._reset()
        #: The platform's customer ids and the numbers they stand for: every
        #: number gets one when first seen.
        self.customers: dict[str, str] = {}
        self._customer_of: dict[str, str] = {}
        self._customer_ids = itertools.count(88001)

    def customer_id_for(self, number: str) -> str:
        """The platform's customer id of ``number``, given one if new."""
        with self.lock:
            return self._customer_id_locked(number)

    def _customer_id_locked(self, number: str) -> str:
        customer_id = self._customer_of.get(number)
        if customer_id is None:
            customer_id = str(next(self._customer_ids))
            self._customer_of[number] = customer_id
            self.customers[customer_id] = number
        return customer_id

    def _recipient(self, relationships: Any) -> tuple[str, str | None]:
        """The number a request's ``recipient`` stands for, and the customer
        id when it named the customer by that; 422 for neither."""
        member = relationships.get("recipient") if isinstance(relationships, dict) else None
        linkage = member.get("data") if isinstance(member, dict) else None
        if isinstance(linkage, dict) and isinstance(linkage.get("id"), str) and \
                self.wire.names_customer_id(linkage.get("type"), linkage["id"]):
            with self.lock:
                number = self.customers.get(linkage["id"])
            if number is None:
                raise ApiError(422, contract.ERROR_INVALID_RECIPIENT,
                               f"No customer has the id {linkage['id']!r}.",
                               pointer="/data/relationships/recipient")
            return number, linkage["id"]
        number = documents.recipient(relationships, contract.RECIPIENT_TYPE)
        self.customer_id_for(number)
        return number, None

    def _render_recipient(self, number: str, customer_id: str | None) -> dict[str, Any]:
        """The recipient as the request named it: by number, or by customer id."""
        if customer_id:
            return linked(self.wire.customer_id_type, customer_id)
        return linked(contract.RECIPIENT_TYPE, number)

    def _event_recipient(self, number: str, customer_id: str | None) -> dict[str, Any]:
        """``build_event`` keywords naming the recipient as the request did:
        a customer named by id comes with its number beside it."""
        if customer_id:
            return {"recipient": number, "customer_id": customer_id}
        return {"recipient": number}

    # -- rendering -------------------------------------------------------------

    def _render_template(self, template: Template) -> dict[str, Any]:
        return {
            "type": self.wire.type_templates,
            "id": template.id,
            "attributes": {
                "name": template.name,
                "description": template.description,
                "channelTypes": list(template.channel_types),
                "parameters": [dict(p) for p in template.parameters],
                "preview": template.preview,
            },
        }

    def _render_group(self, group: ChannelGroup) -> dict[str, Any]:
        return {
            "type": self.wire.type_channel_groups,
            "id": group.id,
            "attributes": {"name": group.name},
            "relationships": {
                "channels": {
                    "data": [{"type": self.wire.type_channels, "id": c.id} for c in group.channels]
                }
            },
        }

    def _render_channel(self, channel: Channel) -> dict[str, Any]:
        return {
            "type": self.wire.type_channels,
            "id": channel.id,
            "attributes": {"channelType": channel.channel_type, "name": channel.name},
            "relationships": {
                "channelGroup": linked(self.wire.type_channel_groups, channel.group_id)
            },
        }

    # -- reading ---------------------------------------------------------------

    def channel_groups_document(self, include: bool, page: Page) -> dict[str, Any]:
        """A page of channel groups, with their channels if ``include``."""
        document = self._paginate(self._channel_groups_resources, page)
        if include:
            wanted = {
                r["id"] for g in document["data"] for r in g["relationships"]["channels"]["data"]
            }
            document["included"] = [c for c in self._channel_resources if c["id"] in wanted]
        return document

    def templates_document(self, page: Page) -> dict[str, Any]:
        """A page of templates."""
        return self._paginate([t.resource for t in self.templates.values()], page)

    # -- checks shared by every send -------------------------------------------

    def _plan(self, recipient: str, channel_type: str) -> tuple[list[str], dict[str, str] | None]:
        """The status steps a send will take, and the failure a script ends in."""
        script = self.scripts.get(recipient)
        if script is not None and (
            script.channel_types is None or channel_type in script.channel_types
        ):
            return list(script.steps), script.failure
        return self.lifecycle.plan(self.auto_read), None

    def _group(self, group_id: str) -> ChannelGroup:
        group = self.channel_groups.get(group_id)
        if group is None:
            raise not_found(
                f"Channel group {group_id!r} does not exist.", "/data/relationships/channelGroup"
            )
        return group

    def _check_channel(self, group: ChannelGroup, channel_type: str) -> None:
        if channel_type not in group.channel_types:
            raise ApiError(
                422,
                contract.ERROR_CHANNEL_NOT_IN_GROUP,
                f"Channel group {group.id} has no {channel_type} channel.",
                pointer="/data/attributes/channelType",
            )

    def _check_template(self, template_id: str, channel_type: str, context: Any) -> dict[str, str]:
        """The template's context, checked; every problem becomes one error object."""
        template = self.templates.get(template_id)
        if template is None:
            raise not_found(
                f"Template {template_id!r} does not exist.", "/data/relationships/template"
            )
        if context is None:
            context = {}
        if not isinstance(context, dict):
            raise invalid("'context' must be an object of strings.", "/data/attributes/context")
        errors = []
        if channel_type not in template.channel_types:
            errors.append(
                error_object(
                    422,
                    contract.ERROR_TEMPLATE_NOT_FOR_CHANNEL,
                    f"Template {template_id} is not available on {channel_type}.",
                    pointer="/data/attributes/channelType",
                )
            )
        known = {p["name"] for p in template.parameters}
        for name, value in context.items():
            pointer = f"/data/attributes/context/{name}"
            if name not in known:
                errors.append(
                    error_object(
                        422,
                        contract.ERROR_TEMPLATE_PARAMETER_UNKNOWN,
                        f"Template {template_id} has no parameter {name!r}.",
                        pointer=pointer,
                    )
                )
            elif not isinstance(value, str):
                errors.append(
                    error_object(
                        422,
                        contract.ERROR_VALIDATION,
                        f"Parameter {name!r} must be a string.",
                        pointer=pointer,
                    )
                )
        for parameter in template.parameters:
            name = parameter["name"]
            value = context.get(name)
            if parameter["required"] and (
                value is None or (isinstance(value, str) and not value.strip())
            ):
                errors.append(
                    error_object(
                        422,
                        contract.ERROR_TEMPLATE_PARAMETER_MISSING,
                        f"Template {template_id} requires parameter {name!r}.",
                        pointer=f"/data/attributes/context/{name}",
                    )
                )
        if errors:
            first = errors[0]
            raise ApiError(422, first["code"], first["detail"], errors=errors)
        return dict(context)
