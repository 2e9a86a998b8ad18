"""The scenarios. Each takes the :class:`~benchmarks.runner.Run` and returns a
dict of measurements with a ``targets`` list; each target compares a figure
with the ceiling or budget it is measured against in the same run."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import stack

if TYPE_CHECKING:  # pragma: no cover
    from .runner import Run

TEMPLATE = "order_shipped"
CONTEXT = {"first_name": "Ann", "tracking_url": "https://shop.example/t/1"}


def target(name: str, value: float | None, op: str, limit: float, unit: str = "") -> dict:
    """One target: ``value op limit`` (``<=``, ``>=`` or ``==``)."""
    if value is None:
        met = False
    elif op == "<=":
        met = value <= limit
    elif op == ">=":
        met = value >= limit
    else:
        met = value == limit
    return {"name": name, "value": value, "op": op, "limit": limit, "unit": unit, "met": met}


def numbers(start: int, count: int) -> Iterator[str]:
    """Distinct valid Irish mobile numbers, generated lazily."""
    for index in range(start, start + count):
        yield f"+3538{6 + index // 10_000_000}{index % 10_000_000:07d}"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = max(0, math.ceil(fraction * len(ordered)) - 1)
    return ordered[rank]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str,
             interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


class LoadProcess:
    """A :mod:`benchmarks.loadgen` process and its line protocol."""

    def __init__(self, run: Run, kind: str, config: dict[str, Any], name: str) -> None:
        self.log = (run.log_dir / f"{name}.log").open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.loadgen", kind, json.dumps(config)],
            cwd=stack.ROOT, env=stack.python_env(), stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, text=True, start_new_session=True,
        )
        run.children.append(self)

    def read(self) -> Any:
        assert self.popen.stdout is not None
        line = self.popen.stdout.readline()
        if not line:
            raise stack.StackError(
                f"load generator exited ({self.popen.wait()}); see {self.log.name}")
        return json.loads(line)

    def send(self, command: dict[str, Any]) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(json.dumps(command) + "\n")
        self.popen.stdin.flush()

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                assert self.popen.stdin is not None
                self.popen.stdin.write("\n")
                self.popen.stdin.close()
                self.popen.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.popen.kill()
                self.popen.wait(10)
        self.log.close()


def run_phase(processes: list[LoadProcess], commands: list[dict[str, Any]]) -> dict[str, Any]:
    """Give every process its command at once and combine their answers."""
    for process, command in zip(processes, commands, strict=True):
        process.send(command)
    answers = [process.read() for process in processes]
    started = min(a["started"] for a in answers)
    finished = max(a["finished"] for a in answers)
    return {"answers": answers, "started": started, "finished": finished,
            "seconds": finished - started, "sent": sum(a["sent"] for a in answers),
            "client_cpu_seconds": sum(a["cpu_seconds"] for a in answers)}


def _notifications_posted(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in log if e["method"] == "POST" and e["path"].endswith("/notifications")]


# -- 1 and 5: send throughput, CPU per notification, one token -----------------------


def send_round(run: Run, latency: float, count: int, *, raw: bool = True) -> dict[str, Any]:
    """``count`` sends through django_mmc and two worker processes and, with
    ``raw``, the same creates by two plain request loops on the same sandbox:
    half of them before django_mmc's turn and half after, so a machine that
    gets busier or quieter meanwhile weighs on both alike."""
    import django_mmc
    from django_mmc.models import Notification

    result: dict[str, Any] = {"latency_ms": latency * 1000, "notifications": count}
    run.clean_tables()
    sandbox = stack.SandboxProcess(run.log_dir, latency, name=f"sandbox-send-{latency}").start()
    run.stoppables.append(sandbox)
    loops: RawLoops | None = None
    workers = None
    try:
        mmc = run.mmc_for(sandbox, QUEUE=run.queue)
        run.sync_directory(mmc)
        if raw:
            loops = RawLoops(run, sandbox, in_flight=2)
            before = loops.run(list(numbers(0, count // 2)))
        # Tokens, counters and the request log start again, and no token is
        # shared yet: the workers must fetch exactly one between them.
        sandbox.reset()
        stack.clear_cache_prefix(run.cache_prefix)
        stack.delete_queues(run.queue)

        workers = stack.Workers(run.log_dir, run.queue, mmc, concurrency=2,
                                name=f"worker-send-{latency}",
                                db_reuse_max=run.celery_db_reuse_max).start()
        run.stoppables.append(workers)
        rows = Notification.objects.filter(platform_id__isnull=False)
        time.sleep(0.5)  # let the freshly started pool settle before the clock starts
        worker_cpu = workers.cpu_seconds()
        sandbox_cpu = stack.tree_cpu_seconds(sandbox.pid)
        started = time.time()
        create_cpu = time.process_time()
        with run.use_mmc(mmc):
            created = django_mmc.send_notifications(numbers(0, count), TEMPLATE, CONTEXT)
        create_cpu = time.process_time() - create_cpu
        created_at = time.time()
        wait_for(lambda: rows.count() >= count,
                 timeout=120 + count * (latency + 0.05) * 2, what=f"{count} sends",
                 interval=0.02)
        finished = time.time()
        wait_for(lambda: stack.queue_length(run.queue) == 0, 30, "an empty queue")
        time.sleep(0.2)  # the last task's bookkeeping after its UPDATE
        worker_cpu = workers.cpu_seconds() - worker_cpu
        sandbox_cpu = stack.tree_cpu_seconds(sandbox.pid) - sandbox_cpu
        state = sandbox.state()
        posts = _notifications_posted(sandbox.requests_log())
        workers.stop()
        if loops is not None:
            after = loops.run(list(numbers(count // 2, count - count // 2)))
            result["raw"] = loops.combine(before, after)
    finally:
        if loops is not None:
            loops.stop()
        if workers is not None:
            workers.stop()
        sandbox.stop()
    seconds = finished - started
    keys = {p["idempotency_key"] for p in posts}
    result["django_mmc"] = {
        "created": created,
        "seconds": round(seconds, 3),
        "create_seconds": round(created_at - started, 3),
        "per_second": round(count / seconds, 1),
        "sandbox_window_per_second": _window_rate(posts),
        "platform_creates": len(posts),
        "distinct_idempotency_keys": len(keys),
        "refused_or_failed": sum(1 for p in posts if p["status"] >= 300),
        "token_requests": state["token_requests"],
        "cpu_ms_per_notification": round((worker_cpu + create_cpu) * 1000 / count, 3),
        "worker_cpu_ms_per_notification": round(worker_cpu * 1000 / count, 3),
        "create_cpu_ms_per_notification": round(create_cpu * 1000 / count, 3),
        "sandbox_cpu_ms_per_request": round(sandbox_cpu * 1000 / max(1, len(posts)), 3),
    }
    if raw:
        result["ratio"] = round(result["django_mmc"]["per_second"]
                                / result["raw"]["per_second"], 3)
    return result


def _window_rate(posts: list[dict[str, Any]]) -> float | None:
    """Creates per second between the sandbox's first and last answer."""
    if len(posts) < 2:
        return None
    times = sorted(p["time"] for p in posts)
    return round((len(times) - 1) / (times[-1] - times[0]), 1)


class RawLoops:
    """The ceiling: ``in_flight`` processes, each one plain ``requests.Session``
    loop, posting the same documents to the same sandbox."""

    def __init__(self, run: Run, sandbox: stack.SandboxProcess, in_flight: int) -> None:
        from django_mmc import contract

        self.sandbox = sandbox
        self.in_flight = in_flight
        config = {
            "url": contract.organisation_url(sandbox.url,
                                             sandbox.mmc_settings()["ORGANISATION_ID"])
            + contract.NOTIFICATIONS_PATH,
            "template_id": "101", "group_id": "7", "channel_type": "WHATSAPP",
            "context": CONTEXT,
        }
        self.processes = [LoadProcess(run, "raw-sends", config, f"raw-sends-{i}")
                          for i in range(in_flight)]
        for process in self.processes:
            if process.read() != "ready":
                raise stack.StackError("a raw send loop did not start")

    def run(self, batch: list[str]) -> dict[str, Any]:
        token = self.sandbox.token()  # the loops share one token, as django_mmc does
        cpu = stack.tree_cpu_seconds(self.sandbox.pid)
        phase = run_phase(self.processes, [{"numbers": batch[i::self.in_flight],
                                            "token": token}
                                           for i in range(self.in_flight)])
        phase["sandbox_cpu_seconds"] = stack.tree_cpu_seconds(self.sandbox.pid) - cpu
        return phase

    @staticmethod
    def combine(*phases: dict[str, Any]) -> dict[str, Any]:
        sent = sum(p["sent"] for p in phases)
        seconds = sum(p["seconds"] for p in phases)
        return {
            "processes": len(phases[0]["answers"]),
            "sent": sent,
            "seconds": round(seconds, 3),
            "per_second": round(sent / seconds, 1),
            "per_second_before_and_after": [round(p["sent"] / p["seconds"], 1)
                                            for p in phases],
            "errors": sum(a["errors"] for p in phases for a in p["answers"]),
            "client_cpu_ms_per_request": round(
                sum(p["client_cpu_seconds"] for p in phases) * 1000 / sent, 3),
            "sandbox_cpu_ms_per_request": round(
                sum(p["sandbox_cpu_seconds"] for p in phases) * 1000 / sent, 3),
        }

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


def scenario_send(run: Run) -> dict[str, Any]:
    count = run.size("send")
    slow = send_round(run, 0.02, count)
    fast = send_round(run, 0.0, count)
    run.token_rounds.extend([("send 20 ms", slow), ("send 0 ms", fast)])
    return {
        "workers": "one celery worker, prefork pool, -c 2 (2 worker processes), -O fair, "
                   "prefetch multiplier 1",
        "ceiling": "2 processes, each a plain requests.Session loop (2 requests in flight)",
        "latency_20ms": slow,
        "latency_0ms": fast,
        "targets": [
            target("throughput at 20 ms latency vs raw loops", slow["ratio"], ">=", 0.8),
            target("CPU per notification (0 ms latency, workers + creating process)",
                   fast["django_mmc"]["cpu_ms_per_notification"], "<=", 3.0, "ms"),
        ],
    }


def scenario_token(run: Run) -> dict[str, Any]:
    rounds = list(run.token_rounds)
    if not rounds:  # the send scenario did not run: a small send of its own
        rounds.append(("send 5 ms", send_round(run, 0.005, run.size("token"), raw=False)))
    per_round = {name: r["django_mmc"]["token_requests"] for name, r in rounds}
    worst = max(per_round.values())
    return {
        "token_requests_per_round": per_round,
        "worker_processes": 2,
        "cache": "django.core.cache.backends.redis.RedisCache (shared by every worker)",
        "targets": [target("token requests per send round (2 worker processes)",
                           worst, "==", 1)],
    }


# -- 2: queries ----------------------------------------------------------------------


def scenario_queries(run: Run) -> dict[str, Any]:
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import django_mmc
    from django_mmc.workers.notifications import deliver_notification

    run.clean_tables()
    sandbox = stack.SandboxProcess(run.log_dir, 0.0, name="sandbox-queries").start()
    run.stoppables.append(sandbox)
    try:
        mmc = run.mmc_for(sandbox, QUEUE=run.idle_queue)
        run.sync_directory(mmc)
        with run.use_mmc(mmc):
            sample = run.size("per_send_sample")
            django_mmc.send_notifications(numbers(0, sample), TEMPLATE, CONTEXT)
            from django_mmc.models import Notification

            pks = list(Notification.objects.order_by("pk").values_list("pk", flat=True))
            deliver_notification(pks[0], task_id="warm-up")  # token, connection
            per_send = []
            example: list[str] = []
            for pk in pks[1:]:
                with CaptureQueriesContext(connection) as queries:
                    result = deliver_notification(pk, task_id=f"bench-{pk}")
                assert result.outcome.value == "done", result
                # Transaction control (the claim's BEGIN and COMMIT) is not a query.
                example = [q["sql"] for q in queries.captured_queries
                           if not q["sql"].upper().startswith(("BEGIN", "COMMIT", "SAVEPOINT",
                                                               "RELEASE", "ROLLBACK"))]
                per_send.append(len(example))

            chunk = int(mmc.get("BULK_CHUNK_SIZE", 500))
            bulk = {}
            for size in (chunk, run.size("bulk")):
                start = 1_000_000 + len(bulk) * 1_000_000
                with CaptureQueriesContext(connection) as queries:
                    began = time.perf_counter()
                    django_mmc.send_notifications(numbers(start, size), TEMPLATE, CONTEXT)
                    seconds = time.perf_counter() - began
                bulk[size] = {"queries": len(queries), "chunks": math.ceil(size / chunk),
                              "seconds_with_enqueue": round(seconds, 2)}
    finally:
        sandbox.stop()
        stack.delete_queues(run.idle_queue)
    one_chunk, many = bulk[chunk], bulk[run.size("bulk")]
    per_chunk = many["queries"] / many["chunks"]
    # queries = fixed + per_extra_chunk * (chunks - 1): nothing grows per row.
    per_extra_chunk = (many["queries"] - one_chunk["queries"]) / max(1, many["chunks"] - 1)
    return {
        "per_send": {"sends": len(per_send), "max": max(per_send), "min": min(per_send),
                     "queries_of_one_send": example},
        "bulk_chunk_size": chunk,
        "bulk": {str(k): v for k, v in bulk.items()},
        "bulk_queries_per_chunk": round(per_chunk, 2),
        "bulk_queries_per_extra_chunk": round(per_extra_chunk, 2),
        "conn_max_age": settings.DATABASES["default"]["CONN_MAX_AGE"],
        "targets": [
            target("queries per send (send_notification in-process)", max(per_send), "<=", 3),
            target(f"queries per chunk creating {run.size('bulk'):,} (one chunk alone: "
                   f"{one_chunk['queries']})", per_chunk, "<=", one_chunk["queries"]),
        ],
    }


# -- 3: polling ---------------------------------------------------------------------------


def scenario_polling(run: Run) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from django_mmc.client import get_client
    from django_mmc.models import ChannelGroup, Notification, Recipient, Template
    from django_mmc.polling import poll_notifications

    count = run.size("poll")
    run.clean_tables()
    sandbox = stack.SandboxProcess(run.log_dir, 0.0, name="sandbox-polling").start()
    run.stoppables.append(sandbox)
    try:
        mmc = run.mmc_for(sandbox, QUEUE=run.idle_queue, POLL_AFTER=60)
        run.sync_directory(mmc)
        with run.use_mmc(mmc):
            client = get_client()
            all_numbers = list(numbers(0, count))

            def create(number: str) -> str:
                return client.create_notification(
                    recipient=number, template_id="101", channel_group_id="7",
                    channel_type="WHATSAPP", context=CONTEXT,
                    idempotency_key=f"poll-{number}").id

            began = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                platform_ids = list(pool.map(create, all_numbers))
            setup_seconds = time.perf_counter() - began
            # The platform moves some on meanwhile: 10 % delivered, 1 % failed.
            moved = {"DELIVERED": platform_ids[::10], "FAILED": platform_ids[5::100]}

            def set_status(item: tuple[str, str]) -> None:
                sandbox.control("POST", "status", {"kind": "notification", "id": item[0],
                                                   "status": item[1]})

            with ThreadPoolExecutor(4) as pool:
                list(pool.map(set_status, [(pid, status) for status, ids in moved.items()
                                           for pid in ids]))

            recipient = Recipient.objects.create(phone_number=all_numbers[0])
            template = Template.objects.get(name=TEMPLATE)
            group = ChannelGroup.objects.get(platform_id="7")
            old = timezone.now() - timedelta(hours=1)
            Notification.objects.bulk_create(
                [Notification(recipient=recipient, template=template, channel_group=group,
                              channel_type="WHATSAPP", context=CONTEXT, status="ACCEPTED",
                              platform_id=pid, accepted_at=old) for pid in platform_ids],
                batch_size=1000)
            Notification.objects.update(status_changed_at=old, checked_at=None)

            log_before = len(sandbox.requests_log())
            requests_before = client.request_count
            with CaptureQueriesContext(connection) as queries:
                began = time.perf_counter()
                totals = poll_notifications()
                seconds = time.perf_counter() - began
            http_calls = client.request_count - requests_before
            sandbox_calls = len(sandbox.requests_log()) - log_before
    finally:
        sandbox.stop()
        stack.delete_queues(run.idle_queue)
    batches = _split_batches([q["sql"] for q in queries.captured_queries])
    per_batch = [len(b) for b in batches if b]
    reloads = sum(1 for q in queries.captured_queries if _is_single_row_select(q["sql"]))
    changed_expected = len(moved["DELIVERED"]) + len(moved["FAILED"]) - len(
        set(moved["DELIVERED"]) & set(moved["FAILED"]))
    return {
        "notifications": count,
        "setup_seconds": round(setup_seconds, 1),
        "totals": totals,
        "changed_on_platform": changed_expected,
        "http_calls": http_calls,
        "http_calls_seen_by_sandbox": sandbox_calls,
        "seconds": round(seconds, 2),
        "queries": len(queries),
        "batches": len(per_batch),
        "queries_per_batch_max": max(per_batch),
        "queries_per_batch_min": min(per_batch),
        "single_row_selects_after_commit": reloads,
        "query_shapes": _shapes([q["sql"] for q in queries.captured_queries]),
        "targets": [
            target(f"HTTP calls to poll {count:,}", http_calls, "<=", math.ceil(count / 100)),
            target("queries per batch of 100 (the most in any batch)", max(per_batch), "<=", 8),
        ],
    }


def _is_single_row_select(sql: str) -> bool:
    """``SELECT ... WHERE "id" = 42 ... LIMIT 1``: one row read back by its key."""
    return sql.startswith("SELECT") and sql.endswith("LIMIT 1") and '."id" = ' in sql


def _shapes(sqls: list[str]) -> dict[str, int]:
    """How many queries of each kind: the SQL with its literals blanked."""
    import re
    from collections import Counter

    def shape(sql: str) -> str:
        sql = re.sub(r"'[^']*'", "?", sql)
        sql = re.sub(r"\b\d+\b", "N", sql)
        sql = re.sub(r"\(N(, N)*\)", "(...)", sql)
        return sql[:160]

    return dict(Counter(shape(s) for s in sqls).most_common())


def _split_batches(sqls: list[str]) -> list[list[str]]:
    """Cut the captured queries at each batch's SELECT of due rows."""
    batches: list[list[str]] = []
    for sql in sqls:
        if sql.startswith("SELECT") and '"checked_at" IS NULL' in sql and "ORDER BY" in sql:
            batches.append([])
        if batches:
            batches[-1].append(sql)
    return batches


# -- 4: webhooks ------------------------------------------------------------------------


#: How many times the webhook scenario alternates the two views (A B B A each).
WEBHOOK_CYCLES = 4


def scenario_webhooks(run: Run) -> dict[str, Any]:
    from django_mmc.models import WebhookEvent
    from django_mmc.sandbox.defaults import DEFAULT_AGENTS

    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return {"available": False, "reason": "gunicorn is not installed (pip install gunicorn)",
                "targets": []}
    run.clean_tables()
    count = run.size("webhooks")
    mmc = run.static_mmc(QUEUE=run.idle_queue)
    server = stack.Gunicorn(run.log_dir, workers=4, threads=1, queue=run.idle_queue, mmc=mmc)
    server.start()
    run.stoppables.append(server)
    clients = [LoadProcess(run, "webhooks", {
        "base_url": server.url, "threads": 4, "agent_id": "17",
        "secret": DEFAULT_AGENTS["17"]["secret"]}, f"webhook-client-{i}") for i in range(2)]
    paths = {"bare": "/bare/", "django_mmc": "/mmc/webhooks/support/"}
    sides: dict[str, dict[str, Any]] = {
        name: {"sent": 0, "seconds": 0.0, "latencies": [], "statuses": {}, "server_cpu": 0.0,
               "client_cpu": 0.0} for name in paths}
    cycles: list[float] = []
    try:
        for client in clients:
            assert client.read() == "ready"
        # Warm-up: every connection, worker, DB connection and import, both paths.
        for name in ("bare", "django_mmc", "bare", "django_mmc"):
            run_phase(clients, [{"path": paths[name], "count": 100,
                                 "event_prefix": f"warm-{name}-{time.time_ns()}-{i}"}
                                for i in range(len(clients))])
        # Cycles of A B B A: drift on a busy machine hits both sides of a
        # cycle alike, and a burst of noise spoils one cycle, not the result.
        each = count // (2 * WEBHOOK_CYCLES) // len(clients)
        for cycle in range(WEBHOOK_CYCLES):
            done = {name: [0, 0.0] for name in paths}
            for step, name in enumerate(("bare", "django_mmc", "django_mmc", "bare")):
                cpu = server.cpu_seconds()
                phase = run_phase(clients, [{"path": paths[name], "count": each,
                                             "event_prefix": f"evt-{cycle}-{step}-{i}"}
                                            for i in range(len(clients))])
                side = sides[name]
                side["server_cpu"] += server.cpu_seconds() - cpu
                side["sent"] += phase["sent"]
                side["seconds"] += phase["seconds"]
                side["client_cpu"] += phase["client_cpu_seconds"]
                done[name][0] += phase["sent"]
                done[name][1] += phase["seconds"]
                for answer in phase["answers"]:
                    side["latencies"].extend(answer["latencies_ms"])
                    for code, n in answer["statuses"].items():
                        side["statuses"][code] = side["statuses"].get(code, 0) + n
            cycles.append(round((done["django_mmc"][0] / done["django_mmc"][1])
                                / (done["bare"][0] / done["bare"][1]), 3))
        stored = WebhookEvent.objects.filter(event_id__startswith="evt-").count()
        stored_all = WebhookEvent.objects.count()
        pending = WebhookEvent.objects.filter(state=WebhookEvent.State.PENDING).count()
        enqueued = stack.queue_length(run.idle_queue)
    finally:
        for client in clients:
            client.stop()
        server.stop()
        stack.delete_queues(run.idle_queue)
    summary = {}
    for name, side in sides.items():
        summary[name] = {
            "requests": side["sent"],
            "per_second": round(side["sent"] / side["seconds"], 1),
            "p50_ms": round(percentile(side["latencies"], 0.50), 2),
            "p99_ms": round(percentile(side["latencies"], 0.99), 2),
            "statuses": side["statuses"],
            "server_cpu_ms_per_request": round(side["server_cpu"] * 1000 / side["sent"], 3),
            "client_cpu_ms_per_request": round(side["client_cpu"] * 1000 / side["sent"], 3),
        }
    answered = (summary["bare"]["statuses"] == {"204": summary["bare"]["requests"]}
                and summary["django_mmc"]["statuses"] == {"202": summary["django_mmc"]["requests"]})
    ratio = round(statistics.median(cycles), 3)
    return {
        "server": "gunicorn, 4 worker processes (gthread, 1 thread each, keep-alive), "
                  "127.0.0.1, full middleware stack",
        "clients": "2 processes x 4 threads, one keep-alive requests.Session per thread",
        "order": f"warm-up, then {WEBHOOK_CYCLES} cycles of bare, django_mmc, django_mmc, "
                 f"bare; the ratio is the median of the cycles' ratios",
        "bare": summary["bare"],
        "django_mmc": summary["django_mmc"],
        "cycle_ratios": cycles,
        "overall_ratio": round(summary["django_mmc"]["per_second"]
                               / summary["bare"]["per_second"], 3),
        "events_stored": stored,
        # Events are handed over in batches: the first of a burst enqueues one
        # task (nobody consumes this queue here), the others find it waiting.
        "batch_tasks_enqueued": enqueued,
        "ratio": ratio,
        "targets": [
            # A ratio only counts when every answer was the right one.
            target("signed events/s vs bare DRF view", ratio if answered else None, ">=", 0.5),
            target("every event answered 202, stored, and waiting for a batch task",
                   min(stored, summary["django_mmc"]["statuses"].get("202", 0))
                   if enqueued >= 1 and pending == stored_all else -1,
                   "==", summary["django_mmc"]["requests"]),
        ],
    }


# -- 6: memory ----------------------------------------------------------------------------


def scenario_memory(run: Run) -> dict[str, Any]:
    count = run.size("memory")
    run.clean_tables()
    sandbox = stack.SandboxProcess(run.log_dir, 0.0, name="sandbox-memory").start()
    run.stoppables.append(sandbox)
    try:
        run.sync_directory(run.mmc_for(sandbox))
    finally:
        sandbox.stop()
    env = stack.python_env(MMC_BENCH_MMC=json.dumps(run.static_mmc(QUEUE=run.idle_queue)),
                           MMC_BENCH_QUEUE=run.idle_queue)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.memory", str(count)], cwd=stack.ROOT, env=env,
            capture_output=True, text=True, timeout=900, check=False)
        enqueued = stack.queue_length(run.idle_queue)
    finally:
        stack.delete_queues(run.idle_queue)
    if done.returncode != 0:
        raise stack.StackError(f"memory probe failed:\n{done.stdout}\n{done.stderr[-4000:]}")
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    growth_mb = (probe["peak_hwm_kb"] - probe["baseline_hwm_kb"]) / 1024
    return {
        **probe,
        "enqueued_tasks": enqueued,
        "peak_growth_mb": round(growth_mb, 1),
        "targets": [target(f"peak RSS growth, send_notifications to {count:,} recipients",
                           round(growth_mb, 1), "<=", 150, "MB")],
    }


# -- 7: admin ---------------------------------------------------------------------------------


def scenario_admin(run: Run) -> dict[str, Any]:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from django_mmc.models import ChannelGroup, Notification, Recipient, Template

    if run.admin_error:
        return {"available": False, "reason": run.admin_error, "targets": []}
    model_admin = admin.site._registry.get(Notification)
    if model_admin is None:
        return {"available": False, "targets": [],
                "reason": "Notification is not registered on the admin site"}
    run.clean_tables()
    sandbox = stack.SandboxProcess(run.log_dir, 0.0, name="sandbox-admin").start()
    run.stoppables.append(sandbox)
    try:
        run.sync_directory(run.mmc_for(sandbox))
    finally:
        sandbox.stop()
    sizes = run.size("admin")
    rows = max(sizes)
    user_model = get_user_model()
    user_model.objects.filter(username="bench-admin").delete()
    user = user_model.objects.create_superuser("bench-admin", "admin@example.com", "x")
    staff = [user_model.objects.create_user(f"bench-staff-{i}") for i in range(3)]
    recipients = Recipient.objects.bulk_create(
        [Recipient(phone_number=n, name=f"Customer {i}")
         for i, n in enumerate(numbers(5_000_000, rows))])
    templates = list(Template.objects.all())
    groups = list(ChannelGroup.objects.all())
    statuses = ["QUEUED", "ACCEPTED", "SENT", "DELIVERED", "READ", "FAILED", "REFUSED"]
    now = timezone.now()
    created = Notification.objects.bulk_create([
        Notification(
            recipient=recipients[i], template=templates[i % len(templates)],
            channel_group=groups[i % len(groups)], channel_type="WHATSAPP", context=CONTEXT,
            status=statuses[i % len(statuses)], created_by=staff[i % 4] if i % 4 < 3 else None,
            platform_id=None if i % 7 == 0 else f"adm-{i}",
            failure_code="UNREACHABLE" if statuses[i % len(statuses)] == "FAILED" else "",
            accepted_at=now,
        ) for i in range(rows)])
    Notification.objects.filter(pk__in=[n.pk for n in created[1::10]]).update(
        retry_of=created[0])
    client = Client()
    client.force_login(user)
    url = "/admin/django_mmc/notification/"
    original = model_admin.list_per_page
    pages = {}
    try:
        client.get(url)  # warm-up: sessions, content types, template loading
        for per_page in sorted(sizes):
            model_admin.list_per_page = per_page
            with CaptureQueriesContext(connection) as queries:
                response = client.get(url)
            if response.status_code != 200:
                raise stack.StackError(f"{url} answered {response.status_code}")
            pages[per_page] = {
                "queries": len(queries),
                "rows_shown": response.content.count(b'name="_selected_action"'),
            }
    finally:
        model_admin.list_per_page = original
    small, large = pages[min(sizes)], pages[max(sizes)]
    return {
        "available": True,
        "rows_in_table": rows,
        "pages": {str(k): v for k, v in pages.items()},
        "targets": [target(f"queries for {max(sizes)} rows (vs {min(sizes)} rows: "
                           f"{small['queries']})", large["queries"], "==", small["queries"])],
    }


def scenario_priority(run: Run) -> dict[str, Any]:
    """An urgent notification while a low-priority campaign drains: with
    ``PRIORITY_QUEUES``, the campaign's queue has two worker processes and the
    urgent queue one of its own; measured from the commit of the urgent send
    to its POST reaching the sandbox (20 ms per request)."""
    import django_mmc
    from django_mmc.models import Notification

    size = run.sizes["priority"]
    urgent_queue, campaign_queue = f"{run.queue}_now", f"{run.queue}_low"
    run.clean_tables()
    sandbox = stack.SandboxProcess(run.log_dir, 0.02, name="sandbox-priority").start()
    run.stoppables.append(sandbox)
    workers: list[stack.Workers] = []
    try:
        mmc = run.mmc_for(sandbox, QUEUE=campaign_queue, PRIORITY_QUEUES={
            "now": urgent_queue, "high": urgent_queue, "normal": campaign_queue,
            "low": campaign_queue})
        run.sync_directory(mmc)
        for queue, concurrency in ((campaign_queue, 2), (urgent_queue, 1)):
            workers.append(stack.Workers(run.log_dir, queue, mmc, concurrency=concurrency,
                                         name=f"worker-{queue}",
                                         db_reuse_max=run.celery_db_reuse_max).start())
            run.stoppables.append(workers[-1])
        sent = Notification.objects.filter(platform_id__isnull=False)
        with run.use_mmc(mmc):
            django_mmc.send_notifications(numbers(0, size), TEMPLATE, CONTEXT)
            wait_for(lambda: sent.count() >= 100, 60, "the campaign to start draining")
            urgent = django_mmc.send_notification(next(numbers(size, 1)), TEMPLATE, CONTEXT,
                                                  priority="now")
            committed = time.time()  # autocommit: enqueued on commit, i.e. now
        wait_for(lambda: Notification.objects.filter(pk=urgent.pk, platform_id__isnull=False)
                 .exists(), 60, "the urgent notification")
        drained_then = sent.count()
        posts = _notifications_posted(sandbox.requests_log())
        [post] = [p for p in posts if p["idempotency_key"] == str(urgent.idempotency_key)]
        seconds = post["time"] - committed
        left = stack.queue_length(campaign_queue)
    finally:
        for worker in workers:
            worker.stop()
        stack.delete_queues(urgent_queue, campaign_queue)
        sandbox.stop()
    return {
        "campaign": size,
        "campaign_sent_when_urgent_arrived": drained_then,
        "campaign_tasks_still_queued": left,
        "urgent_commit_to_platform_seconds": round(seconds, 3),
        "targets": [target("urgent notification reaches the platform while a campaign drains",
                           round(seconds, 3), "<=", 2.0, "s")],
    }


SCENARIOS: dict[str, Callable[[Run], dict[str, Any]]] = {
    "send": scenario_send,
    "token": scenario_token,
    "queries": scenario_queries,
    "polling": scenario_polling,
    "webhooks": scenario_webhooks,
    "memory": scenario_memory,
    "admin": scenario_admin,
    "priority": scenario_priority,
}
