from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from django_mmc.models import normalize_phone_number


class Order(models.Model):
    """A customer's order. When it is confirmed or shipped, the customer is
    told on WhatsApp (or SMS): see ``shop/signals.py``."""

    class Status(models.TextChoices):
        NEW = "new", _("New")
        CONFIRMED = "confirmed", _("Confirmed")
        SHIPPED = "shipped", _("Shipped")

    customer_name = models.CharField(_("customer name"), max_length=200)
    phone = models.CharField(
        _("phone"), max_length=32,
        help_text=_("In E.164 form: + country code and number, e.g. +353861234567."),
    )
    status = models.CharField(_("status"), max_length=16, choices=Status.choices,
                              default=Status.NEW)
    tracking_url = models.URLField(_("tracking URL"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.number} ({self.customer_name})"

    @property
    def number(self) -> str:
        return f"A{self.pk:05d}" if self.pk else "A-new"

    @property
    def first_name(self) -> str:
        return (self.customer_name.split() or [""])[0]

    def clean(self) -> None:
        # Store the number the way the platform wants it, whatever was typed.
        try:
            self.phone = normalize_phone_number(self.phone)
        except ValidationError as error:
            raise ValidationError({"phone": error.messages}) from None
