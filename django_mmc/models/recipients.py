from __future__ import annotations

from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, router, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def normalize_phone_number(value: Any) -> str:
    """``value`` in E.164 form (``+`` country code and number, no spaces).

    Spaces, dashes and brackets are tolerated on input; anything that is not
    a valid number with its country code raises a ``ValidationError``."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(_("Enter a phone number."), code="required")
    text = value.strip()
    if not text.startswith("+"):
        raise ValidationError(
            _("%(value)s is not in E.164 form: start with + and the country code."),
            code="invalid_phone_number", params={"value": text[:32]},
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("%(value)s is not a valid phone number."),
            code="invalid_phone_number", params={"value": text[:32]},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class RecipientManager(models.Manager["Recipient"]):
    def for_number(self, number: str, *, name: str = "") -> Recipient:
        """The recipient with this number, created if new. Raises
        ``ValidationError`` for a number that is not valid E.164."""
        phone_number = normalize_phone_number(number)
        recipient = self.filter(phone_number=phone_number).first()
        if recipient is not None:
            return recipient
        try:
            with transaction.atomic(using=router.db_for_write(self.model)):
                return self.create(phone_number=phone_number, name=name)
        except IntegrityError:  # created by someone else meanwhile
            return self.get(phone_number=phone_number)


class Recipient(models.Model):
    """A person the site messages, identified by an E.164 phone number."""

    phone_number = models.CharField(_("phone number"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    #: Channel types on which the recipient asked not to be messaged.
    opted_out_channel_types = models.JSONField(_("opted out of"), default=list, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = RecipientManager()

    class Meta:
        verbose_name = _("recipient")
        verbose_name_plural = _("recipients")
        ordering = ["phone_number"]

    def __str__(self) -> str:
        return f"{self.name} ({self.phone_number})" if self.name else self.phone_number

    def has_opted_out(self, channel_type: str) -> bool:
        return channel_type in (self.opted_out_channel_types or [])

    def clean(self) -> None:
        try:
            self.phone_number = normalize_phone_number(self.phone_number)
        except ValidationError as err:
            raise ValidationError({"phone_number": err.messages}) from None


class ConsentChange(models.Model):
    """One change of a recipient's consent on a channel type: the audit log."""

    class Source(models.TextChoices):
        KEYWORD = "KEYWORD", _("Keyword from the recipient")
        ADMIN = "ADMIN", _("Staff, in the admin")
        API = "API", _("Business code")

    recipient = models.ForeignKey(
        Recipient, on_delete=models.CASCADE, related_name="consent_changes",
        verbose_name=_("recipient"),
    )
    channel_type = models.CharField(_("channel type"), max_length=32)
    opted_out = models.BooleanField(_("opted out"))
    source = models.CharField(_("source"), max_length=16, choices=Source.choices)
    detail = models.CharField(_("detail"), max_length=200, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
        null=True, blank=True, related_name="+", verbose_name=_("changed by"),
    )
    #: When the wish was expressed: when the recipient wrote the keyword, or
    #: when staff or business code made the change. Consent follows the latest.
    occurred_at = models.DateTimeField(_("expressed"), default=timezone.now)
    #: A keyword older than a change already applied: logged, not applied.
    superseded = models.BooleanField(
        _("superseded"), default=False,
        help_text=_("Written before a change already applied, so it changed nothing."))
    created_at = models.DateTimeField(_("when"), auto_now_add=True)

    class Meta:
        verbose_name = _("consent change")
        verbose_name_plural = _("consent changes")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["recipient", "channel_type", "-occurred_at"],
                         name="mmc_consent_latest_idx"),
        ]

    def __str__(self) -> str:
        verb = _("opted out of") if self.opted_out else _("opted in to")
        return f"{self.recipient} {verb} {self.channel_type}"
