"""Validating what business code asks for, before anything is stored.

The public API (:mod:`django_mmc.api`) and campaign sends
(:mod:`django_mmc.bulk`) both resolve their arguments here: each ``resolve_*``
function turns what a caller may pass (an object, a platform id, a name) into
a row, or raises a ``ValidationError`` naming the problem. :class:`Errors`
collects them per argument, so one call reports every problem at once and
stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from .conf import Agent, mmc_settings
from .exceptions import MMCConfigurationError
from .models import ChannelGroup, Dialogue, Recipient, Template
from .models.recipients import normalize_phone_number
from .status import DialogueStatus, Priority

#: The longest free text a dialogue message may have.
MAX_TEXT_LENGTH = 4096


class Errors:
    """Collects errors per argument so one call reports all of them."""

    def __init__(self) -> None:
        self.by_field: dict[str, list[ValidationError]] = {}

    def add(self, field: str, error: ValidationError | str) -> None:
        if isinstance(error, str):
            error = ValidationError(error)
        if hasattr(error, "error_dict"):
            for key, errors in error.error_dict.items():
                self.by_field.setdefault(key, []).extend(errors)
        else:
            self.by_field.setdefault(field, []).extend(error.error_list)

    def raise_if_any(self) -> None:
        if self.by_field:
            raise ValidationError(self.by_field)


def acting_user(user: Any) -> Any:
    """``user`` if it is a saved, authenticated user (recorded on the rows it
    creates), else ``None``."""
    if user is not None and getattr(user, "is_authenticated", False) and user.pk is not None:
        return user
    return None


# -- resolving arguments -------------------------------------------------------


def resolve_address(to: Recipient | str) -> str:
    """How ``to`` is reached: a number in E.164 form, or a Recipient's number
    (its platform customer id for a recipient known only by that)."""
    if isinstance(to, Recipient):
        if to.pk is None or not to.address:
            raise ValidationError(_("Save the recipient first, with a phone number or a "
                                    "platform customer id."), code="unsaved_recipient")
        return to.address
    return normalize_phone_number(to)


def lookup_key(value: Any, what: str) -> str:
    """``value`` as a key to look a row up by, or a ``ValidationError``: text
    the database cannot hold (NUL, lone surrogates) never reaches a query."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValidationError(
            _("Give the %(what)s as an object, its platform id or its name."),
            code="invalid", params={"what": what})
    key = str(value).strip()
    if not key or "\x00" in key or any(0xD800 <= ord(c) <= 0xDFFF for c in key):
        raise ValidationError(_("That is not a valid %(what)s name or id."),
                              code="invalid", params={"what": what})
    return key


def resolve_template(template: Template | str | int) -> Template:
    """A Template, its platform id or its name; active only."""
    if isinstance(template, Template):
        found = template
    else:
        key = lookup_key(template, "template")
        matches = list(
            Template.objects.filter(Q(platform_id=key) | Q(name=key)).order_by("-is_active")[:3]
        )
        by_id = [t for t in matches if t.platform_id == key]
        active_by_name = [t for t in matches if t.name == key and t.is_active]
        if by_id:
            found = by_id[0]
        elif len(active_by_name) > 1:
            raise ValidationError(
                _("More than one template is named %(name)s; pass its platform id."),
                code="ambiguous_template", params={"name": key},
            )
        elif matches:
            found = matches[0]
        else:
            raise ValidationError(
                _("Unknown template %(name)s. Sync the templates from the platform "
                  "(manage.py mmc_sync_directory) or check the name."),
                code="unknown_template", params={"name": key[:100]},
            )
    if not found.is_active:
        raise ValidationError(
            _("Template %(name)s is no longer active on the platform."),
            code="inactive_template", params={"name": found},
        )
    return found


def resolve_channel_group(channel_group: ChannelGroup | str | int | None) -> ChannelGroup:
    """A ChannelGroup, its platform id or name, or ``MMC['DEFAULT_CHANNEL_GROUP']``."""
    if isinstance(channel_group, ChannelGroup):
        group = channel_group
    else:
        key = channel_group if channel_group is not None else mmc_settings.DEFAULT_CHANNEL_GROUP
        if key is None:
            groups = list(ChannelGroup.objects.filter(is_active=True)[:2])
            if len(groups) == 1:
                return groups[0]
            raise ValidationError(
                _("No channel group given and MMC['DEFAULT_CHANNEL_GROUP'] is not set."),
                code="channel_group_required",
            )
        key = lookup_key(key, "channel group")
        group = (
            ChannelGroup.objects.filter(platform_id=key).first()
            or ChannelGroup.objects.filter(name=key).first()
        )
        if group is None:
            raise ValidationError(
                _("Unknown channel group %(name)s. Sync the directory from the platform "
                  "(manage.py mmc_sync_directory)."),
                code="unknown_channel_group", params={"name": key[:100]},
            )
    if not group.is_active:
        raise ValidationError(
            _("Channel group %(name)s is no longer active."),
            code="inactive_channel_group", params={"name": group},
        )
    return group


def resolve_channel_type(
    channel_type: str | None, group: ChannelGroup, template: Template | None = None
) -> str:
    """The channel type to use: the one asked for, which must be a channel of
    ``group`` (and allowed by ``template``); or the default one, or the first
    type both allow."""
    available = group.channel_types()
    allowed = [t for t in available if template is None or t in template.channel_types]
    if channel_type:
        channel_type = str(channel_type).upper()
        if channel_type not in available:
            raise ValidationError(
                _("Channel group %(group)s has no %(type)s channel (it has: %(types)s)."),
                code="channel_not_in_group",
                params={"group": group, "type": channel_type,
                        "types": ", ".join(available) or "-"},
            )
        if template is not None and channel_type not in template.channel_types:
            raise ValidationError(
                _("Template %(template)s cannot be sent on %(type)s (only on %(types)s)."),
                code="template_not_for_channel",
                params={"template": template, "type": channel_type,
                        "types": ", ".join(template.channel_types) or "-"},
            )
        return channel_type
    default = mmc_settings.DEFAULT_CHANNEL_TYPE
    if default in allowed:
        return default
    if allowed:
        if template is not None:  # the template's own order of preference
            return next(t for t in template.channel_types if t in allowed)
        return allowed[0]
    raise ValidationError(
        _("No channel of group %(group)s can carry this message."),
        code="no_channel", params={"group": group},
    )


def resolve_agent(agent: str | None) -> Agent:
    try:
        return mmc_settings.get_agent(agent)
    except MMCConfigurationError as err:
        raise ValidationError(str(err), code="unknown_agent") from None



# -- what a single send and a campaign share -------------------------------------


@dataclass(frozen=True)
class SendOptions:
    """A template send's validated options (``None`` where invalid; the
    errors went to :class:`Errors`)."""

    template: Template | None
    channel_group: ChannelGroup | None
    channel_type: str | None
    fallback: list[str] = field(default_factory=list)


def resolve_send_options(
    errors: Errors,
    template: Template | str | int,
    channel_group: ChannelGroup | str | int | None,
    channel_type: str | None,
    priority: str,
    send_at: datetime | None,
    expires_at: datetime | None,
    fallback: Iterable[str] | bool | None,
) -> SendOptions:
    """Validate what a single send and a campaign share: template, channel
    group and type, priority, times and fallback. Problems go to ``errors``."""
    tpl = group = kind = None
    chain: list[str] = []
    try:
        tpl = resolve_template(template)
    except ValidationError as err:
        errors.add("template", err)
    try:
        group = resolve_channel_group(channel_group)
    except ValidationError as err:
        errors.add("channel_group", err)
    if group is not None and tpl is not None:
        try:
            kind = resolve_channel_type(channel_type, group, tpl)
        except ValidationError as err:
            errors.add("channel_type", err)
    if priority not in Priority.values:
        errors.add("priority", ValidationError(
            _("Unknown priority %(value)s; use one of %(choices)s."), code="invalid_priority",
            params={"value": priority, "choices": ", ".join(Priority.values)}))
    check_times(errors, send_at, expires_at)
    if kind is not None:
        try:
            chain = fallback_chain(fallback, kind)
        except ValidationError as err:
            errors.add("fallback", err)
    return SendOptions(tpl, group, kind, chain)


def check_times(errors: Errors, send_at: datetime | None, expires_at: datetime | None
                 ) -> None:
    for name, value in (("send_at", send_at), ("expires_at", expires_at)):
        if value is not None and (not isinstance(value, datetime)
                                  or timezone.is_naive(value)):
            errors.add(name, ValidationError(
                _("%(name)s must be a timezone-aware datetime."), code="invalid_datetime",
                params={"name": name}))
            return
    if expires_at is not None and expires_at <= max(send_at or timezone.now(), timezone.now()):
        errors.add("expires_at", ValidationError(
            _("expires_at must be later than now and than send_at."), code="expires_too_soon"))


def fallback_chain(fallback: Iterable[str] | bool | None, first: str) -> list[str]:
    """The channel types to fall back to after ``first``, in order."""
    if fallback is False or fallback == []:
        return []
    order = list(mmc_settings.FALLBACK_CHANNEL_TYPES if fallback in (None, True) else fallback)
    if not all(isinstance(t, str) and t for t in order):
        raise ValidationError(_("The fallback must be a list of channel types."),
                              code="invalid_fallback")
    order = [t.upper() for t in order]
    if first in order:
        return order[order.index(first) + 1:]
    return [t for t in order if t != first]



# -- dialogues -------------------------------------------------------------------


@dataclass(frozen=True)
class DialogueRequest:
    """A validated :func:`django_mmc.api.open_dialogue` call."""

    agent: Agent
    #: The number, or the platform customer id of a recipient known only by that.
    phone_number: str
    channel_group: ChannelGroup
    channel_type: str
    #: The opening template and its checked context, if one was given.
    template: Template | None = None
    context: dict[str, str] = field(default_factory=dict)


def validate_dialogue(to: Recipient | str, agent: str | None,
                      channel_group: ChannelGroup | str | int | None,
                      channel_type: str | None,
                      template: Template | str | int | None = None,
                      context: Mapping[str, Any] | None = None) -> DialogueRequest:
    """Resolve the arguments of a dialogue to open, or raise a
    ``ValidationError`` naming each bad one. An opening ``template`` must
    suit the channel type, and ``context`` fill its parameters."""
    errors = Errors()
    phone_number = group = kind = resolved_agent = tpl = None
    cleaned: dict[str, str] = {}
    try:
        resolved_agent = resolve_agent(agent)
    except ValidationError as err:
        errors.add("agent", err)
    try:
        phone_number = resolve_address(to)
    except ValidationError as err:
        errors.add("to", err)
    try:
        group = resolve_channel_group(channel_group)
    except ValidationError as err:
        errors.add("channel_group", err)
    if template is not None:
        try:
            tpl = resolve_template(template)
            cleaned = tpl.validate_context(dict(context) if isinstance(context, Mapping)
                                           else context)
        except ValidationError as err:
            errors.add("template" if tpl is None else "context", err)
    elif context:
        errors.add("context", ValidationError(
            _("A context needs an opening template."), code="context_without_template"))
    if group is not None:
        try:
            kind = resolve_channel_type(channel_type, group, tpl)
        except ValidationError as err:
            errors.add("channel_type", err)
    errors.raise_if_any()
    return DialogueRequest(resolved_agent, phone_number, group, kind, tpl, cleaned)


@dataclass(frozen=True)
class MessageRequest:
    """A validated :func:`django_mmc.api.send_message` call."""

    text: str
    template: Template | None
    context: dict[str, str]
    files: list[dict[str, Any]]
    channel_type: str


def validate_message(
    dialogue: Dialogue,
    text: str | None,
    template: Template | str | int | None,
    context: Mapping[str, Any] | None,
    files: Iterable[Any],
    channel_type: str | None,
) -> MessageRequest:
    """Check a dialogue message before it is stored: an open dialogue, text
    or a template (not both), the template's parameters, the channel type,
    WhatsApp's care window for free text, and the files. Raises a
    ``ValidationError`` naming each problem."""
    errors = Errors()
    tpl = kind = None
    cleaned: dict[str, str] = {}
    if dialogue.status not in (DialogueStatus.OPENING, DialogueStatus.OPEN):
        errors.add("dialogue", ValidationError(
            _("The dialogue is %(status)s; messages can only be sent in an open dialogue."),
            code="dialogue_not_open", params={"status": dialogue.get_status_display()},
        ))
    if (text is None or text == "") == (template is None):
        errors.add("text", ValidationError(
            _("Give either a text or a template, not both and not neither."),
            code="text_or_template",
        ))
    elif text is not None:
        if not isinstance(text, str) or not text.strip():
            errors.add("text", _("The text is empty."))
        elif len(text) > MAX_TEXT_LENGTH:
            errors.add("text", ValidationError(
                _("The text is %(length)d characters long; the most is %(max)d."),
                code="text_too_long", params={"length": len(text), "max": MAX_TEXT_LENGTH},
            ))
    if template is not None:
        try:
            tpl = resolve_template(template)
            cleaned = tpl.validate_context(dict(context) if isinstance(context, Mapping)
                                           else context)
        except ValidationError as err:
            errors.add("template" if tpl is None else "context", err)
    try:
        kind = resolve_channel_type(channel_type or dialogue.channel_type or None,
                                    dialogue.channel_group, tpl)
    except ValidationError as err:
        errors.add("channel_type", err)
    if (text and kind and mmc_settings.ENFORCE_CARE_WINDOW
            and not dialogue.can_send_text(kind)):
        errors.add("text", ValidationError(
            _("The recipient has not written in the last %(hours)s hours, so %(type)s allows "
              "only a template now, not free text. Send a template instead."),
            code="outside_care_window",
            params={"hours": mmc_settings.CARE_WINDOW_HOURS, "type": kind}))
    file_list = []
    for item in files or ():
        file_id = item.get("id") if isinstance(item, Mapping) else item
        if file_id in (None, "") or not isinstance(file_id, (str, int)):
            errors.add("files", _("Each file must be a platform file id or a dict with an 'id'."))
            break
        file_list.append(dict(item) if isinstance(item, Mapping) else {"id": str(file_id)})
    errors.raise_if_any()
    return MessageRequest(text or "", tpl, cleaned, file_list, kind)
