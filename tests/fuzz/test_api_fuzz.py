"""Property tests of the public API with invalid input: whatever is wrong
(the number, the template, its parameters, the channel type, the agent),
``send_notification``, ``open_dialogue`` and ``send_message`` raise a
``ValidationError`` naming the argument at fault, store nothing and send
nothing (no work is queued for after the commit)."""

from __future__ import annotations

import contextlib
from typing import Any

import phonenumbers
import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from hypothesis import assume, event, given
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import django_mmc
from django_mmc.api import send_message
from django_mmc.models import Dialogue, Message, Notification, Recipient
from django_mmc.models.recipients import normalize_phone_number
from django_mmc.status import DialogueStatus, Direction, Status
from tests.helpers import SALES_GROUP_ID, SEED, SUPPORT_GROUP_ID

from . import fuzz_settings

VALID_NUMBER = "+353861234567"
#: Names and platform ids of the templates and groups the ``directory``
#: fixture creates (the sandbox's seed).
TEMPLATE_KEYS = {str(t[key]) for t in SEED["templates"] for key in ("id", "name")}
GROUP_KEYS = {str(g[key]) for g in SEED["channelGroups"] for key in ("id", "name")}


def is_valid_number(value: Any) -> bool:
    try:
        normalize_phone_number(value)
    except ValidationError:
        return False
    return True


def printable(text: str) -> bool:
    # Lookups by name take text a person or a program wrote; NUL bytes and
    # lone surrogates cannot even be sent to PostgreSQL (see the report on
    # resolve_template and resolve_channel_group).
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


texts = st.text(max_size=40).filter(printable)

invalid_numbers = st.one_of(
    texts,
    st.from_regex(r"\A\+?[0-9 ()-]{0,25}\Z"),
    st.from_regex(r"\A\+[0-9]{1,5}\Z"),
    st.from_regex(r"\A\+[0-9]{16,30}\Z"),
    st.from_regex(r"\A00[0-9]{8,12}\Z"),
    st.sampled_from(["", " ", "+", "++353861234567", "+353 86 123", "+1 555 0100",
                     "353861234567", "+35386123456a", "\u0660\u0661\u0662"]),
    st.integers(), st.none(), st.binary(max_size=15), st.lists(st.integers(), max_size=2),
).filter(lambda value: not is_valid_number(value))

unknown_templates = st.one_of(texts, st.integers(min_value=104)).filter(
    lambda value: str(value).strip() not in TEMPLATE_KEYS)
unknown_groups = st.one_of(texts, st.integers(min_value=9)).filter(
    lambda value: str(value) not in GROUP_KEYS and value not in ("", None))
odd_channel_types = st.one_of(
    texts, st.sampled_from(["FAX", "EMAIL", "sms ", "whatsapp2", "VOICE"]),
).filter(lambda value: value and str(value).upper() not in ("WHATSAPP", "SMS"))
bad_values = st.one_of(st.dictionaries(texts, st.integers(), max_size=2),
                       st.lists(st.integers(), max_size=2), st.sets(st.integers(), max_size=2))


class Nothing:
    """Counts rows and after-commit callbacks, to check nothing was added."""

    def __init__(self) -> None:
        self.before = self.snapshot()

    @staticmethod
    def snapshot() -> tuple[int, ...]:
        return (Notification.objects.count(), Dialogue.objects.count(),
                Message.objects.count(), Recipient.objects.count(),
                len(connection.run_on_commit))

    def changed(self) -> bool:
        return self.snapshot() != self.before


def assert_refused(call: Any, field: str) -> None:
    nothing = Nothing()
    with pytest.raises(ValidationError) as caught:
        call()
    assert field in caught.value.message_dict, (field, caught.value.message_dict)
    assert all(caught.value.message_dict.values())
    assert not nothing.changed(), "something was stored or queued"
    with contextlib.suppress(InvalidArgument):  # called outside a hypothesis test
        event(f"refused on {field}")


@pytest.fixture
def open_dialogue_row(directory: dict[str, Any]) -> Dialogue:
    """An open WhatsApp dialogue on group 7 whose recipient has not written."""
    return Dialogue.objects.create(
        agent_key="support", recipient=Recipient.objects.create(phone_number="+353861230000"),
        channel_group=directory["support"], channel_type="WHATSAPP", platform_id="d-open",
        status=DialogueStatus.OPEN)


# -- send_notification -------------------------------------------------------


@fuzz_settings(200)
@given(to=invalid_numbers)
def test_send_notification_with_an_invalid_number(directory: Any, to: Any) -> None:
    assert_refused(lambda: django_mmc.send_notification(to, "otp", {"code": "1"}), "to")


@fuzz_settings(150)
@given(template=unknown_templates)
def test_send_notification_with_an_unknown_template(directory: Any, template: Any) -> None:
    assert_refused(lambda: django_mmc.send_notification(VALID_NUMBER, template, {}),
                   "template")


@st.composite
def wrong_contexts(draw: Any) -> tuple[str, Any]:
    """A template and a context that is wrong for it."""
    template = draw(st.sampled_from(["otp", "order_shipped", "appointment_reminder"]))
    required = {"otp": ["code"], "order_shipped": ["first_name"],
                "appointment_reminder": ["first_name", "date"]}[template]
    optional = {"order_shipped": ["tracking_url"]}.get(template, [])
    good = {name: draw(st.text(min_size=1, max_size=10).filter(str.strip)) for name in required}
    how = draw(st.sampled_from(["missing", "empty", "unknown", "structured", "not a mapping"]))
    if how == "missing":
        drop = draw(st.sampled_from(required))
        context = {k: v for k, v in good.items() if k != drop}
        if optional and draw(st.booleans()):
            context[optional[0]] = "x"
    elif how == "empty":
        context = {**good, draw(st.sampled_from(required)): draw(st.sampled_from(["", None]))}
    elif how == "unknown":
        name = draw(texts.filter(lambda n: n not in required + optional))
        context = {**good, name: "x"}
    elif how == "structured":
        context = {**good, draw(st.sampled_from(required + optional)): draw(bad_values)}
    else:
        context = draw(st.one_of(st.lists(st.text(max_size=5), max_size=3), texts,
                                 st.integers(), st.tuples(st.text(max_size=3))))
        assume(context not in ([], "", 0, ()))
    return template, context


@fuzz_settings(250)
@given(case=wrong_contexts())
def test_send_notification_with_wrong_parameters(directory: Any, case: tuple[str, Any]) -> None:
    template, context = case
    assert_refused(lambda: django_mmc.send_notification(VALID_NUMBER, template, context),
                   "context")


@fuzz_settings(150)
@given(case=st.one_of(
    st.tuples(st.just(SUPPORT_GROUP_ID), odd_channel_types),
    st.tuples(st.just(SALES_GROUP_ID), odd_channel_types | st.sampled_from(["SMS", "sms"])),
))
def test_send_notification_on_a_channel_type_outside_the_group(
    directory: Any, case: tuple[str, str]
) -> None:
    group, channel_type = case
    assert_refused(lambda: django_mmc.send_notification(
        VALID_NUMBER, "otp", {"code": "1"}, channel_group=group, channel_type=channel_type),
        "channel_type")


@fuzz_settings(60)
@given(channel_type=st.sampled_from(["SMS", "sms", "Sms"]))
def test_send_notification_with_a_template_not_for_the_channel(
    directory: Any, channel_type: str
) -> None:
    # appointment_reminder is WhatsApp only; group 7 has SMS too.
    assert_refused(lambda: django_mmc.send_notification(
        VALID_NUMBER, "appointment_reminder", {"first_name": "A", "date": "1 May"},
        channel_type=channel_type), "channel_type")


@fuzz_settings(100)
@given(group=unknown_groups)
def test_send_notification_to_an_unknown_channel_group(directory: Any, group: Any) -> None:
    assert_refused(lambda: django_mmc.send_notification(
        VALID_NUMBER, "otp", {"code": "1"}, channel_group=group), "channel_group")


@fuzz_settings(100)
@given(to=invalid_numbers, template=unknown_templates)
def test_every_wrong_argument_is_named(directory: Any, to: Any, template: Any) -> None:
    nothing = Nothing()
    with pytest.raises(ValidationError) as caught:
        django_mmc.send_notification(to, template, {"code": "1"})
    assert {"to", "template"} <= set(caught.value.message_dict)
    assert not nothing.changed()


# -- open_dialogue -------------------------------------------------------------


@fuzz_settings(120)
@given(to=invalid_numbers)
def test_open_dialogue_with_an_invalid_number(directory: Any, to: Any) -> None:
    assert_refused(lambda: django_mmc.open_dialogue(to), "to")


@fuzz_settings(80)
@given(agent=texts.filter(lambda a: a.strip() and a not in ("support", "sales")))
def test_open_dialogue_for_an_unknown_agent(directory: Any, agent: str) -> None:
    assert_refused(lambda: django_mmc.open_dialogue(VALID_NUMBER, agent=agent), "agent")


@fuzz_settings(80)
@given(case=st.one_of(st.tuples(st.just(SUPPORT_GROUP_ID), odd_channel_types),
                      st.tuples(st.just(SALES_GROUP_ID), st.just("SMS") | odd_channel_types),
                      st.tuples(unknown_groups, st.just("WHATSAPP"))))
def test_open_dialogue_outside_the_group(directory: Any, case: tuple[Any, str]) -> None:
    group, channel_type = case
    field = "channel_group" if str(group) not in GROUP_KEYS else "channel_type"
    assert_refused(lambda: django_mmc.open_dialogue(
        VALID_NUMBER, channel_group=group, channel_type=channel_type), field)


# -- send_message ----------------------------------------------------------------


@st.composite
def wrong_messages(draw: Any) -> tuple[str, dict[str, Any]]:
    """Arguments of send_message that are wrong, and the field at fault."""
    how = draw(st.sampled_from(["neither", "both", "blank", "too long", "free text",
                                "unknown template", "missing parameter", "channel type",
                                "files"]))
    if how == "neither":
        return "text", {}
    if how == "both":
        return "text", {"text": draw(st.text(min_size=1, max_size=20)), "template": "otp",
                        "context": {"code": "1"}}
    if how == "blank":
        return "text", {"text": draw(st.from_regex(r"\A[ \t\n\r]{1,10}\Z"))}
    if how == "too long":
        return "text", {"text": "x" * draw(st.integers(min_value=4097, max_value=20_000)),
                        "channel_type": "SMS"}
    if how == "free text":  # WhatsApp, and the recipient has not written
        return "text", {"text": draw(st.text(min_size=1, max_size=50).filter(str.strip))}
    if how == "unknown template":
        return "template", {"template": draw(unknown_templates)}
    if how == "missing parameter":
        return "context", {"template": "otp", "context": draw(st.sampled_from([{}, {"code": ""}]))}
    if how == "channel type":
        return "channel_type", {"template": "otp", "context": {"code": "1"},
                                "channel_type": draw(odd_channel_types)}
    return "files", {"text": "see attached", "channel_type": "SMS",
                     "files": [draw(st.sampled_from([None, "", {"name": "x"}, {"id": None},
                                                     3.5, ["9"]]))]}


@fuzz_settings(300)
@given(case=wrong_messages())
def test_send_message_with_wrong_arguments(open_dialogue_row: Dialogue,
                                           case: tuple[str, dict[str, Any]]) -> None:
    field, kwargs = case
    assert_refused(lambda: send_message(open_dialogue_row, **kwargs), field)


@fuzz_settings(40)
@given(status=st.sampled_from([DialogueStatus.CLOSING, DialogueStatus.CLOSED,
                               DialogueStatus.CONFLICT, DialogueStatus.REFUSED,
                               DialogueStatus.ERROR]))
def test_send_message_in_a_dialogue_that_is_not_open(open_dialogue_row: Dialogue,
                                                     status: str) -> None:
    open_dialogue_row.status = status
    assert_refused(lambda: send_message(
        open_dialogue_row, template="otp", context={"code": "1"}), "dialogue")


def test_a_valid_call_does_store_and_queue(open_dialogue_row: Dialogue) -> None:
    """The other side of the properties above: the checks count what a
    valid call adds."""
    nothing = Nothing()
    message = send_message(open_dialogue_row, template="otp", context={"code": "1"})
    assert nothing.changed()
    assert message.direction == Direction.OUTBOUND and message.status == Status.QUEUED
    assert phonenumbers.is_valid_number(phonenumbers.parse(VALID_NUMBER))


# -- names the database cannot hold, and arguments of the wrong type

@pytest.mark.parametrize("kwargs", [
    {"template": "ot\x00p"}, {"template": "\ud800"}, {"channel_group": "7\x00"}])
def test_unprintable_names_are_a_validation_error(directory: Any,
                                                  kwargs: dict[str, Any]) -> None:
    arguments = {"template": "otp", **kwargs}
    field = next(iter(kwargs))
    assert_refused(lambda: django_mmc.send_notification(
        VALID_NUMBER, arguments.pop("template"), {"code": "1"}, **arguments), field)


def test_an_unhashable_agent_is_a_validation_error(directory: Any) -> None:
    assert_refused(lambda: django_mmc.open_dialogue(VALID_NUMBER, agent=["support"]),
                   "agent")
