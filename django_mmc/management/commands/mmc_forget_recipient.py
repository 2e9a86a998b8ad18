from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from django_mmc.erasure import forget_recipient


class Command(BaseCommand):
    help = (
        "Erase a person's personal data: their phone number, name and metadata, the text "
        "and files of their messages, the parameters of their notifications, the detail of "
        "their consent changes and the webhook bodies about them. The rows stay, with their "
        "statuses, times and template ids, for accounting. Give each person as a phone "
        "number in E.164 form or as the recipient's id (--id). Safe to run twice."
    )

    def add_arguments(self, parser):
        parser.add_argument("people", nargs="+", metavar="NUMBER_OR_ID",
                            help="Phone numbers in E.164 form (or recipient ids with --id).")
        parser.add_argument("--id", action="store_true", dest="by_id",
                            help="The arguments are recipient ids, not phone numbers.")
        parser.add_argument("--no-input", "--noinput", action="store_false", dest="interactive",
                            help="Do not ask for confirmation.")

    def handle(self, *args, people, by_id=False, interactive=True, **options):
        targets = []
        for value in people:
            if by_id:
                try:
                    targets.append(int(value))
                except ValueError:
                    raise CommandError(f"{value!r} is not a recipient id.") from None
            else:
                targets.append(value)
        if interactive:
            answer = input(f"Erase the personal data of {len(targets)} person(s)? This cannot "
                           "be undone. Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Nothing erased.")
        failed = 0
        for target in targets:
            try:
                report = forget_recipient(target)
            except ValidationError as error:
                failed += 1
                self.stderr.write(f"{target}: " + " ".join(error.messages))
                continue
            self.stdout.write(self.style.SUCCESS(f"{target}: forgotten ({report})."))
        if failed:
            raise CommandError(f"{failed} of {len(targets)} could not be forgotten.")
