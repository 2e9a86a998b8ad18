from django.core.management.base import BaseCommand

from django_mmc.workers.outbox import sweep_outbox


class Command(BaseCommand):
    help = (
        "Enqueue every notification, message and dialogue that should have been handed to "
        "a worker by now and was not (a crash between commit and enqueue, a broker outage, "
        "a killed worker). The same as the sweep_outbox periodic task."
    )

    def handle(self, *args, **options):
        counts = sweep_outbox()
        summary = ", ".join(f"{kind}: {count}" for kind, count in counts.items())
        self.stdout.write(self.style.SUCCESS(f"Enqueued {summary}."))
