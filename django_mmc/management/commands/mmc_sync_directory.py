from django.core.management.base import BaseCommand, CommandError

from django_mmc.directory import sync_directory
from django_mmc.exceptions import MMCError


class Command(BaseCommand):
    help = (
        "Fetch the organisation's channel groups, channels and templates from the MMC "
        "platform and update the local copies. Whatever disappeared upstream is marked "
        "inactive, never deleted. Safe to run at any time (also the sync_directory task)."
    )

    def handle(self, *args, **options):
        try:
            counts = sync_directory()
        except MMCError as err:
            raise CommandError(f"Sync failed: {err}") from err
        self.stdout.write(self.style.SUCCESS(
            "Synced {channel_groups} channel group(s), {channels} channel(s) and "
            "{templates} template(s).".format(**counts)))
