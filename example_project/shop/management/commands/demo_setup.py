"""``manage.py demo_setup``: what the demo needs before it starts.

Creates (or resets the password of) the superuser, syncs channel groups and
templates from the platform (waiting for the sandbox to come up), and adds a
few orders to play with; ``--fresh-start`` first forgets an earlier run.
The password comes from ``DEMO_ADMIN_PASSWORD`` so it never shows in the
process list."""

from __future__ import annotations

import os
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from django_mmc.directory import sync_directory
from django_mmc.exceptions import MMCError
from django_mmc.models import Dialogue, Notification, WebhookEvent
from shop.models import Order

SAMPLE_ORDERS = [
    ("Ann Murphy", "+353861234567"),
    ("Brian Kelly", "+353871234568"),
    ("Ciara Walsh", "+353831234569"),
    # The sandbox never reaches this number: its notifications fail (try Retry).
    ("Dara Unreachable", "+15005550001"),
]


class Command(BaseCommand):
    help = "Prepare the demo: superuser, directory sync from the platform, sample orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")
        parser.add_argument("--fresh-start", action="store_true",
                            help="delete the notifications, dialogues and webhook events of an "
                                 "earlier run, and its orders: a restarted sandbox knows none "
                                 "of them and hands out the same platform ids again")
        parser.add_argument("--sync-timeout", type=float, default=20.0,
                            help="seconds to wait for the platform to answer the sync")

    def handle(self, *args: Any, **options: Any) -> None:
        password = os.environ.get("DEMO_ADMIN_PASSWORD")
        if not password:
            raise CommandError("Set DEMO_ADMIN_PASSWORD to the password to give the superuser.")
        users = get_user_model()
        user = users.objects.filter(username=options["username"]).first()
        if user is None:
            user = users.objects.create_superuser(options["username"], "admin@example.com",
                                                  password)
        else:
            user.set_password(password)
            user.is_staff = user.is_superuser = user.is_active = True
            user.save()
        self.stdout.write(f"Superuser {user.username} ready.")

        deadline = time.monotonic() + options["sync_timeout"]
        while True:
            try:
                counts = sync_directory()
                break
            except MMCError as error:
                if time.monotonic() > deadline:
                    raise CommandError(f"Directory sync failed: {error}") from None
                time.sleep(0.5)
        self.stdout.write("Synced {channel_groups} channel groups, {channels} channels and "
                          "{templates} templates.".format(**counts))

        if options["fresh_start"]:
            # The sandbox keeps everything in memory and numbers its objects
            # from the same start every time: rows of an earlier run would
            # clash with the new run's platform ids.
            with transaction.atomic():
                deleted = Notification.objects.all().delete()[0]
                deleted += Dialogue.objects.all().delete()[0]  # and their messages
                deleted += WebhookEvent.objects.all().delete()[0]
                Order.objects.all().delete()
            if deleted:
                self.stdout.write(f"Deleted {deleted} rows of an earlier run.")

        if not Order.objects.exists():
            for name, phone in SAMPLE_ORDERS:
                Order.objects.create(customer_name=name, phone=phone)
            self.stdout.write(f"Added {len(SAMPLE_ORDERS)} sample orders.")
