from __future__ import annotations

import logging
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

logger = logging.getLogger("django_mmc.recipients")


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


def normalize_customer_id(value: Any) -> str:
    """A platform customer id as stored: text, stripped, never empty and
    never starting with ``+`` (which is how a phone number is told apart)."""
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not text or text.startswith("+") or len(text) > 64:
        raise ValidationError(_("%(value)s is not a platform customer id."),
                              code="invalid_customer_id", params={"value": str(value)[:32]})
    return text


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

    def for_customer(self, customer_id: str, *, phone_number: str | None = None,
                     name: str = "") -> Recipient:
        """The recipient the platform knows as ``customer_id``, created if new.

        When ``phone_number`` is given too, the two are linked: a recipient
        known only by that number gets the customer id, one known only by the
        customer id gets the number. If they already belong to two different
        recipients, the customer id's is returned and nothing is merged.
        Raises ``ValidationError`` for an id or number that is not valid."""
        customer_id = normalize_customer_id(customer_id)
        number = normalize_phone_number(phone_number) if phone_number else None
        for _attempt in range(3):
            by_id = self.filter(customer_id=customer_id).first()
            by_number = self.filter(phone_number=number).first() if number else None
            try:
                with transaction.atomic(using=router.db_for_write(self.model)):
                    if by_id is not None:
                        if number and by_id.phone_number is None and by_number is None:
                            self.filter(pk=by_id.pk).update(phone_number=number)
                            by_id.phone_number = number
                        elif number and by_id.phone_number != number:
                            logger.warning(
                                "django_mmc: customer id and phone number name two recipients "
                                "(%s and %s); not merged", by_id.pk,
                                by_number.pk if by_number else "-")
                        return by_id
                    if by_number is not None:
                        if by_number.customer_id is None:
                            self.filter(pk=by_number.pk).update(customer_id=customer_id)
                            by_number.customer_id = customer_id
                            return by_number
                        logger.warning(
                            "django_mmc: recipient %s already has another customer id; a new "
                            "recipient is made for the other one", by_number.pk)
                        number = None
                    return self.create(customer_id=customer_id, phone_number=number, name=name)
            except IntegrityError:  # linked or created by someone else meanwhile: look again
                continue
        return self.get(customer_id=customer_id)


class Recipient(models.Model):
    """A person the site messages, identified by an E.164 phone number, by
    the platform's customer id, or by both (linked as soon as both are seen)."""

    #: ``None`` for a recipient known only by the platform's customer id.
    phone_number = models.CharField(_("phone number"), max_length=20, unique=True,
                                    null=True, blank=True)
    #: The platform's own id of the customer, where it names one.
    customer_id = models.CharField(
        _("platform customer id"), max_length=64, unique=True, null=True, blank=True,
        help_text=_("The id the platform knows this customer by, where it gives one."))
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
        constraints = [
            models.CheckConstraint(
                condition=Q(phone_number__isnull=False) | Q(customer_id__isnull=False),
                name="mmc_recipient_number_or_customer_id",
                violation_error_message=_("Give a phone number or a platform customer id."),
            ),
        ]

    def __str__(self) -> str:
        address = self.address
        return f"{self.name} ({address})" if self.name else address

    @property
    def address(self) -> str:
        """The phone number, or the platform customer id for a recipient
        known only by that."""
        return self.phone_number or self.customer_id or ""

    def has_opted_out(self, channel_type: str) -> bool:
        return channel_type in (self.opted_out_channel_types or [])

    def clean(self) -> None:
        errors = {}
        if self.phone_number:
            try:
                self.phone_number = normalize_phone_number(self.phone_number)
            except ValidationError as err:
                errors["phone_number"] = err.messages
        else:
            self.phone_number = None
        if self.customer_id:
            try:
                self.customer_id = normalize_customer_id(self.customer_id)
            except ValidationError as err:
                errors["customer_id"] = err.messages
        else:
            self.customer_id = None
        if not errors and self.phone_number is None and self.customer_id is None:
            errors["phone_number"] = [_("Give a phone number or a platform customer id.")]
        if errors:
            raise ValidationError(errors)


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
