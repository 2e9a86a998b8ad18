import django_mmc


def order_shipped(order):
    # In a signal handler, inside the business transaction: sent only if it commits.
    django_mmc.send_notification(
        order.phone, "order_shipped",
        {"first_name": order.first_name, "tracking_url": order.tracking_url},
    )


def welcome(phone_number):
    # A conversation only this site's agent may hold until it closes it. On WhatsApp
    # it starts with a template; free text follows once the customer has written.
    dialogue = django_mmc.open_dialogue(phone_number)
    dialogue.send_message(template="welcome")
    return dialogue
