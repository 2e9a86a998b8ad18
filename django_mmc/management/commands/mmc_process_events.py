from django.core.management.base import BaseCommand, CommandError

from django_mmc.models import WebhookEvent
from django_mmc.processing import process_event


class Command(BaseCommand):
    help = (
        "Process stored webhook events again, in this process: every failed and waiting "
        "event (the default), or the events named by --id (event ids as the platform sent "
        "them), whatever their state. Processing is idempotent: an event already applied "
        "changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("--id", dest="event_ids", action="append", default=[],
                            metavar="EVENT_ID", help="An event id; repeat for several.")
        parser.add_argument("--waiting", action="store_true",
                            help="Only events waiting for the object they are about.")

    def handle(self, *args, event_ids=(), waiting=False, **options):
        if event_ids:
            events = WebhookEvent.objects.filter(event_id__in=event_ids)
            unknown = set(event_ids) - set(events.values_list("event_id", flat=True))
            if unknown:
                raise CommandError(f"No stored event with id(s): {', '.join(sorted(unknown))}")
            events.update(state=WebhookEvent.State.PENDING)
        else:
            states = ([WebhookEvent.State.WAITING] if waiting
                      else [WebhookEvent.State.FAILED, WebhookEvent.State.WAITING])
            events = WebhookEvent.objects.filter(state__in=states)
        results: dict[str, int] = {}
        for pk in events.order_by("received_at").values_list("pk", flat=True):
            state = process_event(pk)
            results[state] = results.get(state, 0) + 1
        summary = ", ".join(f"{count} {state.lower()}" for state, count in sorted(results.items()))
        self.stdout.write(self.style.SUCCESS(f"Processed {sum(results.values())} event(s)"
                                             + (f": {summary}." if summary else ".")))
