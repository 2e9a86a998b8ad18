"""The chaos run: many notifications and dialogues on the real stack while
everything that can go wrong does.

The sandbox answers 10% of API calls with 503 and 5% with 429 (both with
``Retry-After``), answers 2% after the client's read timeout (it still acts
on them), expires every token once mid-run, and duplicates 20% of its
webhooks, delivers them in shuffled order and never delivers 10% of them.
The worker is killed with SIGKILL (the whole process group, as the OOM
killer or a lost host would) and restarted. Meanwhile beat's work is done
from this process: the outbox sweeper every few seconds.

Once the faults stop, the sweeper and status polling run until nothing
changes, and then:

* every notification is in the state the platform says it is in, and the
  platform created exactly one notification per local one (by idempotency
  key), as it did one dialogue and one message per local dialogue and
  outbound message;
* no status ever moved backwards or was entered twice (every transition the
  worker and this process made is recorded through the status signals);
* every inbound message is stored exactly once, in the right dialogue, and
  every outbound message has the platform's status: by webhook, or by the
  transcript poll where every delivery was dropped;
* no webhook event is left pending: each is processed, ignored, or failed
  with its error recorded;
* recipients who opt out mid-campaign get nothing the platform created
  after their opt-out committed (the claim is the moment that counts; a
  claim made just before may still reach the platform a moment later), and
  what they were still owed ends ``REFUSED`` (``OPTED_OUT``);
* late and replayed dialogue events (old events about dialogues this site
  never knew, and "process again" of every dialogue event) close no live
  dialogue: the old ones are kept on closed rows of their own.

The default run is small enough for every suite run; the full size runs
with ``--run-slow``.
"""

from __future__ import annotations

import signal
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

import django_mmc
from django_mmc import signals
from django_mmc.api import send_message
from django_mmc.models import Dialogue, Message, Notification, WebhookEvent
from django_mmc.polling import poll_dialogues, poll_notifications
from django_mmc.processing import reprocess
from django_mmc.status import DialogueStatus, Direction, Status, is_forward
from django_mmc.workers.outbox import sweep_outbox

pytestmark = pytest.mark.integration

#: Scripted recipients of the sandbox, so the run has terminal failures too:
#: unreachable (FAILED), expires after SENT, stays at SENT for ever.
SCRIPTED = ("+15005550001", "+15005550003", "+15005550004")
#: How often this process plays beat's outbox sweeper during the run. The test
#: settings' OUTBOX_DELAY (2 s) is shorter than this run's queue latency, and
#: the sweeper re-enqueues everything older than that, queued or not: so it
#: runs only once the worker has caught up, when whatever is still waiting
#: really was lost (in production OUTBOX_DELAY is far above the queue latency).
SWEEP_EVERY = 5.0
QUIET_QUEUE = 20  # tasks waiting in the broker, at most, for the worker to count as caught up


@dataclass(frozen=True)
class Size:
    notifications: int
    dialogues: int
    kills: int
    run_timeout: float  # seconds for everything to be sent, at most
    settle_timeout: float  # seconds for sweeping and polling to settle, at most


@dataclass
class Conversation:
    """One dialogue of the run and how far the script has got with it."""

    number: str
    dialogue_pk: int
    replied: dict[str, Any] | None = None
    reply_dropped: bool = False
    answered: bool = False


@dataclass
class Transitions:
    """Status transitions made in this process (status polling)."""

    entries: list[dict[str, Any]] = field(default_factory=list)

    def record(self, sender: Any, **kwargs: Any) -> None:
        row = kwargs.get("notification") or kwargs.get("message")
        kind = "notification" if "notification" in kwargs else "message"
        self.entries.append({"signal": f"{kind}_status_changed", kind: row.pk,
                             "old_status": kwargs["old_status"],
                             "new_status": kwargs["new_status"]})


def numbers(prefix: str, count: int) -> list[str]:
    found = [f"{prefix}{i:07d}" for i in range(count)]
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in found)
    return found


def send_flood(count: int) -> list[int]:
    """``count`` notifications; one in fifty to a scripted recipient."""
    targets = numbers("+35386", max(1, count // 4))
    pks = []
    for i in range(count):
        to = SCRIPTED[(i // 50) % len(SCRIPTED)] if i % 50 == 49 else targets[i % len(targets)]
        pks.append(django_mmc.send_notification(to, "otp", {"code": str(i)}).pk)
    return pks


def queued_tasks() -> int:
    from tests import broker
    from tests.conftest import WORKER_QUEUE

    return broker.queue_length(WORKER_QUEUE)


def wait_for_the_worker(timeout: float) -> None:
    """Until the broker queue is empty (or ``timeout`` has passed)."""
    deadline = time.monotonic() + timeout
    while queued_tasks() and time.monotonic() < deadline:
        time.sleep(0.2)


def delivered_event_ids(sandbox: Any) -> set[str]:
    return {entry["event_id"] for entry in sandbox.webhook_log if entry["delivered"]}


def message_received_event(sandbox: Any, message_id: str) -> str | None:
    for event in sandbox.events():
        data = event["data"]
        if (data["attributes"]["eventType"] == "message.received"
                and data["relationships"]["message"]["data"]["id"] == message_id):
            return data["id"]
    return None


def advance_conversations(stack: Any, conversations: list[Conversation]) -> None:
    """One step of each dialogue's script: once open, the recipient replies;
    once the reply is stored, the agent answers with free text."""
    sandbox = stack.sandbox
    for i, talk in enumerate(conversations):
        if talk.answered or talk.reply_dropped:
            continue
        dialogue = Dialogue.objects.get(pk=talk.dialogue_pk)
        if talk.replied is None:
            if dialogue.status == DialogueStatus.OPEN and dialogue.platform_id:
                talk.replied = sandbox.reply(talk.number, f"Reply {i}")
                assert talk.replied["dialogue_id"] == dialogue.platform_id
            continue
        if Message.objects.filter(platform_id=talk.replied["message_id"]).exists():
            try:
                send_message(dialogue, f"Answer {i}")
            except ValidationError:  # not open any more: checked at the end
                pass
            talk.answered = True
            continue
        event_id = message_received_event(sandbox, talk.replied["message_id"])
        log = [e for e in sandbox.webhook_log if e["event_id"] == event_id]
        if log and all(e["dropped"] for e in log):
            talk.reply_dropped = True  # nothing will ever tell the site


def transition_problems(entries: list[dict[str, Any]], kind: str) -> list[str]:
    """Every recorded transition must go forward, and no row may enter a
    status twice (which a regression followed by a new advance would)."""
    problems = []
    entered: dict[int, Counter[str]] = defaultdict(Counter)
    for entry in entries:
        if entry["signal"] != f"{kind}_status_changed":
            continue
        old, new = entry["old_status"], entry["new_status"]
        if not is_forward(old, new):
            problems.append(f"{kind} {entry[kind]}: {old} -> {new}")
        entered[entry[kind]][new] += 1
    for pk, counts in entered.items():
        problems += [f"{kind} {pk} entered {status} {n} times"
                     for status, n in counts.items() if n > 1]
    return problems


#: Share of the flood's recipients that text STOP while the campaign is going out.
OPT_OUT_SHARE = 0.1
#: Between a claim's commit and the platform creating what it sends: a notification
#: claimed just before an opt-out committed may reach the platform this much later.
CLAIM_TO_PLATFORM = 1.0


def opt_out_some(pks: list[int]) -> dict[str, float]:
    """Recipients with notifications still waiting text STOP now; returns
    each one's number and the time their opt-out committed."""
    from django_mmc.api import set_consent

    waiting = (Notification.objects.filter(pk__in=pks, platform_id__isnull=True)
               .exclude(recipient__phone_number__in=SCRIPTED)
               .values_list("recipient__phone_number", "channel_type").distinct())
    chosen = list(waiting)[:max(1, int(len(pks) * OPT_OUT_SHARE / 4))]
    committed = {}
    for number, channel_type in chosen:
        set_consent(number, channel_type, True, source="KEYWORD", detail="STOP")
        committed[number] = time.time()
    return committed


def post_late_dialogue_events(stack: Any, conversations: list[Conversation]) -> list[str]:
    """For a few of the run's recipients, the platform's retries of events
    about an older dialogue this site never knew (an hour old), over HTTP
    with real signatures; returns those dialogues' platform ids."""
    import requests
    from django.conf import settings

    from django_mmc.testing import build_event, signed_delivery

    agent = settings.MMC["AGENTS"]["support"]
    url = f"{stack.live_server_url}/mmc/webhooks/support/"
    an_hour_ago = timezone.now() - timedelta(hours=1)
    old_ids = []
    for index, conversation in enumerate(conversations[:3]):
        group = Dialogue.objects.get(pk=conversation.dialogue_pk).channel_group.platform_id
        old_id = f"late-{index}"
        for event in (
            build_event("dialogue.opened", dialogue=old_id, recipient=conversation.number,
                        channel_group=group, initiated_by="RECIPIENT", channel_type="WHATSAPP",
                        agent_id=agent["ID"], occurred_at=an_hour_ago),
            build_event("message.received", message=f"late-m-{index}", dialogue=old_id,
                        recipient=conversation.number, channel_group=group,
                        channel_type="WHATSAPP", text="An old hello", agent_id=agent["ID"],
                        occurred_at=an_hour_ago),
        ):
            body, headers = signed_delivery(event, agent["WEBHOOK_SECRETS"][0])
            assert requests.post(url, data=body, headers=headers, timeout=10).status_code == 202
        old_ids.append(old_id)
    return old_ids


def settled(sandbox: Any, pks: list[int]) -> tuple[bool, str]:
    remote = {n["id"]: n["status"] for n in sandbox.notifications()}
    rows = list(Notification.objects.filter(pk__in=pks).exclude(
        status=Status.REFUSED, platform_id__isnull=True).values_list("platform_id", "status"))
    behind = sum(1 for platform_id, status in rows if remote.get(platform_id) != status)
    unsent = Notification.objects.filter(
        status__in=(Status.SCHEDULED, Status.QUEUED, Status.SENDING)).count()
    outbound = Message.objects.filter(
        direction=Direction.OUTBOUND, status__in=(Status.QUEUED, Status.SENDING)).count()
    opening = Dialogue.objects.filter(status=DialogueStatus.OPENING).count()
    pending = WebhookEvent.objects.filter(
        state__in=(WebhookEvent.State.PENDING, WebhookEvent.State.WAITING)).count()
    done = not (behind or unsent or outbound or opening or pending) and sandbox.wait_for_webhooks(0)
    return done, (f"{behind} notifications behind the platform, {unsent} unsent, {outbound} "
                  f"messages unsent, {opening} dialogues opening, {pending} events pending")


def chaos(stack: Any, size: Size, log_offset: int
          ) -> tuple[list[int], list[Conversation], list[float], float, float,
                     Counter[str], dict[str, float]]:
    """The run itself, with every fault on; returns what the checks need."""
    sandbox, worker = stack.sandbox, stack.worker
    started = time.monotonic()
    kills: list[float] = []
    sweeps: list[dict[str, int]] = []
    expired_at = None
    opted_out: dict[str, float] = {}
    try:
        sandbox.faults.configure(
            rate_503=0.10, rate_429=0.05, rate_slow=0.02, slow_seconds=4.0, retry_after=1,
            webhook_duplicate_rate=0.20, webhook_drop_rate=0.10, webhook_shuffle=True)

        pks = send_flood(size.notifications)
        conversations = []
        for number in numbers("+35387", size.dialogues):
            dialogue = django_mmc.open_dialogue(number)
            # WhatsApp: the agent starts with a template, before the customer writes.
            dialogue.send_message(template="welcome")
            conversations.append(Conversation(number, dialogue.pk))

        kill_points = [0.3, 0.65][:size.kills]
        deadline = time.monotonic() + size.run_timeout
        last_sweep = time.monotonic()
        while True:
            assert time.monotonic() < deadline, (
                f"the run did not finish in {size.run_timeout}s: "
                f"{settled(sandbox, pks)[1]}\n{worker.output(log_offset)[-3000:]}")
            sent = Notification.objects.filter(pk__in=pks).filter(
                Q(platform_id__isnull=False) | Q(status=Status.REFUSED)).count()
            progress = sent / len(pks)
            if len(kills) < len(kill_points) and (progress >= kill_points[len(kills)]
                                                   or progress == 1):
                worker.stop(signal.SIGKILL)
                kills.append(round(progress, 2))
                worker.start()
            elif expired_at is None and progress >= 0.5:
                sandbox.expire_tokens()
                expired_at = round(progress, 2)
            elif not opted_out and progress >= 0.4:
                opted_out = opt_out_some(pks)
            advance_conversations(stack, conversations)
            if time.monotonic() - last_sweep > SWEEP_EVERY and queued_tasks() < QUIET_QUEUE:
                sweeps.append(sweep_outbox())
                last_sweep = time.monotonic()
            if (progress == 1 and len(kills) == len(kill_points) and expired_at is not None
                    and opted_out and all(t.answered or t.reply_dropped for t in conversations)):
                break
            time.sleep(0.2)
        run_seconds = time.monotonic() - started
    finally:
        sandbox.faults.clear()

    return (pks, conversations, kills, expired_at, run_seconds,
            sum(map(Counter, sweeps), Counter()), opted_out)


def settle(stack: Any, size: Size, pks: list[int], log_offset: int) -> None:
    """What beat does (sweeper, status polling), until nothing changes."""
    sandbox, worker = stack.sandbox, stack.worker
    deadline = time.monotonic() + size.settle_timeout
    stable = 0
    while stable < 2:
        sandbox.wait_for_webhooks(timeout=5)
        wait_for_the_worker(timeout=max(1.0, deadline - time.monotonic()))
        sweep_outbox()
        poll_notifications()
        poll_dialogues()
        done, state = settled(sandbox, pks)
        stable = stable + 1 if done else 0
        assert time.monotonic() < deadline, (
            f"not settled in {size.settle_timeout}s: {state}\n"
            f"{worker.output(log_offset)[-3000:]}")
        time.sleep(0.5 if done else 1.0)


@pytest.mark.parametrize("size", [
    pytest.param(Size(200, 10, 1, run_timeout=90, settle_timeout=60), id="200x10"),
    pytest.param(Size(1000, 50, 2, run_timeout=360, settle_timeout=120), id="1000x50",
                 marks=pytest.mark.slow),
])
def test_chaos_run(mmc_stack: Any, size: Size) -> None:
    sandbox, worker = mmc_stack.sandbox, mmc_stack.worker
    started = time.monotonic()
    log_offset = worker.log.stat().st_size if worker.log.exists() else 0
    local = Transitions()
    for signal_ in (signals.notification_status_changed, signals.message_status_changed):
        signal_.connect(local.record, weak=False, dispatch_uid="django_mmc_chaos")
    try:
        pks, conversations, kills, expired_at, run_seconds, swept, opted_out = chaos(
            mmc_stack, size, log_offset)
        late_dialogues = post_late_dialogue_events(mmc_stack, conversations)
        reprocess(WebhookEvent.objects.filter(event_type__startswith="dialogue."),
                  include_processed=True)
        settle(mmc_stack, size, pks, log_offset)
    finally:
        for signal_ in (signals.notification_status_changed, signals.message_status_changed):
            signal_.disconnect(dispatch_uid="django_mmc_chaos")
    total_seconds = time.monotonic() - started

    # -- notifications: the platform's state, exactly one each ---------------------
    remote = {n["id"]: n for n in sandbox.notifications()}
    keys = Counter(n["idempotency_key"] for n in remote.values())
    all_rows = list(Notification.objects.filter(pk__in=pks))
    assert len(all_rows) == size.notifications
    refused = [n for n in all_rows if n.status == Status.REFUSED]
    assert refused and {n.failure_code for n in refused} == {"OPTED_OUT"}
    assert all(n.platform_id is None for n in refused)
    rows = [n for n in all_rows if n.status != Status.REFUSED]
    assert sorted(keys.values()) == [1] * len(rows)
    assert {str(n.idempotency_key) for n in rows} == set(keys)
    wrong = [(n.pk, n.status, remote.get(n.platform_id, {}).get("status")) for n in rows
             if n.platform_id not in remote or remote[n.platform_id]["status"] != n.status]
    assert not wrong, f"{len(wrong)} notifications differ from the platform: {wrong[:10]}"
    final = Counter(n.status for n in all_rows)
    assert final[Status.FAILED] and final[Status.READ]

    # -- opt-outs: nothing created on the platform after one committed -------------
    late_sends = [
        (number, n["createdAt"]) for n in remote.values()
        for number, committed in opted_out.items()
        if n["recipient"] == number and parse_datetime(n["createdAt"]).timestamp()
        > committed + CLAIM_TO_PLATFORM]
    assert not late_sends, late_sends
    assert {n.recipient.phone_number for n in refused} <= set(opted_out)

    # -- no status went backwards, none was entered twice --------------------------
    recorded = mmc_stack.signals() + local.entries
    problems = (transition_problems(recorded, "notification")
                + transition_problems(recorded, "message"))
    assert not problems, problems[:20]
    changed = {e["notification"] for e in recorded
               if e["signal"] == "notification_status_changed"}
    assert len(changed) >= 0.95 * size.notifications  # a kill may cost a signal, not more

    # -- dialogues and their messages -----------------------------------------------
    dialogues = {d.pk: d for d in Dialogue.objects.filter(
        pk__in=[t.dialogue_pk for t in conversations])}
    remote_dialogues = {d["id"]: d for d in sandbox.dialogues()}
    assert len(remote_dialogues) == size.dialogues  # replies went to our dialogues
    assert sorted(Counter(d["idempotency_key"] for d in remote_dialogues.values()).values()
                  ) == [1] * size.dialogues
    for dialogue in dialogues.values():
        assert dialogue.status == DialogueStatus.OPEN, dialogue  # no late event closed it
        assert remote_dialogues[dialogue.platform_id]["recipient"] == (
            dialogue.recipient.phone_number)
    for late in Dialogue.objects.filter(platform_id__in=late_dialogues):
        assert late.status == DialogueStatus.CLOSED and late.messages.count() == 1
    assert Dialogue.objects.filter(platform_id__in=late_dialogues).count() == len(
        late_dialogues)

    # Every message the recipient wrote is stored exactly once in the right
    # dialogue: by its webhook, or, where every delivery was dropped, by the
    # transcript poll.
    remote_messages = sandbox.messages()
    lost = [m["id"] for m in remote_messages if m["direction"] == "INBOUND"
            and message_received_event(sandbox, m["id"]) not in delivered_event_ids(sandbox)]
    for message in (m for m in remote_messages if m["direction"] == "INBOUND"):
        stored = list(Message.objects.filter(platform_id=message["id"]))
        assert len(stored) == 1, message
        assert stored[0].direction == Direction.INBOUND
        assert stored[0].dialogue.platform_id == message["dialogue"]
        assert stored[0].text == message["text"]
    inbound = Message.objects.filter(direction=Direction.INBOUND).exclude(
        dialogue__platform_id__in=late_dialogues)
    assert inbound.count() == sum(1 for m in remote_messages if m["direction"] == "INBOUND")

    outbound = list(Message.objects.filter(direction=Direction.OUTBOUND))
    remote_out = {m["idempotency_key"]: m for m in remote_messages
                  if m["direction"] == "OUTBOUND"}
    assert len(remote_out) == sum(1 for m in remote_messages if m["direction"] == "OUTBOUND")
    for message in outbound:
        twin = remote_out.get(str(message.idempotency_key))
        assert twin is not None and twin["id"] == message.platform_id, message
        # Dropped status webhooks are made good by the transcript poll.
        assert message.status == twin["status"], (message, twin["status"])
    answers = sum(1 for t in conversations if t.answered)
    assert len(outbound) == size.dialogues + answers

    # -- no event left pending ----------------------------------------------------
    states = Counter(WebhookEvent.objects.values_list("state", flat=True))
    assert set(states) <= {WebhookEvent.State.PROCESSED, WebhookEvent.State.IGNORED,
                           WebhookEvent.State.FAILED}, states
    assert not WebhookEvent.objects.filter(state=WebhookEvent.State.FAILED, error="").exists()
    assert WebhookEvent.objects.count() == len({e["event_id"] for e in sandbox.webhook_log
                                                if e["status_code"] in (200, 202)}) + (
        2 * len(late_dialogues))

    # -- what happened, for the record -----------------------------------------------
    requests = Counter(r["status"] for r in sandbox.requests_log)
    hooks = sandbox.webhook_log
    worker_log = worker.output(log_offset)
    assert len(kills) == size.kills and expired_at is not None
    assert requests[503] and requests[429] and requests[401]
    assert sandbox.token_requests >= 2
    print(
        f"\nchaos run {size.notifications} notifications / {size.dialogues} dialogues: "
        f"sent in {run_seconds:.1f}s, settled in {total_seconds:.1f}s; "
        f"worker SIGKILLed at {kills} of the notifications sent, tokens expired at "
        f"{expired_at}; API answers {dict(sorted(requests.items()))}, "
        f"{worker_log.count('did not answer in time')} read timeouts, "
        f"{sandbox.token_requests} token grants; "
        f"webhooks: {len({e['event_id'] for e in hooks})} events, "
        f"{sum(1 for e in hooks if e['duplicate'])} duplicate copies, "
        f"{sum(1 for e in hooks if e['dropped'])} dropped, "
        f"{sum(1 for e in hooks if e['status_code'] == 200)} answered 200 (repeat); "
        f"events stored {dict(states)}; notifications {dict(final)}; "
        f"{sum(n.attempts for n in rows) - size.notifications} send retries; "
        f"re-enqueued by the sweeper during the run: {dict(+swept)}; "
        f"inbound messages whose webhooks were all dropped (recovered by polling): "
        f"{len(lost)}; "
        f"{len(opted_out)} recipients opted out mid-run ({len(refused)} notifications "
        f"refused); {len(late_dialogues)} late dialogues kept apart; "
        f"{len(recorded)} transitions checked"
    )
