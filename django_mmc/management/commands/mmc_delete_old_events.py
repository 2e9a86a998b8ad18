from django.core.management.base import BaseCommand, CommandError

from django_mmc.conf import mmc_settings
from django_mmc.processing import delete_old_events


class Command(BaseCommand):
    help = (
        "Delete processed and ignored webhook events older than --days (default "
        "MMC['WEBHOOK_EVENT_RETENTION_DAYS']). Failed and waiting events are kept for "
        "inspection. Also available as the delete_old_events periodic task."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="Keep events received within this many days.")

    def handle(self, *args, days=None, **options):
        days = mmc_settings.WEBHOOK_EVENT_RETENTION_DAYS if days is None else days
        if days < 0:
            raise CommandError("--days must be zero or more.")
        deleted = delete_old_events(days)
        self.stdout.write(self.style.SUCCESS(
            f"Deleted {deleted} webhook event(s) older than {days} day(s)."))
