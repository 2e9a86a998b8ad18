"""Telling customers about their orders: the part of the shop that uses django_mmc.

Two signal handlers do it. ``pre_save`` remembers the status an order had in
the database; ``post_save`` compares, and when the status *changed* to
confirmed or shipped it calls :func:`django_mmc.send_notification`.

Three things worth knowing when you write your own:

* **It runs inside the save's transaction.** ``post_save`` fires before the
  transaction around the save (the admin's, or your view's with
  ``ATOMIC_REQUESTS``) commits. ``send_notification`` does not call the
  platform: it validates, stores a ``Notification`` row in that same
  transaction and asks Celery to send it *on commit*. So if the order change
  rolls back, the notification row vanishes with it and nothing is sent;
  if it commits, the row is there even if the process dies right after
  (the outbox sweeper sends it then).

* **Only on a change.** Saving a shipped order again (to fix a typo in the
  name, say) must not tell the customer twice, hence the comparison with
  the stored status. ``queryset.update()`` sends no signals at all: change
  status with ``save()``.

* **A bad phone number must not stop the shipment.** ``send_notification``
  raises ``ValidationError`` (naming the argument) when it cannot send: an
  invalid number, a template not synced yet... We log it and let the order
  save; your shop may prefer to refuse the save instead.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

import django_mmc

from .models import Order

logger = logging.getLogger("shop")


@receiver(pre_save, sender=Order, dispatch_uid="shop.remember_previous_status")
def remember_previous_status(sender: type[Order], instance: Order, raw: bool = False,
                             **kwargs: Any) -> None:
    """Note the status the order has in the database, before this save."""
    if raw or instance._state.adding:
        instance._previous_status = None
        return
    instance._previous_status = (
        Order.objects.filter(pk=instance.pk).values_list("status", flat=True).first()
    )


@receiver(post_save, sender=Order, dispatch_uid="shop.notify_customer")
def notify_customer(sender: type[Order], instance: Order, created: bool, raw: bool = False,
                    **kwargs: Any) -> None:
    """Tell the customer when the order became confirmed or shipped."""
    if raw:  # loading fixtures: nothing happened to a real order
        return
    previous = getattr(instance, "_previous_status", None)
    if instance.status == previous:
        return
    if instance.status == Order.Status.CONFIRMED:
        template = "order_confirmed"
        context = {"first_name": instance.first_name, "order_number": instance.number}
    elif instance.status == Order.Status.SHIPPED:
        template = "order_shipped"
        context = {"first_name": instance.first_name}
        if instance.tracking_url:  # an optional parameter of the template
            context["tracking_url"] = instance.tracking_url
    else:
        return
    try:
        # Templates are named as on the platform; the channel group and type
        # default to MMC["DEFAULT_CHANNEL_GROUP"] and MMC["DEFAULT_CHANNEL_TYPE"].
        django_mmc.send_notification(instance.phone, template, context)
    except ValidationError as error:
        logger.warning("Order %s: could not notify %s (%s): %s", instance.number,
                       instance.phone, template, "; ".join(error.messages))
