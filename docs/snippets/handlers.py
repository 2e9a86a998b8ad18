# shop/handlers.py
import django_mmc


def notify_order_shipped(sender, instance, created=False, update_fields=None, **kwargs):
    """post_save receiver of shop.Order: tell the customer the order is on its way.

    The shop marks an order shipped with
    ``order.save(update_fields=["status", "tracking_url"])``. Only that save
    sends the notice, so saving a shipped order again for another reason
    does not send it twice.
    """
    if created or instance.status != "shipped":
        return
    if update_fields is None or "status" not in update_fields:
        return
    # Runs inside the transaction that saves the order: the notification is
    # stored now and sent by a worker only if that transaction commits.
    django_mmc.send_notification(
        instance.phone,
        "order_shipped",
        {"first_name": instance.first_name, "tracking_url": instance.tracking_url},
    )
