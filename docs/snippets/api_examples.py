# shop/messaging.py: django_mmc's public API in use.
import logging
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

import django_mmc
from django_mmc.api import cancel_notification, retry_notification, set_consent

logger = logging.getLogger("shop.messaging")


def send_code(phone_number, code):
    """A one-time passcode: urgent, useless after five minutes, and sent even to
    a recipient who opted out of SMS (it is transactional)."""
    return django_mmc.send_notification(
        phone_number, "otp", {"code": code},
        channel_type="SMS", priority="now", transactional=True,
        expires_at=timezone.now() + timedelta(minutes=5),
    )


def notify_shipped(phone_number, first_name):
    """Bad input raises ValidationError naming the argument at fault; nothing is stored."""
    try:
        return django_mmc.send_notification(
            phone_number, "order_shipped", {"first_name": first_name},
            fallback=["WHATSAPP", "SMS"],  # SMS if the recipient is not on WhatsApp
        )
    except ValidationError as error:
        # e.g. {"to": ["0861234567 is not in E.164 form: start with + and ..."]}
        logger.warning("Shipping notice not sent: %s", error.message_dict)
        return None


def remind(appointments, send_at):
    """One template to many recipients, one context each: a campaign, scheduled.

    Every number and context is checked before anything is stored. Returns how
    many notifications were stored (recipients who opted out are left out).
    """
    return django_mmc.send_notifications(
        [appointment.phone for appointment in appointments],
        "appointment_reminder",
        [{"first_name": appointment.first_name, "date": appointment.date}
         for appointment in appointments],
        send_at=send_at,
    )


def start_support_chat(phone_number, first_name):
    """An exclusive dialogue: only this site's "support" agent may message the
    recipient on the channel group until it is closed."""
    dialogue = django_mmc.open_dialogue(phone_number, agent="support")
    # On WhatsApp the first message is a template: free text is allowed only
    # within 24 hours of the recipient's last message.
    dialogue.send_message(template="order_shipped", context={"first_name": first_name})
    return dialogue


def answer(dialogue, text):
    """Free text, once the recipient has written; messages go out in order."""
    if dialogue.can_send_text():
        return dialogue.send_message(text)
    return None


def end_support_chat(dialogue):
    # Closed after its queued messages are sent; the recipient is free again.
    return dialogue.close()


def try_again(notification):
    """A refused, failed or expired notification is sent again as a new one
    (linked through retry_of); one whose retries were used up (ERROR) is queued
    again with its own idempotency key."""
    return retry_notification(notification)


def call_off(notification):
    """Cancel a scheduled or waiting notification; False if it is already sent."""
    return cancel_notification(notification)


def unsubscribe(phone_number):
    """The customer asked, on the website, for no more WhatsApp messages."""
    return set_consent(phone_number, "WHATSAPP", opted_out=True, source="API",
                       detail="Preferences page")
