"""Erasing a person: :func:`forget_recipient`.

A recipient cannot simply be deleted: notifications and dialogues refer to
it, and they are the site's record of what was sent, when, and at what
cost. Forgetting a person instead removes everything that says who they are
or what they wrote, and keeps the rows with what accounting needs:

* **Removed or anonymised:** the recipient's phone number (replaced by
  ``erased-<id>``), name and metadata; the text, files and template
  parameters of every message of their dialogues; the template parameters of
  their notifications; the platform's failure details and the last errors
  (they can quote a number); the free-text detail of their consent changes
  (the keyword they sent); the stored webhook bodies about their
  notifications, messages and dialogues, or that contain their number (only
  the event's type, time, status and the platform ids are kept, and the
  signature, which no longer matches, is dropped); their number in the
  admin's change history.
* **Kept:** every row and its count; statuses and their times; channel,
  channel group, template and platform ids; failure codes; directions; who
  on the staff sent or closed what; the consent changes themselves (channel
  type, opted out or in, source, time) and the channel types the person
  opted out of.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from .dispatch import database
from .models import ConsentChange, Dialogue, Message, Notification, Recipient, WebhookEvent
from .models.recipients import normalize_phone_number
from .status import DialogueStatus, Status
from .transitions import cancel_notification

logger = logging.getLogger(__name__)

#: Prefix of an erased recipient's "phone number" (unique, and never a number).
ERASED_PREFIX = "erased-"

#: What of a webhook body survives erasure: its type, time and status, and
#: which platform objects it concerns (never the person's own id, which is
#: their number).
_KEPT_ATTRIBUTES = frozenset({"eventType", "occurredAt", "status", "closedBy", "initiatedBy",
                              "channelType"})
_DROPPED_RELATIONSHIPS = frozenset({"recipient"})


@dataclass(frozen=True)
class ErasureReport:
    """What :func:`forget_recipient` touched: rows anonymised per kind."""

    recipients: int = 0
    notifications: int = 0
    cancelled_notifications: int = 0
    dialogues: int = 0
    messages: int = 0
    consent_changes: int = 0
    webhook_events: int = 0
    log_entries: int = 0

    def __str__(self) -> str:
        return ", ".join(f"{name.replace('_', ' ')}: {value}"
                         for name, value in self.__dict__.items())


def is_erased(recipient: Recipient) -> bool:
    return (recipient.phone_number or "").startswith(ERASED_PREFIX)


def forget_recipient(recipient: Recipient | int | str) -> ErasureReport:
    """Erase a person's personal data (see the module's docstring for what is
    removed and what is kept), given as a ``Recipient``, its primary key, or
    its phone number.

    Guarantees: one transaction, all or nothing; safe to run twice (a second
    run finds nothing left to erase and changes nothing that matters); the
    notifications still scheduled or waiting to be sent are cancelled first
    (through :func:`django_mmc.transitions.cancel_notification`, so its
    signal fires; one whose last attempt may have reached the platform is
    not cancelled, and keeps the person busy until it is settled). Raises
    ``ValidationError`` (``code="busy"``) while something is still being
    exchanged with the person: a dialogue that is open, opening or closing,
    or a message or notification being sent. Close the dialogue, wait for
    its queued messages to go, then erase. A phone number that no
    recipient has still has its webhook bodies erased."""
    with transaction.atomic(using=database()):
        found, number = _lock(recipient)
        old_label = str(found) if found is not None and not is_erased(found) else ""
        platform_ids: set[str] = set()
        counts: dict[str, int] = {}
        if found is not None:
            cancelled = 0
            for notification in Notification.objects.filter(
                    recipient=found, status__in=(Status.SCHEDULED, Status.QUEUED),
                    platform_id__isnull=True):
                cancelled += bool(cancel_notification(notification))
            counts["cancelled_notifications"] = cancelled
            _refuse_while_busy(found)
            platform_ids = _platform_ids(found)
            counts.update(_anonymise_rows(found))
        counts["webhook_events"] = _erase_webhook_bodies(platform_ids, number)
        counts["log_entries"] = _erase_admin_history(found, number, old_label)
        report = ErasureReport(**counts)
    logger.info("django_mmc: recipient %s forgotten (%s)",
                found.pk if found is not None else "-", report)
    return report


def _lock(value: Recipient | int | str) -> tuple[Recipient | None, str]:
    """The recipient, locked for the transaction, and its number as stored
    before erasure (``""`` once erased)."""
    rows = Recipient.objects.select_for_update()
    if isinstance(value, Recipient):
        found = rows.filter(pk=value.pk).first()
    elif isinstance(value, int):
        found = rows.filter(pk=value).first()
    else:
        text = str(value).strip()
        if text.startswith(ERASED_PREFIX):
            found = rows.filter(phone_number=text).first()
            return found, ""
        try:
            number = normalize_phone_number(text)
        except ValidationError:
            raise ValidationError(
                _("%(value)s is neither a recipient nor a phone number in E.164 form."),
                code="invalid", params={"value": text[:32]}) from None
        return rows.filter(phone_number=number).first(), number
    if found is None:
        raise ValidationError(_("No such recipient."), code="not_found")
    return found, "" if is_erased(found) else (found.phone_number or "")


def _refuse_while_busy(recipient: Recipient) -> None:
    active = Dialogue.objects.filter(recipient=recipient, status__in=(
        DialogueStatus.OPENING, DialogueStatus.OPEN, DialogueStatus.CLOSING)).exists()
    sending = (
        Notification.objects.filter(recipient=recipient,
                                    status__in=(Status.QUEUED, Status.SENDING)).exists()
        or Message.objects.filter(dialogue__recipient=recipient,
                                  status__in=(Status.QUEUED, Status.SENDING)).exists()
    )
    if active or sending:
        raise ValidationError(
            _("%(recipient)s cannot be forgotten yet: a dialogue with them is still open or "
              "something is being sent to them. Close the dialogue, wait until its messages "
              "have gone, and try again.") % {"recipient": recipient},
            code="busy")


def _platform_ids(recipient: Recipient) -> set[str]:
    ids: set[str] = set()
    for queryset in (Notification.objects.filter(recipient=recipient),
                     Dialogue.objects.filter(recipient=recipient),
                     Message.objects.filter(dialogue__recipient=recipient)):
        ids.update(queryset.exclude(platform_id__isnull=True)
                   .values_list("platform_id", flat=True))
    return ids


def _anonymise_rows(recipient: Recipient) -> dict[str, int]:
    counts = {
        "notifications": Notification.objects.filter(recipient=recipient).update(
            context={}, failure_detail="", last_error=""),
        "messages": Message.objects.filter(dialogue__recipient=recipient).update(
            text="", files=[], context={}, failure_detail="", last_error=""),
        "dialogues": Dialogue.objects.filter(recipient=recipient).update(
            opening_context={}, failure_detail="", last_error=""),
        "consent_changes": ConsentChange.objects.filter(recipient=recipient).update(detail=""),
    }
    counts["recipients"] = Recipient.objects.filter(pk=recipient.pk).update(
        phone_number=f"{ERASED_PREFIX}{recipient.pk}", customer_id=None, name="", metadata={})
    recipient.refresh_from_db()
    return counts


def _erase_webhook_bodies(platform_ids: set[str], number: str) -> int:
    condition = Q()
    if platform_ids:
        condition |= Q(subject_id__in=platform_ids)
    if number:
        condition |= Q(body__contains=number)
    if not condition:
        return 0
    count = 0
    for event in WebhookEvent.objects.filter(condition).select_for_update().only(
            "pk", "body", "signature"):
        body = redacted_body(event.body, number)
        if body != event.body or event.signature:
            WebhookEvent.objects.filter(pk=event.pk).update(body=body, signature="")
        count += 1
    return count


def redacted_body(body: str, number: str = "") -> str:
    """A webhook body with only what accounting needs: the event's id, type,
    time and status, the failure code, and the platform ids of what it is
    about; never the person's number (``number``), text, files or name."""
    try:
        parsed = json.loads(body)
        data = parsed["data"]
        attributes = data.get("attributes") or {}
        relationships = data.get("relationships") or {}
    except (ValueError, KeyError, TypeError, AttributeError):
        return "{}"
    if not isinstance(attributes, dict) or not isinstance(relationships, dict):
        return "{}"
    kept: dict[str, Any] = {k: v for k, v in attributes.items()
                            if k in _KEPT_ATTRIBUTES and isinstance(v, str | int | None)}
    failure = attributes.get("failure")
    if isinstance(failure, dict) and isinstance(failure.get("code"), str):
        kept["failure"] = {"code": failure["code"]}
    links = {}
    for name, link in relationships.items():
        if name in _DROPPED_RELATIONSHIPS:
            continue
        try:
            ref = link["data"]
            links[name] = {"data": {"type": str(ref["type"]), "id": str(ref["id"])}}
        except (KeyError, TypeError):
            continue
    result = {"data": {"type": str(data.get("type", "")), "id": str(data.get("id", "")),
                       "attributes": kept, "relationships": links},
              "meta": {"erased": True}}
    text = json.dumps(result, separators=(",", ":"), sort_keys=True)
    if number and number in text:  # an id that is the number: drop everything said
        return "{}"
    return text


def _erase_admin_history(recipient: Recipient | None, number: str, old_label: str) -> int:
    """The admin's change history names objects by their ``str()``, which
    for a recipient (and what refers to it) holds the name and number."""
    if not apps.is_installed("django.contrib.admin") or not (number or old_label):
        return 0
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    count = 0
    label = recipient.phone_number if recipient is not None else _("erased recipient")
    if recipient is not None and old_label:
        # The recipient's own entries, found by id: a recipient known only by
        # its customer id has no number to look for.
        count += LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Recipient),
            object_id=str(recipient.pk)).exclude(object_repr=label).update(object_repr=label)
    if not number:
        return count
    for entry in LogEntry.objects.filter(object_repr__contains=number).only("pk", "object_repr"):
        text = entry.object_repr.replace(old_label, label) if old_label else entry.object_repr
        LogEntry.objects.filter(pk=entry.pk).update(
            object_repr=text.replace(number, label)[:200])
        count += 1
    return count
