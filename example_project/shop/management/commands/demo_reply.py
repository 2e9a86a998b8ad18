"""``manage.py demo_reply +353861234567 "Hi, where is my order?"``

Makes a recipient of the MMC sandbox write to us, as if from their phone:
the message arrives through the sandbox's signed webhooks, in the dialogue
that holds the recipient (or a new one the platform opens)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop.sandbox import sandbox_reply


class Command(BaseCommand):
    help = "Make a recipient of the MMC sandbox write a message to this site (demo only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", help="the recipient's number, E.164 (+353861234567)")
        parser.add_argument("text", nargs="+", help="what they write")
        parser.add_argument("--channel-group", default=None,
                            help="platform id of the channel group (default: MMC's default)")
        parser.add_argument("--channel-type", default="WHATSAPP", help="WHATSAPP or SMS")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = sandbox_reply(options["number"], " ".join(options["text"]),
                                   channel_group=options["channel_group"],
                                   channel_type=options["channel_type"].upper())
        except RuntimeError as error:
            raise CommandError(str(error)) from None
        opened = " (the platform opened a new dialogue)" if result.get("opened") else ""
        self.stdout.write(self.style.SUCCESS(
            f"{options['number']} wrote in platform dialogue {result.get('dialogue_id')} "
            f"of agent {result.get('agent_id')}{opened}."))
