"""Processing stored events: :func:`django_mmc.processing.process_event` applied
in the test process to events the view stored: statuses in any order, events
that wait for their subject, dialogues started by the recipient, late and
replayed events, and what fails."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from django.db import connection
from django.utils.timezone import now as django_now

from django_mmc import signals, transitions
from django_mmc.client import jsonapi
from django_mmc.models import (
    ChannelGroup,
    Dialogue,
    Message,
    Notification,
    Recipient,
    WebhookEvent,
)
from django_mmc.processing import process_event, reprocess
from django_mmc.status import DialogueStatus, Direction, Status
from django_mmc.testing import build_event
from tests.helpers import SALES_AGENT_ID, SALES_GROUP_ID, SUPPORT_AGENT_ID, SUPPORT_GROUP_ID
from tests.markers import needs_postgresql

from .cases import WebhookCase, load_event

PROCESSED = WebhookEvent.State.PROCESSED
WAITING = WebhookEvent.State.WAITING
FAILED = WebhookEvent.State.FAILED
PENDING = WebhookEvent.State.PENDING

NUMBER = "+353861234567"  # the recipient of the fixtures


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def notification_status(status: str, *, notification: str = "79746", event_id: str | None = None,
                        failure: Any = None) -> dict[str, Any]:
    return build_event("notification.status", event_id=event_id, notification=notification,
                       status=status, failure=failure)


def message_status(status: str, *, message: str = "55012", dialogue: str = "9001",
                   event_id: str | None = None, failure: Any = None) -> dict[str, Any]:
    return build_event("message.status", event_id=event_id, message=message, dialogue=dialogue,
                       status=status, failure=failure)


def message_received(*, message: str = "55101", dialogue: str = "9002", recipient: str = NUMBER,
                     channel_group: str = SUPPORT_GROUP_ID, event_id: str | None = None,
                     occurred_at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    fields.setdefault("text", "Hi, where is my order?")
    fields.setdefault("channel_type", "WHATSAPP")
    return build_event("message.received", event_id=event_id, message=message,
                       dialogue=dialogue, recipient=recipient, channel_group=channel_group,
                       occurred_at=occurred_at, **fields)


def dialogue_opened(*, dialogue: str = "9002", recipient: str = NUMBER,
                    channel_group: str = SUPPORT_GROUP_ID, initiated_by: str = "RECIPIENT",
                    event_id: str | None = None, agent_id: str = SUPPORT_AGENT_ID,
                    occurred_at: datetime | None = None) -> dict[str, Any]:
    return build_event("dialogue.opened", event_id=event_id, dialogue=dialogue,
                       recipient=recipient, channel_group=channel_group,
                       initiated_by=initiated_by, channel_type="WHATSAPP", agent_id=agent_id,
                       occurred_at=occurred_at)


def dialogue_closed(*, dialogue: str = "9002", closed_by: str = "RECIPIENT",
                    event_id: str | None = None) -> dict[str, Any]:
    return build_event("dialogue.closed", event_id=event_id, dialogue=dialogue,
                       closed_by=closed_by)


class ProcessingCase(WebhookCase):
    """Stores events through the view, then processes them here."""

    @pytest.fixture(autouse=True)
    def _directory(self, directory: dict[str, Any]) -> None:
        self.directory = directory

    def process(self, event: dict[str, Any], *, agent_key: str | None = None
                ) -> WebhookEvent:
        """Deliver and process ``event``; returns its stored row, refreshed."""
        stored = self.store(event, agent_key=agent_key)
        process_event(stored.pk)
        stored.refresh_from_db()
        return stored

    def again(self, stored: WebhookEvent) -> WebhookEvent:
        process_event(stored.pk)
        stored.refresh_from_db()
        return stored

    def recipient(self) -> Recipient:
        return Recipient.objects.for_number(NUMBER)

    def notification(self, *, platform_id: str | None = "79746",
                     status: str = Status.ACCEPTED) -> Notification:
        return Notification.objects.create(
            recipient=self.recipient(), template=self.directory["otp"],
            channel_group=self.directory["support"], channel_type="SMS",
            context={"code": "123456"}, platform_id=platform_id, status=status,
        )

    def dialogue(self, *, platform_id: str | None = "9001", status: str = DialogueStatus.OPEN,
                 agent_key: str = "support", group: str = "support") -> Dialogue:
        return Dialogue.objects.create(
            agent_key=agent_key, recipient=self.recipient(),
            channel_group=self.directory[group], channel_type="WHATSAPP",
            platform_id=platform_id, status=status,
        )

    def outbound(self, dialogue: Dialogue, *, platform_id: str | None = "55012",
                 status: str = Status.ACCEPTED) -> Message:
        return Message.objects.create(
            dialogue=dialogue, direction=Direction.OUTBOUND, text="Your parcel left today.",
            platform_id=platform_id, status=status,
        )


class TestNotificationStatus(ProcessingCase):
    def test_a_status_moves_the_notification_forward_and_stamps_its_time(self) -> None:
        notification = self.notification()
        before = notification.status_changed_at

        stored = self.process(load_event("notification.status"))

        assert stored.state == PROCESSED
        assert stored.processed_at is not None and stored.attempts == 1 and stored.error == ""
        notification.refresh_from_db()
        assert notification.status == Status.DELIVERED
        assert notification.delivered_at is not None
        assert notification.status_changed_at > before
        assert notification.sent_at is None and notification.read_at is None

    def test_each_step_stamps_its_own_time(self) -> None:
        notification = self.notification()
        for status, field in (("SENT", "sent_at"), ("DELIVERED", "delivered_at"),
                              ("READ", "read_at")):
            assert self.process(notification_status(status)).state == PROCESSED
            notification.refresh_from_db()
            assert notification.status == status
            assert getattr(notification, field) is not None
        assert notification.sent_at <= notification.delivered_at <= notification.read_at

    def test_a_late_sent_after_delivered_changes_nothing(self) -> None:
        notification = self.notification()
        self.process(notification_status("DELIVERED"))
        notification.refresh_from_db()
        changed_at = notification.status_changed_at

        late = self.process(notification_status("SENT"))

        assert late.state == PROCESSED  # applied: as nothing, not failed
        notification.refresh_from_db()
        assert notification.status == Status.DELIVERED
        assert notification.sent_at is None
        assert notification.status_changed_at == changed_at

    def test_failed_after_read_is_ignored(self) -> None:
        notification = self.notification(status=Status.READ)
        failure = {"code": "EXPIRED", "detail": "Too late."}
        assert self.process(notification_status("FAILED", failure=failure)).state == PROCESSED
        notification.refresh_from_db()
        assert notification.status == Status.READ
        assert (notification.failure_code, notification.failure_detail, notification.failed_at) \
            == ("", "", None)

    def test_failed_carries_the_failure_code_and_detail(self) -> None:
        notification = self.notification(status=Status.DELIVERED)
        failure = {"code": "RECIPIENT_UNREACHABLE", "detail": "The handset is switched off."}
        self.process(notification_status("FAILED", failure=failure))
        notification.refresh_from_db()
        assert notification.status == Status.FAILED
        assert notification.failure_code == "RECIPIENT_UNREACHABLE"
        assert notification.failure_detail == "The handset is switched off."
        assert notification.failed_at is not None
        assert notification.is_failure

    def test_the_same_event_processed_twice_changes_nothing_the_second_time(self) -> None:
        notification = self.notification()
        stored = self.process(load_event("notification.status"))
        notification.refresh_from_db()
        first = (notification.status, notification.status_changed_at, notification.updated_at)
        processed_at = stored.processed_at

        stored = self.again(stored)

        assert stored.state == PROCESSED
        assert (stored.attempts, stored.processed_at) == (1, processed_at)
        notification.refresh_from_db()
        assert (notification.status, notification.status_changed_at,
                notification.updated_at) == first

    def test_the_same_status_under_another_event_id_changes_nothing(self) -> None:
        notification = self.notification()
        self.process(notification_status("DELIVERED"))
        notification.refresh_from_db()
        updated_at = notification.updated_at
        assert self.process(notification_status("DELIVERED")).state == PROCESSED
        notification.refresh_from_db()
        assert notification.updated_at == updated_at

    def test_an_unknown_notification_waits_and_is_applied_once_its_id_is_stored(self) -> None:
        # The webhook beat the worker: the row is still being sent, no id yet.
        notification = self.notification(platform_id=None, status=Status.SENDING)

        stored = self.process(load_event("notification.status"))

        assert stored.state == WAITING
        assert stored.subject_id == "79746" and stored.processed_at is None
        notification.refresh_from_db()
        assert notification.status == Status.SENDING

        # The worker records the platform's answer; the event is not dropped.
        resource = jsonapi.parse_notification(
            {"type": "notifications", "id": "79746", "attributes": {"status": "ACCEPTED"}})
        transitions.record_sent(Notification, notification.pk, resource,
                                notification.claim_token)
        stored = self.again(stored)

        assert stored.state == PROCESSED and stored.attempts == 2
        notification.refresh_from_db()
        assert notification.platform_id == "79746"
        assert notification.status == Status.DELIVERED

    def test_waiting_stays_waiting_while_the_id_is_unknown(self) -> None:
        stored = self.process(load_event("notification.status"))
        for _ in range(3):
            stored = self.again(stored)
        assert stored.state == WAITING and stored.attempts == 4

    def test_an_unknown_status_fails_the_event_and_keeps_it(self) -> None:
        notification = self.notification()
        stored = self.process(notification_status("BOUNCED"))
        assert stored.state == FAILED
        assert "BOUNCED" in stored.error
        notification.refresh_from_db()
        assert notification.status == Status.ACCEPTED

    def test_a_status_event_without_its_notification_fails(self) -> None:
        event = notification_status("DELIVERED")
        del event["data"]["relationships"]["notification"]
        stored = self.process(event)
        assert stored.state == FAILED
        assert "notification" in stored.error


class TestMessageStatus(ProcessingCase):
    def test_a_status_moves_the_message_forward(self) -> None:
        message = self.outbound(self.dialogue())
        assert self.process(message_status("DELIVERED")).state == PROCESSED
        message.refresh_from_db()
        assert message.status == Status.DELIVERED and message.delivered_at is not None

    def test_failed_carries_the_failure(self) -> None:
        message = self.outbound(self.dialogue(), status=Status.SENT)
        assert self.process(load_event("message.status")).state == PROCESSED
        message.refresh_from_db()
        assert message.status == Status.FAILED
        assert message.failure_code == "RECIPIENT_UNREACHABLE"
        assert message.failure_detail == "The handset is switched off."
        assert message.failed_at is not None

    def test_out_of_order_statuses_never_move_back(self) -> None:
        message = self.outbound(self.dialogue())
        for status in ("READ", "DELIVERED", "SENT", "FAILED", "ACCEPTED"):
            self.process(message_status(status))
        message.refresh_from_db()
        assert message.status == Status.READ
        assert message.delivered_at is None and message.failed_at is None

    def test_an_unknown_message_waits_and_is_applied_later(self) -> None:
        dialogue = self.dialogue()
        stored = self.process(message_status("DELIVERED"))
        assert stored.state == WAITING and stored.subject_id == "55012"

        message = self.outbound(dialogue)
        assert self.again(stored).state == PROCESSED
        message.refresh_from_db()
        assert message.status == Status.DELIVERED

    def test_a_status_for_an_inbound_message_changes_nothing(self) -> None:
        self.process(message_received())
        inbound = Message.objects.get(platform_id="55101")
        assert self.process(message_status("READ", message="55101")).state == PROCESSED
        inbound.refresh_from_db()
        assert inbound.status == Status.RECEIVED and inbound.read_at is None


class TestMessageReceived(ProcessingCase):
    def test_it_creates_the_recipient_the_dialogue_and_the_message(self) -> None:
        event = load_event("message.received")

        stored = self.process(event)

        assert stored.state == PROCESSED, stored.error
        recipient = Recipient.objects.get()
        assert recipient.phone_number == NUMBER
        dialogue = Dialogue.objects.get()
        assert dialogue.platform_id == "9002"
        assert dialogue.agent_key == "support"
        assert dialogue.recipient == recipient
        assert dialogue.channel_group == self.directory["support"]
        assert dialogue.status == DialogueStatus.OPEN
        assert dialogue.initiated_by == "RECIPIENT"
        assert dialogue.channel_type == "WHATSAPP"
        assert dialogue.opened_at == at("2026-11-26T19:05:42.000Z")
        assert dialogue.last_inbound_at == at("2026-11-26T19:05:42.000Z")
        message = Message.objects.get()
        assert message.dialogue == dialogue
        assert message.direction == Direction.INBOUND
        assert message.platform_id == "55101"
        assert message.text == "Hi, where is my order?"
        assert message.status == Status.RECEIVED
        assert message.received_at == at("2026-11-26T19:05:42.000Z")
        assert message.files == event["data"]["attributes"]["files"]

    def test_the_agent_is_the_endpoints(self) -> None:
        self.process(message_received(channel_group=SALES_GROUP_ID, agent_id=SALES_AGENT_ID),
                     agent_key="sales")
        dialogue = Dialogue.objects.get()
        assert dialogue.agent_key == "sales"
        assert dialogue.channel_group == self.directory["sales"]

    def test_an_event_for_another_agent_is_refused(self) -> None:
        """A secret leaked for one agent cannot forge events about another's."""
        stored = self.process(message_received(agent_id=SUPPORT_AGENT_ID), agent_key="sales")
        assert stored.state == WebhookEvent.State.FAILED
        assert "arrived at the endpoint of agent 'sales'" in stored.error
        assert Dialogue.objects.count() == 0 and Message.objects.count() == 0

    def test_a_dialogue_of_another_agent_is_not_touched(self) -> None:
        self.process(message_received(event_id="evt_a"))
        stored = self.process(message_received(event_id="evt_b", message="55102",
                                               agent_id=SALES_AGENT_ID), agent_key="sales")
        assert stored.state == WebhookEvent.State.FAILED
        assert "belongs to agent 'support'" in stored.error
        assert Message.objects.count() == 1

    def test_delivered_twice_it_is_applied_once(self) -> None:
        event = message_received(event_id="evt_first")
        stored = self.process(event)
        assert self.deliver(event).status_code == 200
        # The platform may also re-send it as a new event.
        resent = self.process(message_received(event_id="evt_resent"))
        self.again(stored)

        assert resent.state == PROCESSED
        assert Recipient.objects.count() == 1
        assert Dialogue.objects.count() == 1
        assert Message.objects.count() == 1

    def test_later_messages_join_the_same_dialogue(self) -> None:
        self.process(message_received(message="55101", occurred_at="2026-11-26T19:05:42.000Z"))
        self.process(message_received(message="55102", text="Hello?",
                                      occurred_at="2026-11-26T19:07:00.000Z"))
        # Out of order: an older one arrives last.
        self.process(message_received(message="55100", text="First!",
                                      occurred_at="2026-11-26T19:01:00.000Z"))
        dialogue = Dialogue.objects.get()
        assert dialogue.messages.count() == 3
        assert dialogue.last_inbound_at == at("2026-11-26T19:07:00.000Z")

    def test_an_unknown_channel_group_is_recorded(self) -> None:
        self.process(message_received(channel_group="77"))
        assert Dialogue.objects.get().channel_group.platform_id == "77"

    @pytest.mark.parametrize("first", ["message.received", "dialogue.opened"])
    def test_either_order_ends_with_one_dialogue_holding_the_message(self, first: str) -> None:
        events = {"message.received": load_event("message.received"),
                  "dialogue.opened": load_event("dialogue.opened")}
        second = next(name for name in events if name != first)

        assert self.process(events[first]).state == PROCESSED
        assert self.process(events[second]).state == PROCESSED

        dialogue = Dialogue.objects.get()
        assert dialogue.platform_id == "9002" and dialogue.status == DialogueStatus.OPEN
        assert list(dialogue.messages.values_list("platform_id", flat=True)) == ["55101"]

    def test_it_goes_to_the_dialogue_that_holds_the_recipient(self) -> None:
        # Scenario 31: the recipient writes in our open dialogue.
        ours = self.dialogue(platform_id="9002")
        self.process(message_received())
        assert Dialogue.objects.count() == 1
        assert Message.objects.get().dialogue == ours


class TestDialogueEvents(ProcessingCase):
    def test_opened_for_a_dialogue_we_are_opening_attaches_the_platform_id(self) -> None:
        ours = self.dialogue(platform_id=None, status=DialogueStatus.OPENING)

        stored = self.process(dialogue_opened(initiated_by="AGENT"))

        assert stored.state == PROCESSED
        assert Dialogue.objects.count() == 1
        ours.refresh_from_db()
        assert ours.platform_id == "9002"
        assert ours.status == DialogueStatus.OPEN
        assert ours.opened_at is not None

    def test_opened_for_another_agent_of_ours_marks_our_opening_as_conflict(self) -> None:
        ours = self.dialogue(platform_id=None, status=DialogueStatus.OPENING)

        self.process(dialogue_opened(agent_id=SALES_AGENT_ID), agent_key="sales")

        ours.refresh_from_db()
        assert ours.status == DialogueStatus.CONFLICT
        assert ours.conflict_dialogue_id == "9002"
        assert ours.platform_id is None
        theirs = Dialogue.objects.get(platform_id="9002")
        assert theirs.agent_key == "sales" and theirs.status == DialogueStatus.OPEN

    def test_opened_while_an_older_one_is_open_closes_the_older(self) -> None:
        older = self.dialogue(platform_id="9001")
        self.process(dialogue_opened(dialogue="9002"))
        older.refresh_from_db()
        assert older.status == DialogueStatus.CLOSED and older.closed_by == "PLATFORM"
        assert Dialogue.objects.get(platform_id="9002").status == DialogueStatus.OPEN

    def test_opened_twice_creates_one_dialogue(self) -> None:
        self.process(dialogue_opened(event_id="evt_a"))
        self.process(dialogue_opened(event_id="evt_b"))
        assert Dialogue.objects.count() == 1

    def test_closed_closes_it_and_a_late_opened_does_not_reopen_it(self) -> None:
        self.process(load_event("dialogue.opened"))
        stored = self.process(load_event("dialogue.closed"))

        assert stored.state == PROCESSED
        dialogue = Dialogue.objects.get()
        assert dialogue.status == DialogueStatus.CLOSED
        assert dialogue.closed_by == "TIMEOUT"
        assert dialogue.closed_at == at("2026-11-26T19:35:42.000Z")

        late = self.process(dialogue_opened(event_id="evt_late_open"))
        assert late.state == PROCESSED
        dialogue.refresh_from_db()
        assert dialogue.status == DialogueStatus.CLOSED
        assert Dialogue.objects.count() == 1

    def test_closed_twice_keeps_the_first_close(self) -> None:
        self.process(load_event("dialogue.opened"))
        self.process(load_event("dialogue.closed"))
        again = self.process(dialogue_closed(closed_by="AGENT"))
        assert again.state == PROCESSED
        assert Dialogue.objects.get().closed_by == "TIMEOUT"

    def test_closed_for_an_unknown_dialogue_waits_for_its_opening(self) -> None:
        closed = self.process(load_event("dialogue.closed"))
        assert closed.state == WAITING and closed.subject_id == "9002"
        assert not Dialogue.objects.exists()

        self.process(load_event("dialogue.opened"))
        assert self.again(closed).state == PROCESSED
        assert Dialogue.objects.get().status == DialogueStatus.CLOSED

    def test_closing_refuses_our_queued_messages(self) -> None:
        dialogue = self.dialogue(platform_id="9002")
        queued = self.outbound(dialogue, platform_id=None, status=Status.QUEUED)
        self.process(dialogue_closed())
        queued.refresh_from_db()
        assert queued.status == Status.REFUSED
        assert queued.failure_code == "DIALOGUE_CLOSED"


class TestFailures(ProcessingCase):
    """Scenario 26: a handler error fails the event with its error and
    leaves nothing half-written."""

    def assert_failed_cleanly(self, stored: WebhookEvent, *words: str) -> None:
        assert stored.state == FAILED
        assert stored.attempts == 1 and stored.processed_at is None
        for word in words:
            assert word in stored.error, stored.error
        assert not Recipient.objects.exists()
        assert not Dialogue.objects.exists()
        assert not Message.objects.exists()
        assert not ChannelGroup.objects.filter(platform_id="77").exists()

    @pytest.mark.parametrize("number", ["+123", "0861234567", "not a number", "+35386123456789"])
    def test_an_invalid_phone_number(self, number: str) -> None:
        stored = self.process(message_received(recipient=number, channel_group="77"))
        self.assert_failed_cleanly(stored, "ValidationError")

    @pytest.mark.parametrize("text", [42, {"text": "hi"}, ["hi"], True])
    def test_text_that_is_not_a_string(self, text: Any) -> None:
        # The recipient, group and dialogue are created before the text is
        # looked at: they must be rolled back with it.
        stored = self.process(message_received(text=text, channel_group="77"))
        self.assert_failed_cleanly(stored, "'text' must be a string")

    @pytest.mark.parametrize("files", ["f_301", {"id": "f_301"}, [{"name": "no id"}], [17]])
    def test_malformed_files(self, files: Any) -> None:
        event = message_received(channel_group="77")
        event["data"]["attributes"]["files"] = files
        self.assert_failed_cleanly(self.process(event), "Error")

    def test_a_missing_relationship(self) -> None:
        event = message_received(channel_group="77")
        del event["data"]["relationships"]["recipient"]
        self.assert_failed_cleanly(self.process(event), "recipient")

    @pytest.mark.parametrize("field", ["text", "recipient"])
    def test_a_nul_character_fails_the_event_with_its_error(self, field: str) -> None:
        # An invalid number, or (PostgreSQL) text it refuses: the error is recorded.
        if field == "text" and connection.vendor != "postgresql":
            pytest.skip("only PostgreSQL refuses NUL in text")
        event = message_received(channel_group="77")
        if field == "text":
            event["data"]["attributes"]["text"] = "hi\u0000there"
        else:
            event["data"]["relationships"]["recipient"]["data"]["id"] = "+35386\u00001234567"
        stored = self.process(event)
        self.assert_failed_cleanly(stored)
        assert stored.error

    def test_the_error_of_a_failure_is_cleared_when_it_succeeds_later(self) -> None:
        notification = self.notification()
        event = notification_status("DELIVERED")
        event["data"]["attributes"]["status"] = "DELIVERED "  # a platform bug, fixed later
        stored = self.process(event)
        assert stored.state == FAILED and stored.error
        stored.body = stored.body.replace("DELIVERED ", "DELIVERED")
        stored.save(update_fields=["body"])

        stored = self.again(stored)

        assert stored.state == PROCESSED and stored.error == "" and stored.attempts == 2
        notification.refresh_from_db()
        assert notification.status == Status.DELIVERED

    def test_reprocess_puts_failed_and_waiting_events_back(self, private_queue: Any) -> None:
        failed = self.process(message_received(text=42, channel_group="77"))
        waiting = self.process(notification_status("DELIVERED"))
        self.notification(platform_id="1")
        processed = self.process(notification_status("READ", notification="1"))
        assert (failed.state, waiting.state, processed.state) == (FAILED, WAITING, PROCESSED)

        assert reprocess(WebhookEvent.objects.all()) == 2

        states = dict(WebhookEvent.objects.values_list("pk", "state"))
        assert states == {failed.pk: PENDING, waiting.pk: PENDING, processed.pk: PROCESSED}
        failed.refresh_from_db()
        assert failed.error == ""
        assert len(private_queue.tasks()) == 2  # one process_event task each

    def test_reprocess_can_include_processed_events(self, private_queue: Any) -> None:
        self.notification()
        processed = self.process(load_event("notification.status"))
        assert reprocess(WebhookEvent.objects.all()) == 0
        assert reprocess(WebhookEvent.objects.all(), include_processed=True) == 1
        assert len(private_queue.tasks()) == 1
        # Processing it again changes nothing: the status is already there.
        notification = Notification.objects.get()
        updated_at = notification.updated_at
        assert self.again(processed).state == PROCESSED
        notification.refresh_from_db()
        assert notification.updated_at == updated_at


# -- signals -------------------------------------------------------------------

SIGNALS = ("notification_status_changed", "message_status_changed", "message_received",
           "dialogue_opened", "dialogue_closed")


@pytest.fixture
def sent() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every django_mmc signal sent during the test, as (name, kwargs)."""
    calls: list[tuple[str, dict[str, Any]]] = []
    receivers = {}
    for name in SIGNALS:
        def receiver(sender: Any, signal: Any = None, _name: str = name, **kwargs: Any) -> None:
            calls.append((_name, kwargs))

        receivers[name] = receiver
        getattr(signals, name).connect(receiver, weak=False)
    yield calls
    for name, receiver in receivers.items():
        getattr(signals, name).disconnect(receiver)


class TestSignals(ProcessingCase):
    """Sent once per real change, and only after the commit."""

    @pytest.fixture(autouse=True)
    def _signals(self, sent: list[Any], django_capture_on_commit_callbacks: Any) -> None:
        self.sent = sent
        self.capture = django_capture_on_commit_callbacks

    def committed(self, stored: WebhookEvent) -> list[tuple[str, dict[str, Any]]]:
        """Process ``stored`` and commit; returns the signals sent."""
        start = len(self.sent)
        with self.capture(execute=True):
            process_event(stored.pk)
            assert len(self.sent) == start, "a signal was sent before the commit"
        return self.sent[start:]

    def test_notification_status_changed(self) -> None:
        notification = self.notification()
        delivered = self.store(notification_status("DELIVERED"))

        [(name, kwargs)] = self.committed(delivered)

        assert name == "notification_status_changed"
        assert kwargs["notification"].pk == notification.pk
        assert kwargs["notification"].status == Status.DELIVERED
        assert (kwargs["old_status"], kwargs["new_status"]) == ("ACCEPTED", "DELIVERED")
        # The same event again, the same status again, and a late one: none.
        assert self.committed(delivered) == []
        assert self.committed(self.store(notification_status("DELIVERED"))) == []
        assert self.committed(self.store(notification_status("SENT"))) == []

    def test_message_status_changed(self) -> None:
        message = self.outbound(self.dialogue())
        [(name, kwargs)] = self.committed(self.store(load_event("message.status")))
        assert name == "message_status_changed"
        assert kwargs["message"].pk == message.pk
        assert (kwargs["old_status"], kwargs["new_status"]) == ("ACCEPTED", "FAILED")
        assert self.committed(self.store(message_status("READ"))) == []

    def test_waiting_sends_nothing_until_applied(self) -> None:
        stored = self.store(notification_status("DELIVERED"))
        assert self.committed(stored) == []
        self.notification()
        assert [name for name, _ in self.committed(stored)] == ["notification_status_changed"]

    def test_message_received_opens_the_dialogue_once(self) -> None:
        sent = self.committed(self.store(load_event("message.received")))

        assert sorted(name for name, _ in sent) == ["dialogue_opened", "message_received"]
        kwargs = dict(sent)["message_received"]
        assert kwargs["message"].platform_id == "55101"
        assert kwargs["dialogue"].platform_id == "9002"
        assert dict(sent)["dialogue_opened"]["dialogue"].platform_id == "9002"
        # Its dialogue.opened arrives later: the dialogue is not opened twice.
        assert self.committed(self.store(load_event("dialogue.opened"))) == []
        assert self.committed(self.store(message_received(event_id="evt_resent"))) == []

    def test_dialogue_opened_then_message_received(self) -> None:
        opened = self.committed(self.store(load_event("dialogue.opened")))
        assert [name for name, _ in opened] == ["dialogue_opened"]
        received = self.committed(self.store(load_event("message.received")))
        assert [name for name, _ in received] == ["message_received"]

    def test_attaching_our_opening_dialogue_sends_dialogue_opened(self) -> None:
        ours = self.dialogue(platform_id=None, status=DialogueStatus.OPENING)
        [(name, kwargs)] = self.committed(self.store(dialogue_opened(initiated_by="AGENT")))
        assert name == "dialogue_opened" and kwargs["dialogue"].pk == ours.pk

    def test_dialogue_closed_once(self) -> None:
        dialogue = self.dialogue(platform_id="9002")
        [(name, kwargs)] = self.committed(self.store(load_event("dialogue.closed")))
        assert name == "dialogue_closed"
        assert kwargs["dialogue"].pk == dialogue.pk
        assert kwargs["closed_by"] == "TIMEOUT"
        assert kwargs["dialogue"].status == DialogueStatus.CLOSED
        assert self.committed(self.store(dialogue_closed(closed_by="AGENT"))) == []
        assert self.committed(self.store(dialogue_opened(event_id="evt_late"))) == []

    def test_a_failed_event_sends_nothing(self) -> None:
        # The dialogue is opened (and its signal queued) before the bad text
        # is found: the rollback must take the signal with it.
        stored = self.store(message_received(text=42))
        assert self.committed(stored) == []
        stored.refresh_from_db()
        assert stored.state == FAILED


class TestLateAndReplayedDialogueEvents(ProcessingCase):
    """Issue 13, items 5 and 13: webhooks are unordered and retried for a
    day, and "process again" replays old events."""

    def opened_dialogue(self, platform_id: str, *, minutes_ago: int) -> Dialogue:
        dialogue = self.dialogue(platform_id=platform_id)
        Dialogue.objects.filter(pk=dialogue.pk).update(
            opened_at=django_now() - timedelta(minutes=minutes_ago))
        dialogue.refresh_from_db()
        return dialogue

    def test_item_05_a_late_event_about_an_older_unknown_dialogue_leaves_the_live_one(
            self) -> None:
        live = self.opened_dialogue("9005", minutes_ago=10)
        old = django_now() - timedelta(hours=2)
        old = old.replace(microsecond=old.microsecond // 1000 * 1000)  # the wire's precision

        stored = self.process(message_received(dialogue="9001", message="55190",
                                               occurred_at=old, text="Late hello"))
        replayed = self.process(dialogue_opened(dialogue="9001", event_id="evt_old_open"))

        assert stored.state == PROCESSED
        live.refresh_from_db()
        assert live.status == DialogueStatus.OPEN and live.closed_at is None
        historical = Dialogue.objects.get(platform_id="9001")
        assert historical.status == DialogueStatus.CLOSED
        assert historical.opened_at == old
        assert Message.objects.get(platform_id="55190").dialogue == historical
        # The replayed opening of that old dialogue changes nothing either.
        assert replayed.state == PROCESSED
        assert Dialogue.objects.filter(status=DialogueStatus.OPEN).get() == live

    def test_item_05_only_a_newer_opening_supersedes_the_live_dialogue(self) -> None:
        live = self.opened_dialogue("9005", minutes_ago=10)

        self.process(dialogue_opened(dialogue="9006"))

        live.refresh_from_db()
        assert live.status == DialogueStatus.CLOSED and live.closed_by == "PLATFORM"
        assert Dialogue.objects.get(platform_id="9006").status == DialogueStatus.OPEN

    def test_item_05_an_old_event_never_takes_a_dialogue_we_are_opening(self) -> None:
        ours = self.dialogue(platform_id=None, status=DialogueStatus.OPENING)
        Dialogue.objects.filter(pk=ours.pk).update(created_at=django_now())

        self.process(dialogue_opened(dialogue="9001", initiated_by="AGENT",
                                     occurred_at=django_now() - timedelta(hours=1)))

        ours.refresh_from_db()
        assert ours.status == DialogueStatus.OPENING and ours.platform_id is None
        assert Dialogue.objects.get(platform_id="9001").status == DialogueStatus.CLOSED

    def test_item_13_an_event_waiting_too_long_is_given_up_as_stale(self) -> None:
        self.settings.MMC = {**self.settings.MMC, "EVENT_WAIT_MAX_AGE": 60}
        stored = self.process(notification_status("DELIVERED", notification="80001"))
        assert stored.state == WAITING

        WebhookEvent.objects.filter(pk=stored.pk).update(
            received_at=django_now() - timedelta(minutes=2))
        stored = self.again(stored)

        assert stored.state == WebhookEvent.State.STALE
        assert "Gave up" in stored.error
        # The sweeper no longer hands it over, and the retention command
        # deletes it in time.
        from django_mmc.processing import delete_old_events
        from django_mmc.workers.outbox import sweep_outbox

        assert sweep_outbox()["process_event"] == 0
        WebhookEvent.objects.filter(pk=stored.pk).update(
            received_at=django_now() - timedelta(days=40))
        assert delete_old_events(30) == 1


@pytest.mark.django_db(transaction=True)
class TestRacingEvents(ProcessingCase):
    """Issue 13, item 7: two workers at once, on real connections."""

    @needs_postgresql
    def test_item_07_two_events_about_a_new_dialogue_at_once_make_one_dialogue(self) -> None:
        import threading

        from django.db.models.signals import post_save

        from .test_concurrency import in_thread, wait_until_blocked_on_a_lock

        self.recipient()  # known already: the two meet on the dialogue's INSERT
        # Stored without the view's hand-over: no worker process may take them first.
        first, second = (
            WebhookEvent.objects.create(event_id=event["data"]["id"], agent_key="support",
                                        event_type="message.received", body=json.dumps(event))
            for event in (message_received(message="55301", event_id="evt_race_1"),
                          message_received(message="55302", event_id="evt_race_2",
                                           text="And a second line")))
        created = threading.Event()
        release = threading.Event()

        def hold_the_first_insert(sender: Any, instance: Dialogue, **kwargs: Any) -> None:
            if kwargs.get("created") and not created.is_set():
                created.set()
                release.wait(10)  # keeps its transaction open, the row unseen

        post_save.connect(hold_the_first_insert, sender=Dialogue)
        try:
            thread_a, outcome_a = in_thread(lambda: process_event(first.pk))
            assert created.wait(10)
            thread_b, outcome_b = in_thread(lambda: process_event(second.pk))
            wait_until_blocked_on_a_lock()  # the second insert waits for the first
            release.set()
            thread_a.join(10)
            thread_b.join(10)
        finally:
            release.set()
            post_save.disconnect(hold_the_first_insert, sender=Dialogue)
        assert outcome_a == {"result": PROCESSED}
        assert outcome_b == {"result": PROCESSED}
        dialogue = Dialogue.objects.get()
        assert sorted(dialogue.messages.values_list("platform_id", flat=True)) == [
            "55301", "55302"]


class MMCDatabaseRouter:
    """A site's router that keeps django_mmc's tables on the "mmc" database."""

    def db_for_write(self, model: Any, **hints: Any) -> str | None:
        return "mmc" if model._meta.app_label == "django_mmc" else None

    db_for_read = db_for_write

    def allow_relation(self, *objects: Any, **hints: Any) -> bool:
        return True


@needs_postgresql
@pytest.mark.django_db(transaction=True, databases=["default", "mmc"])
def test_item_14_processing_runs_on_the_database_the_event_is_stored_on(
        directory: Any, settings: Any) -> None:
    from django.db import connections
    from django.test.utils import CaptureQueriesContext

    settings.DATABASE_ROUTERS = [f"{__name__}.MMCDatabaseRouter"]
    event = message_received(event_id="evt_routed")
    stored = WebhookEvent.objects.create(event_id="evt_routed", agent_key="support",
                                         event_type="message.received", body=json.dumps(event))
    with CaptureQueriesContext(connections["mmc"]) as on_mmc, \
            CaptureQueriesContext(connections["default"]) as on_default:
        assert process_event(stored.pk) == PROCESSED
    assert on_default.captured_queries == []
    assert any("FOR UPDATE" in q["sql"] for q in on_mmc.captured_queries)
    assert Dialogue.objects.using("mmc").get().messages.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_locked_database_leaves_the_event_pending_to_try_again(directory: Any,
                                                                 monkeypatch: Any,
                                                                 caplog: Any) -> None:
    """SQLite in development: a worker and the web process write at once. A
    locked database is not a broken event: it stays PENDING, says why, and
    is applied on its next try (issue 16, item 3)."""
    import threading

    from django.db import connections, transaction

    from django_mmc import processing

    if connections["default"].vendor != "sqlite":
        pytest.skip("only SQLite locks the whole database")
    event = message_received(event_id="evt_locked")
    stored = WebhookEvent.objects.create(event_id="evt_locked", agent_key="support",
                                         event_type="message.received", body=json.dumps(event))
    monkeypatch.setattr(processing, "LOCKED_DELAYS", (0.01, 0.02))
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        try:
            with transaction.atomic():
                Recipient.objects.create(phone_number="+353861234599")
                holding.set()
                release.wait(10)
        finally:
            connections.close_all()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(5)
        assert process_event(stored.pk) == WebhookEvent.State.PENDING
    finally:
        release.set()
        thread.join(10)
    stored.refresh_from_db()
    assert stored.state == WebhookEvent.State.PENDING and stored.attempts == 0
    assert any("database is locked" in r.getMessage() for r in caplog.records)
    assert process_event(stored.pk) == PROCESSED
    assert Message.objects.filter(platform_id="55101").exists()
