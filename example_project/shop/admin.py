from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

import django_mmc

from .models import Order
from .sandbox import sandbox_reply


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("number", "customer_name", "phone", "status", "tracking_url", "updated_at")
    list_filter = ("status",)
    search_fields = ("customer_name", "phone")
    actions = ("mark_confirmed", "mark_shipped", "open_whatsapp_dialogue", "sandbox_reply")

    @admin.display(description=gettext_lazy("order"), ordering="pk")
    def number(self, obj: Order) -> str:
        return obj.number

    # Each order is saved on its own (not queryset.update(), which sends no
    # signals) so shop/signals.py notifies each customer.

    @admin.action(description=gettext_lazy("Mark as confirmed (notifies the customer)"),
                  permissions=["change"])
    def mark_confirmed(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, Order.Status.CONFIRMED)

    @admin.action(description=gettext_lazy("Mark as shipped (notifies the customer)"),
                  permissions=["change"])
    def mark_shipped(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._set_status(request, queryset, Order.Status.SHIPPED)

    def _set_status(self, request: HttpRequest, queryset: QuerySet, status: str) -> None:
        changed = 0
        with transaction.atomic():  # the notifications are sent when this commits
            for order in queryset.select_for_update():
                if order.status == status:
                    continue
                order.status = status
                if status == Order.Status.SHIPPED and not order.tracking_url:
                    order.tracking_url = f"https://tracking.example.com/{order.number}"
                order.save()
                changed += 1
        messages.success(request, ngettext(
            "%(count)d order is now %(status)s; its customer is being notified.",
            "%(count)d orders are now %(status)s; their customers are being notified.",
            changed) % {"count": changed, "status": Order.Status(status).label})

    def has_open_dialogue_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_mmc.reply_dialogue")

    @admin.action(description=gettext_lazy("Open a WhatsApp dialogue with the customer"),
                  permissions=["open_dialogue"])
    def open_whatsapp_dialogue(self, request: HttpRequest, queryset: QuerySet) -> None:
        for order in queryset:
            try:
                dialogue = django_mmc.open_dialogue(order.phone, channel_type="WHATSAPP",
                                                    user=request.user)
            except ValidationError as error:
                messages.error(request, _("%(order)s: %(error)s") % {
                    "order": order, "error": "; ".join(error.messages)})
                continue
            url = reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk])
            messages.success(request, format_html(
                _("{order}: <a href=\"{url}\">dialogue with {recipient}</a> ({status})."),
                order=order, url=url, recipient=dialogue.recipient,
                status=dialogue.get_status_display()))

    def has_sandbox_reply_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(settings, "SHOP_SANDBOX_CONTROLS", False)) and \
            request.user.has_perm("shop.view_order")

    @admin.action(description=gettext_lazy("Sandbox: make the customer write to us"),
                  permissions=["sandbox_reply"])
    def sandbox_reply(self, request: HttpRequest, queryset: QuerySet) -> None:
        for order in queryset:
            text = _("Hi, this is %(name)s. Any news about order %(order)s?") % {
                "name": order.first_name, "order": order.number}
            try:
                sandbox_reply(order.phone, text)
            except RuntimeError as error:
                messages.error(request, str(error))
                return
        messages.success(request, _(
            "The sandbox customers wrote; their messages appear in Dialogues in a moment."))
