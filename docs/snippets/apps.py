# shop/apps.py (replace the file startapp wrote)
from django.apps import AppConfig
from django.db.models.signals import post_save


class ShopConfig(AppConfig):
    name = "shop"

    def ready(self):
        from . import handlers
        from .models import Order

        post_save.connect(
            handlers.notify_order_shipped, sender=Order, dispatch_uid="shop.notify_order_shipped"
        )
