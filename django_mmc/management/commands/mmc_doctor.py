from django.core.management.base import BaseCommand, CommandError

from django_mmc.doctor import DIFFERS, Doctor
from django_mmc.exceptions import MMCConfigurationError


class Command(BaseCommand):
    help = (
        "The first-day check: ask the configured MMC platform (or the sandbox) for a token "
        "and call each read endpoint the dialect (MMC['CONTRACT']) defines, then report each "
        "contract item as ok, differs (with what was seen) or not available, and propose the "
        "CONTRACT items that would fix what differs. Checks each agent's webhook secrets and, "
        "with --site-url, that its webhook URL answers from the site itself. Read-only, "
        "unless --send-test-to sends one real notification. Tokens and secrets are never "
        "shown. Exits with an error when an item differs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true",
                            help="Write the report as JSON (for CI) instead of a table.")
        parser.add_argument("--site-url", metavar="URL",
                            help="Where this site is served (https://example.com); the "
                                 "webhook URLs are resolved below it and checked.")
        parser.add_argument("--send-test-to", metavar="+E164",
                            help="Send one real notification to this number and follow it "
                                 "to a final status (needs --template).")
        parser.add_argument("--template", metavar="NAME",
                            help="The name of the template of the test notification.")
        parser.add_argument("--context", metavar="KEY=VALUE", action="append", default=[],
                            help="A template parameter of the test notification "
                                 "(repeatable).")
        parser.add_argument("--timeout", type=float, default=120, metavar="SECONDS",
                            help="How long to follow the test notification (default 120).")

    def handle(self, *args, json=False, site_url=None, send_test_to=None, template=None,
               context=(), timeout=120, **options):
        if send_test_to and not template:
            raise CommandError("--send-test-to needs --template NAME.")
        values = {}
        for pair in context:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise CommandError(f"--context takes KEY=VALUE, not {pair!r}.")
            values[key] = value
        try:
            doctor = Doctor(site_url=site_url)
            doctor.run()
            if send_test_to:
                doctor.send_test(send_test_to, template, context=values, timeout=timeout)
        except MMCConfigurationError as err:
            raise CommandError(str(err)) from None
        report = doctor.report()
        self.stdout.write(report.to_json() if json else report.to_table())
        if report.differs:
            raise CommandError(f"{len(report.differs)} item(s) {DIFFERS} from the platform.")
