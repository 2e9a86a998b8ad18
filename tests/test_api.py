"""The public API's promises: local validation naming the field, nothing
stored on error, enqueue only after commit, campaigns in chunks."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

import django_mmc
from django_mmc.models import Dialogue, Message, Notification, Recipient
from django_mmc.status import DialogueStatus, Status
from tests.helpers import OTP_TEMPLATE_ID

pytestmark = pytest.mark.django_db


def fields_of(error: ValidationError) -> set[str]:
    return set(error.value.message_dict)


@pytest.mark.parametrize("kwargs,field", [
    ({"to": "0861234567"}, "to"),
    ({"to": "+1234"}, "to"),
    ({"to": None}, "to"),
    ({"template": "no_such_template"}, "template"),
    ({"context": {}}, "context"),
    ({"context": {"first_name": "Ann", "coupon": "X"}}, "context"),
    ({"context": {"first_name": ["a"]}}, "context"),
    ({"context": "first_name=Ann"}, "context"),
    ({"channel_type": "TELEGRAM"}, "channel_type"),
    ({"channel_group": "99"}, "channel_group"),
])
def test_invalid_notifications_name_the_field_and_store_nothing(directory, kwargs, field):
    arguments = {"to": "+353861234567", "template": "order_shipped",
                 "context": {"first_name": "Ann"}, **kwargs}
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification(arguments.pop("to"), arguments.pop("template"),
                                     arguments.pop("context"), **arguments)
    assert field in fields_of(error)
    assert Notification.objects.count() == 0
    assert Recipient.objects.count() == 0


def test_channel_type_must_be_allowed_by_the_template(directory):
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "appointment_reminder",
                                     {"first_name": "Ann", "date": "Monday"},
                                     channel_type="SMS")
    assert fields_of(error) == {"channel_type"}
    assert "WHATSAPP" in str(error.value)


def test_several_problems_are_reported_together(directory):
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("nope", "order_shipped", {"bogus": 1})
    assert fields_of(error) == {"to", "context"}
    messages = " ".join(error.value.message_dict["context"])
    assert "bogus" in messages and "first_name" in messages


def test_inactive_template_is_refused(directory):
    directory["otp"].is_active = False
    directory["otp"].save()
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert "no longer active" in str(error.value)


def test_template_by_platform_id_and_default_channel(directory):
    notification = django_mmc.send_notification("+353 86 123 4567", OTP_TEMPLATE_ID,
                                                {"code": 1234})
    assert notification.template.name == "otp"
    assert notification.recipient.phone_number == "+353861234567"
    assert notification.channel_type == "WHATSAPP"  # MMC['DEFAULT_CHANNEL_TYPE']
    assert notification.context == {"code": "1234"}
    assert notification.status == Status.QUEUED


def test_the_send_is_enqueued_only_on_commit(directory, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    assert len(callbacks) == 1

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            django_mmc.send_notification("+353861234567", "otp", {"code": "2"})
            raise RuntimeError("the business transaction fails")
    assert callbacks == []
    assert Notification.objects.count() == 1


def test_open_dialogue_returns_the_agents_open_dialogue(directory):
    first = django_mmc.open_dialogue("+353861234567")
    again = django_mmc.open_dialogue("+353861234567", agent="support")
    assert again.pk == first.pk
    assert first.status == DialogueStatus.OPENING


def test_open_dialogue_held_by_another_local_agent_says_which(directory):
    django_mmc.open_dialogue("+353861234567", agent="sales")
    with pytest.raises(ValidationError) as error:
        django_mmc.open_dialogue("+353861234567", agent="support")
    assert "sales" in str(error.value)
    assert Dialogue.objects.count() == 1


def test_the_database_allows_one_active_dialogue_per_recipient_and_group(directory):
    from django.db import IntegrityError

    first = django_mmc.open_dialogue("+353861234567")
    with pytest.raises(IntegrityError), transaction.atomic():
        Dialogue.objects.create(agent_key="sales", recipient=first.recipient,
                                channel_group=first.channel_group, status=DialogueStatus.OPEN)
    Dialogue.objects.filter(pk=first.pk).update(status=DialogueStatus.CLOSED)
    Dialogue.objects.create(agent_key="sales", recipient=first.recipient,
                            channel_group=first.channel_group, status=DialogueStatus.OPEN)


def test_unknown_agent_is_named(directory):
    with pytest.raises(ValidationError) as error:
        django_mmc.open_dialogue("+353861234567", agent="marketing")
    assert fields_of(error) == {"agent"}
    assert "marketing" in str(error.value)


@pytest.mark.parametrize("kwargs,field", [
    ({"text": ""}, "text"),
    ({"text": "x" * 5000}, "text"),
    ({"text": "hi", "template": "otp"}, "text"),
    ({"template": "otp", "context": {}}, "context"),
    ({"text": "hi", "channel_type": "TELEGRAM"}, "channel_type"),
    ({"text": "hi", "files": [{"name": "no id"}]}, "files"),
])
def test_invalid_messages_name_the_field(directory, kwargs, field):
    dialogue = django_mmc.open_dialogue("+353861234567")
    with pytest.raises(ValidationError) as error:
        dialogue.send_message(**kwargs)
    assert field in fields_of(error)
    assert Message.objects.count() == 0


def test_messages_only_in_open_dialogues(directory):
    dialogue = django_mmc.open_dialogue("+353861234567")
    dialogue.close()
    assert dialogue.status == DialogueStatus.CLOSING
    with pytest.raises(ValidationError) as error:
        dialogue.send_message(template="otp", context={"code": "1"})
    assert fields_of(error) == {"dialogue"}


def test_template_message_and_files(directory):
    dialogue = django_mmc.open_dialogue("+353861234567")
    message = dialogue.send_message(template="otp", context={"code": "55"}, files=["9"])
    assert message.template.name == "otp" and message.files == [{"id": "9"}]
    assert message.status == Status.QUEUED and message.direction == "OUTBOUND"


def test_campaign_is_created_in_chunks_with_constant_queries_per_chunk(directory, settings):
    settings.MMC = {**settings.MMC, "BULK_CHUNK_SIZE": 50}
    numbers = [f"+3538612{i:05d}" for i in range(200)]
    with CaptureQueriesContext(connection) as small:
        assert django_mmc.send_notifications(numbers[:50], "otp", {"code": "1"}) == 50
    Notification.objects.all().delete()
    Recipient.objects.all().delete()
    with CaptureQueriesContext(connection) as large:
        assert django_mmc.send_notifications(iter(numbers), "otp", {"code": "1"}) == 200
    # Four chunks cost four times one chunk's queries (plus the fixed part).
    fixed = len(small) - _per_chunk(small)
    assert len(large) - fixed == 4 * _per_chunk(small)
    assert Notification.objects.count() == 200
    assert Recipient.objects.count() == 200


def _per_chunk(queries) -> int:
    return sum(1 for q in queries if "django_mmc_recipient" in q["sql"]
               or "INSERT INTO \"django_mmc_notification\"" in q["sql"])


def test_campaign_with_one_bad_number_stores_nothing(directory):
    numbers = ["+353861234567", "+353861234568", "bad", "+353861234569"]
    with pytest.raises(ValidationError) as error:
        django_mmc.send_notifications(numbers, "otp", {"code": "1"})
    assert "#2" in str(error.value)
    assert Notification.objects.count() == 0 and Recipient.objects.count() == 0


def test_campaign_contexts_per_recipient(directory):
    count = django_mmc.send_notifications(
        ["+353861234567", "+353861234568"], "order_shipped",
        [{"first_name": "Ann"}, {"first_name": "Bob"}])
    assert count == 2
    assert sorted(Notification.objects.values_list("context__first_name", flat=True)) == [
        "Ann", "Bob"]
    with pytest.raises(ValidationError):
        django_mmc.send_notifications(["+353861234567", "+353861234568"], "order_shipped",
                                      [{"first_name": "Ann"}])


def test_a_campaign_is_handed_over_in_even_batches_of_at_most_send_batch_size(
        directory, settings, monkeypatch, django_capture_on_commit_callbacks):
    from django_mmc import tasks

    sent: list[list[int]] = []
    monkeypatch.setattr(tasks.deliver_notification_batch, "apply_async",
                        lambda args, **options: sent.append(args[0]))
    settings.MMC = {**settings.MMC, "SEND_BATCH_SIZE": 25}
    numbers = [f"+3538612{index:05d}" for index in range(30)]
    with django_capture_on_commit_callbacks(execute=True):
        django_mmc.send_notifications(numbers, "otp", {"code": "1"})
    assert [len(batch) for batch in sent] == [15, 15]
    assert sorted(pk for batch in sent for pk in batch) == sorted(
        Notification.objects.values_list("pk", flat=True))


@given(count=st.integers(min_value=0, max_value=400), size=st.integers(min_value=1, max_value=60))
def test_batches_keep_every_pk_once_in_order_and_even(count, size):
    from django_mmc.dispatch import batches

    pks = list(range(count))
    out = batches(pks, size)
    assert [pk for batch in out for pk in batch] == pks
    assert len(out) == -(-count // size)
    assert all(1 <= len(batch) <= size for batch in out)
    assert max(map(len, out), default=0) - min(map(len, out), default=0) <= 1
