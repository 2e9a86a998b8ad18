# shop/receivers.py, imported from ShopConfig.ready() so that Celery workers,
# where most of these signals are sent, connect the receivers too.
import logging

from django.dispatch import receiver

from django_mmc.signals import dialogue_closed, message_received, notification_status_changed

logger = logging.getLogger("shop.messaging")


@receiver(notification_status_changed, dispatch_uid="shop.notification_status")
def notification_status(sender, notification, old_status, new_status, **kwargs):
    if notification.is_failure:
        logger.warning(
            "Notification %s to %s: %s (%s)",
            notification.pk, notification.recipient, new_status, notification.failure_text,
        )


@receiver(message_received, dispatch_uid="shop.message_received")
def message_from_customer(sender, message, dialogue, **kwargs):
    logger.info("%s wrote in dialogue %s: %s", dialogue.recipient, dialogue.pk, message.text)


@receiver(dialogue_closed, dispatch_uid="shop.dialogue_closed")
def dialogue_ended(sender, dialogue, closed_by, **kwargs):
    logger.info("Dialogue %s with %s closed by %s", dialogue.pk, dialogue.recipient, closed_by)
