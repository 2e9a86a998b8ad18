"""Imports every django_mmc module, runs the system checks and the migration
check: run with ``-W error::DeprecationWarning -W error::PendingDeprecationWarning``
(scripts/run-tests does), any deprecated API django_mmc uses fails it."""

from __future__ import annotations

import importlib
import pkgutil

import django
from django.core.management import call_command


def main() -> None:
    django.setup()
    import django_mmc

    for module in pkgutil.walk_packages(django_mmc.__path__, "django_mmc."):
        importlib.import_module(module.name)
    call_command("check", "--fail-level", "ERROR", databases=["default"])
    call_command("makemigrations", "django_mmc", "--check", "--dry-run", verbosity=0)
    call_command("migrate", verbosity=0)
    print(f"django_mmc on Django {django.get_version()}: no deprecation warning")


if __name__ == "__main__":
    main()
