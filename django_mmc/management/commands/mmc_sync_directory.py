from django.core.management.base import BaseCommand, CommandError

from django_mmc.directory import sync_directory
from django_mmc.exceptions import MMCError

#: How the command names each kind of list.
_KINDS = {"channel_groups": "channel groups", "templates": "templates"}


class Command(BaseCommand):
    help = (
        "Fetch the organisation's channel groups, channels and templates from the MMC "
        "platform and update the local copies, after applying those MMC['DIRECTORY'] "
        "declares. Whatever disappeared upstream is marked inactive, never deleted. Rows "
        "entered by hand in the admin or declared in the settings are always kept; if the "
        "platform offers no list of a kind (404 or 403), the command says so and changes "
        "nothing of that kind. Safe to run at any time (also the sync_directory task)."
    )

    def handle(self, *args, **options):
        try:
            report = sync_directory()
        except MMCError as err:
            raise CommandError(f"Sync failed: {err}") from err
        for kind, answer in report.get("unavailable", {}).items():
            self.stdout.write(self.style.WARNING(
                f"The platform does not list {_KINDS[kind]} (it answered {answer}): none "
                f"were synced. Enter them by hand in the admin, or declare them in "
                f"MMC['DIRECTORY']."))
        for kind, label in _KINDS.items():
            if kind not in report.get("unavailable", {}) and not report[kind]:
                self.stdout.write(self.style.WARNING(f"The platform listed no {label}."))
        self.stdout.write(self.style.SUCCESS(
            "Synced {channel_groups} channel group(s), {channels} channel(s) and "
            "{templates} template(s).".format(**report)))
        kept = report.get("kept", {})
        if any(kept.values()):
            self.stdout.write(
                "Kept {channel_groups} channel group(s) and {templates} template(s) entered "
                "by hand or declared in the settings.".format(**kept))
