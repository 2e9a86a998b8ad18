from django.core.management.base import BaseCommand, CommandError

from django_mmc.exceptions import MMCError
from django_mmc.polling import poll_dialogues, poll_notifications


class Command(BaseCommand):
    help = (
        "Ask the MMC platform now for the status of notifications that are not final and "
        "have had no news for MMC['POLL_AFTER'] seconds (100 ids per request), and apply "
        "what changed; then open dialogues with no news (the dialogue and its transcript: "
        "messages whose webhook never came are stored). The same as the poll_statuses "
        "periodic task."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None,
                            help="Poll at most this many notifications.")

    def handle(self, *args, limit=None, **options):
        try:
            totals = poll_notifications(limit=limit)
            dialogues = poll_dialogues(**({"limit": limit} if limit else {}))
        except MMCError as err:
            raise CommandError(f"Polling failed: {err}") from err
        self.stdout.write(self.style.SUCCESS(
            "Polled {polled} notification(s) in {requests} request(s); {changed} changed."
            .format(**totals)))
        self.stdout.write(self.style.SUCCESS(
            "Polled {dialogues} dialogue(s) in {requests} request(s): {received} message(s) "
            "received, {changed} status(es) changed, {closed} closed.".format(**dialogues)))
