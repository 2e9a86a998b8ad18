"""``python -m benchmarks``: set up the stack, run the scenarios, write the
results (``benchmarks/results/latest.json`` and ``latest.md``) and take
everything down again."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from . import report, stack

RESULTS = Path(__file__).resolve().parent / "results"

SIZES: dict[str, dict[str, Any]] = {
    "full": {"send": 2000, "token": 200, "per_send_sample": 20, "bulk": 10_000,
             "poll": 10_000, "webhooks": 3200, "memory": 100_000, "admin": (50, 500),
             "priority": 10_000},
    "quick": {"send": 200, "token": 50, "per_send_sample": 10, "bulk": 2000,
              "poll": 1000, "webhooks": 400, "memory": 10_000, "admin": (50, 500),
              "priority": 2000},
}


class Run:
    """One benchmark run: its names, sizes, and what it must clean up."""

    def __init__(self, quick: bool, log_dir: Path, celery_db_reuse_max: int | None = None
                 ) -> None:
        ident = f"{os.getpid()}_{int(time.time()) % 100_000}"
        self.quick = quick
        self.sizes = SIZES["quick" if quick else "full"]
        self.database = f"mmc_bench_{ident}"
        self.queue = f"mmc_bench_{ident}"
        self.idle_queue = f"mmc_bench_{ident}_unconsumed"
        self.cache_prefix = f"mmc-bench-{ident}"
        self.log_dir = log_dir
        self.stoppables: list[Any] = []
        self.children: list[Any] = []
        self.token_rounds: list[tuple[str, dict[str, Any]]] = []
        self.admin_error: str | None = None
        self.celery_db_reuse_max = celery_db_reuse_max
        os.environ.update(
            DJANGO_SETTINGS_MODULE="benchmarks.settings",
            MMC_BENCH_DB=self.database,
            MMC_BENCH_QUEUE=self.queue,
            MMC_BENCH_RUN=self.cache_prefix,
        )
        os.environ.pop("MMC_BENCH_MMC", None)

    def size(self, name: str) -> Any:
        return self.sizes[name]

    def mmc_for(self, sandbox: stack.SandboxProcess, **overrides: Any) -> dict[str, Any]:
        """The ``MMC`` setting against ``sandbox``: no site-side rate limit (the
        sandbox has none either), the benchmark's queue."""
        overrides.setdefault("QUEUE", self.idle_queue)
        return sandbox.mmc_settings(RATE_LIMIT=None, **overrides)

    def static_mmc(self, **overrides: Any) -> dict[str, Any]:
        """An ``MMC`` setting for scenarios that never call the platform."""
        from django_mmc.sandbox import Sandbox

        overrides.setdefault("QUEUE", self.idle_queue)
        return Sandbox(port=9).mmc_settings(RATE_LIMIT=None, **overrides)

    @contextlib.contextmanager
    def use_mmc(self, mmc: dict[str, Any]) -> Iterator[None]:
        from django.test.utils import override_settings

        from django_mmc.client import reset_client

        with override_settings(MMC=mmc):
            reset_client()
            try:
                yield
            finally:
                reset_client()

    def sync_directory(self, mmc: dict[str, Any]) -> None:
        from django_mmc.directory import sync_directory

        with self.use_mmc(mmc):
            sync_directory()

    def clean_tables(self) -> None:
        """Each scenario starts with no notifications, recipients or events
        (platform ids restart with every sandbox)."""
        from django.db import connection

        from django_mmc.models import Notification, Recipient, WebhookEvent

        tables = ", ".join(f'"{m._meta.db_table}"' for m in (Notification, WebhookEvent,
                                                              Recipient))
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables} CASCADE")

    def stop_all(self) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(Exception):
                child.stop()
        for part in reversed(self.stoppables):
            with contextlib.suppress(Exception):
                part.stop()


def _machine(pg_version: str) -> dict[str, Any]:
    import celery
    import django

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "redis": stack.redis_version(),
        "django": django.get_version(),
        "celery": celery.__version__,
        # Other work on the machine shows here: every figure is a ratio or a
        # count for that reason, but a busy machine still widens the noise.
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="django_mmc's benchmark: every figure against its ceiling, in one run.")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes (a minute or two instead of several)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenarios to run: " + ", ".join(_names()))
    parser.add_argument("--output", type=Path, default=RESULTS,
                        help="where latest.json and latest.md go (default %(default)s)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 when a target is missed")
    parser.add_argument("--celery-db-reuse-max", type=int, default=None, metavar="N",
                        help="CELERY_DB_REUSE_MAX for the workers (default 1000, as the docs "
                             "recommend; 0 reconnects to the database around every task)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the processes' logs (their directory is printed)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or _names()
    unknown = sorted(set(names) - set(_names()))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from "
                     + ", ".join(_names()))
    args.names = [n for n in _names() if n in names]
    return args


def _names() -> list[str]:
    from .scenarios import SCENARIOS

    return list(SCENARIOS)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="mmc-bench-"))
    run = Run(args.quick, log_dir, args.celery_db_reuse_max)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    began = time.time()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    results: dict[str, Any] = {}
    created = False
    try:
        pg_version = stack.create_database(run.database)
        created = True
        import django

        django.setup()
        from django.core.management import call_command

        import benchmarks.celery_app  # noqa: F401 - the broker django_mmc enqueues to

        try:
            import django_mmc.admin  # noqa: F401 - being written alongside; may be absent
        except Exception as error:
            run.admin_error = f"django_mmc.admin cannot be imported: {error!r}"
        call_command("migrate", verbosity=0, interactive=False)
        machine = _machine(pg_version)
        from .scenarios import SCENARIOS

        for name in args.names:
            print(f"== {name}", flush=True)
            scenario_began = time.time()
            try:
                results[name] = SCENARIOS[name](run)
            except KeyboardInterrupt:
                raise
            except Exception:
                results[name] = {"error": traceback.format_exc(), "targets": []}
                print(results[name]["error"], file=sys.stderr, flush=True)
            finally:
                run.stop_all()
                run.stoppables.clear()
                run.children.clear()
            results[name]["duration_s"] = round(time.time() - scenario_began, 1)
            for item in results[name].get("targets", []):
                mark = "met" if item["met"] else "MISSED"
                print(f"   {item['name']}: {item['value']} {item['op']} {item['limit']} "
                      f"{item['unit']} -> {mark}", flush=True)
            if results[name].get("available") is False:
                print(f"   not available: {results[name]['reason']}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        run.stop_all()
        with contextlib.suppress(Exception):
            stack.delete_queues(run.queue, run.idle_queue)
            stack.clear_cache_prefix(run.cache_prefix)
        if created:
            with contextlib.suppress(Exception):
                from django.db import connections

                connections.close_all()
            stack.drop_database(run.database)
        if args.keep_logs:
            print(f"logs: {log_dir}")
        else:
            shutil.rmtree(log_dir, ignore_errors=True)

    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    document = {
        "benchmark": "django_mmc",
        "version": _version(),
        "started_at": started_at,
        "duration_s": round(time.time() - began, 1),
        "mode": "quick" if args.quick else "full",
        "celery_db_reuse_max": args.celery_db_reuse_max,
        "scenarios_run": args.names,
        "machine": machine,
        "results": results,
        "targets": [
            {"scenario": name, **item}
            for name, result in results.items() for item in result.get("targets", [])
        ],
    }
    document["all_targets_met"] = all(t["met"] for t in document["targets"])
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.output / "latest.md").write_text(report.markdown(document))
    print(report.markdown(document))
    if any("error" in r for r in results.values()):
        return 1
    if args.strict and not document["all_targets_met"]:
        return 3
    return 0


def _version() -> str:
    import django_mmc

    return django_mmc.__version__
