"""The documentation's code and references, checked against the code.

Every Python snippet the docs show is a real file under ``docs/snippets/``
(pulled in with ``literalinclude``), and is compiled, imported or run here.
The configuration reference must list every key of ``conf.DEFAULTS`` and every
id of ``checks.CHECK_IDS``, and nothing else, so the docs cannot drift.

The Sphinx build itself runs in tox (``tox -e docs``) and CI, not here.
"""

from __future__ import annotations

import ast
import importlib.util
import logging
import re
import runpy
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import get_commands
from django.db.models.signals import post_save
from django.dispatch import Signal
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

import django_mmc
from django_mmc import checks, conf, signals, tasks
from django_mmc.models import Dialogue, Message, Notification, Template, WebhookEvent

# The sandbox's pytest fixtures, for the docs' example test that uses them.
from django_mmc.sandbox.pytest_plugin import (  # noqa: F401
    mmc_sandbox,
    mmc_sandbox_options,
    mmc_sandbox_server,
    mmc_settings,
)
from django_mmc.status import DialogueStatus, Status

DOCS = Path(__file__).resolve().parent.parent / "docs"
SNIPPETS = DOCS / "snippets"
SNIPPET_FILES = sorted(SNIPPETS.glob("*.py"))

SNIPPET_ENV = {
    "MMC_CLIENT_ID": "docs-client",
    "MMC_CLIENT_SECRET": "docs-secret",
    "MMC_ORGANISATION_ID": "1001",
    "MMC_SUPPORT_SECRET": "docs-agent-secret",
}


def load_snippet(name: str) -> ModuleType:
    """Import ``docs/snippets/<name>.py`` as a module of its own."""
    module_name = f"django_mmc_docs_snippet_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, SNIPPETS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def page(name: str) -> str:
    return (DOCS / f"{name}.rst").read_text(encoding="utf-8")


def included_snippets() -> set[str]:
    """Every snippet file some page pulls in with ``literalinclude``."""
    found = set()
    for rst in DOCS.glob("*.rst"):
        found.update(re.findall(r"\.\. literalinclude:: snippets/([\w.]+\.py)", rst.read_text()))
    return found


# -- every snippet ---------------------------------------------------------------


def test_snippets_exist_and_are_all_shown() -> None:
    assert SNIPPET_FILES, "docs/snippets/ holds no snippet"
    shown = included_snippets()
    assert shown == {path.name for path in SNIPPET_FILES}


def test_quickstart_python_is_all_in_snippets() -> None:
    """The quickstart shows Python only through tested snippet files."""
    text = page("quickstart")
    assert not re.search(r"^\.\. code-block:: python", text, re.MULTILINE)
    assert "::\n\n    import" not in text


@pytest.mark.parametrize("path", SNIPPET_FILES, ids=lambda path: path.name)
def test_snippet_compiles(path: Path) -> None:
    compile(path.read_text(encoding="utf-8"), str(path), "exec")


# -- quickstart: settings, urls, Celery, the first notification ----------------------


@pytest.fixture
def settings_snippet(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    for name, value in SNIPPET_ENV.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(SNIPPETS / "settings.py"))


def test_settings_snippet_passes_the_system_checks(settings_snippet: dict[str, Any]) -> None:
    assert {"rest_framework", "django_mmc"} <= set(settings_snippet["INSTALLED_APPS"])
    with override_settings(MMC=settings_snippet["MMC"], CACHES=settings_snippet["CACHES"]):
        messages = checks.check_mmc_settings()
    assert messages == []
    assert settings_snippet["MMC"]["CLIENT_ID"] == SNIPPET_ENV["MMC_CLIENT_ID"]


def test_settings_snippet_celery_values(settings_snippet: dict[str, Any]) -> None:
    assert settings_snippet["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1
    # W002: no retry delay may reach the Redis visibility timeout.
    mmc = {**conf.DEFAULTS, **settings_snippet["MMC"]}
    visibility = settings_snippet["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"]
    assert max(mmc["RETRY_BACKOFF_MAX"], mmc["RETRY_AFTER_MAX"]) < visibility


def test_beat_schedule_is_the_one_in_django_mmc_tasks(settings_snippet: dict[str, Any]) -> None:
    match = re.search(r"CELERY_BEAT_SCHEDULE = (\{.*?\n\s*\})", tasks.__doc__ or "", re.DOTALL)
    assert match, "django_mmc.tasks' docstring no longer shows a beat schedule"
    assert settings_snippet["CELERY_BEAT_SCHEDULE"] == ast.literal_eval(match.group(1))
    registered = {task.name for task in vars(tasks).values() if hasattr(task, "apply_async")}
    for entry in settings_snippet["CELERY_BEAT_SCHEDULE"].values():
        assert entry["task"] in registered


def test_celery_snippet_builds_an_app_from_the_django_settings(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from tests.celery_app import app as suite_app

    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "tests.settings")
    try:
        namespace = runpy.run_path(str(SNIPPETS / "celery_app.py"))
        app = namespace["app"]
        assert app.main == "yourproject"
        assert app.conf.broker_url == settings.CELERY_BROKER_URL
        assert "django_mmc.send_notification" in app.tasks
    finally:
        suite_app.set_current()


def test_urls_snippet_exposes_one_webhook_per_agent() -> None:
    module = load_snippet("urls")
    with override_settings(ROOT_URLCONF=module.__name__):
        assert reverse("django_mmc:webhook", args=["support"]) == "/mmc/webhooks/support/"


class Order:
    """Stands in for the shop's model: the handler only reads attributes."""


def shipped_order(**changes: Any) -> SimpleNamespace:
    values = {"status": "shipped", "phone": "+353861234567", "first_name": "Ann",
              "tracking_url": "https://t.example/1"}
    return SimpleNamespace(**{**values, **changes})


def test_handler_snippet_sends_the_documented_notification(
    directory: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    handlers = load_snippet("handlers")
    real = django_mmc.send_notification
    post_save.connect(handlers.notify_order_shipped, sender=Order, dispatch_uid="docs-test")
    try:
        with mock.patch("django_mmc.send_notification", wraps=real) as spy, \
                django_capture_on_commit_callbacks() as callbacks:
            post_save.send(sender=Order, instance=shipped_order(), created=False,
                           update_fields=frozenset({"status", "tracking_url"}),
                           raw=False, using="default")
    finally:
        post_save.disconnect(sender=Order, dispatch_uid="docs-test")

    spy.assert_called_once_with(
        "+353861234567", "order_shipped",
        {"first_name": "Ann", "tracking_url": "https://t.example/1"},
    )
    notification = Notification.objects.get()
    assert notification.template == directory["order_shipped"]
    assert notification.channel_group == directory["support"]
    assert notification.channel_type == "WHATSAPP"
    assert notification.recipient.phone_number == "+353861234567"
    assert notification.context == {"first_name": "Ann", "tracking_url": "https://t.example/1"}
    assert notification.status == Status.QUEUED
    assert len(callbacks) == 1  # the send is handed to a worker only after the commit


@pytest.mark.parametrize(
    ("order", "created", "update_fields"),
    [
        (shipped_order(), True, None),  # a new order
        (shipped_order(), False, None),  # saved again for another reason
        (shipped_order(), False, frozenset({"phone"})),
        (shipped_order(status="paid"), False, frozenset({"status"})),
    ],
)
def test_handler_snippet_ignores_other_saves(
    directory: dict[str, Any], order: SimpleNamespace, created: bool, update_fields: Any
) -> None:
    handlers = load_snippet("handlers")
    with mock.patch("django_mmc.send_notification") as spy:
        handlers.notify_order_shipped(Order, order, created=created, update_fields=update_fields)
    spy.assert_not_called()
    assert not Notification.objects.exists()


# -- the API, signals and monitoring examples -----------------------------------------


def test_overview_snippet(directory: dict[str, Any]) -> None:
    overview = load_snippet("overview")
    Template.objects.create(platform_id="104", name="welcome",
                            channel_types=["WHATSAPP", "SMS"], parameters=[])
    overview.order_shipped(shipped_order())
    notification = Notification.objects.get()
    assert notification.context == {"first_name": "Ann", "tracking_url": "https://t.example/1"}
    dialogue = overview.welcome("+353861234567")
    assert dialogue.status == DialogueStatus.OPENING
    assert dialogue.messages.get().template.name == "welcome"


def test_api_examples(directory: dict[str, Any], django_capture_on_commit_callbacks: Any
                      ) -> None:
    api = load_snippet("api_examples")
    with django_capture_on_commit_callbacks() as callbacks:
        code = api.send_code("+353861234567", "123456")
    assert (code.template.name, code.channel_type, code.context) == ("otp", "SMS",
                                                                    {"code": "123456"})
    assert (code.priority, code.transactional) == ("now", True)
    assert code.expires_at is not None
    assert len(callbacks) == 1

    assert api.notify_shipped("0861234567", "Ann") is None
    assert Notification.objects.count() == 1  # nothing stored for the bad number
    shipped = api.notify_shipped("+353861234567", "Ann")
    assert shipped.channel_type == "WHATSAPP" and shipped.fallback_channel_types == ["SMS"]

    appointments = [SimpleNamespace(phone="+353861234567", first_name="Ann", date="1 May"),
                    SimpleNamespace(phone="+353871234567", first_name="Bob", date="2 May")]
    tomorrow = timezone.now() + timedelta(days=1)
    assert api.remind(appointments, send_at=tomorrow) == 2
    reminders = Notification.objects.filter(template__name="appointment_reminder")
    assert {n.status for n in reminders} == {Status.SCHEDULED}
    assert {n.priority for n in reminders} == {"low"}
    assert api.call_off(reminders[0]) is True

    dialogue = api.start_support_chat("+353861234567", "Ann")
    assert dialogue.status == DialogueStatus.OPENING
    assert dialogue.agent_key == "support"
    assert dialogue.messages.get().template.name == "order_shipped"
    assert api.answer(dialogue, "Hello!") is None  # the recipient has not written yet
    Message.objects.create(dialogue=dialogue, direction="INBOUND", text="Hi",
                           status=Status.RECEIVED, received_at=timezone.now())
    assert api.answer(dialogue, "Hello!").text == "Hello!"
    assert api.end_support_chat(dialogue).status == DialogueStatus.CLOSING

    Notification.objects.filter(pk=code.pk).update(status=Status.REFUSED)
    code.refresh_from_db()
    again = api.try_again(code)
    assert again.pk != code.pk and again.retry_of == code

    assert api.unsubscribe("+353871234567") is True
    with pytest.raises(ValidationError) as refused:
        django_mmc.send_notification("+353871234567", "order_shipped", {"first_name": "Bob"})
    assert "to" in refused.value.message_dict


def test_receiver_snippet(directory: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    # Connects its receivers; they are weak references, so keep the module alive.
    receivers = runpy.run_path(str(SNIPPETS / "receivers.py"))
    try:
        notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
        Notification.objects.filter(pk=notification.pk).update(
            status=Status.FAILED, failure_code="BLOCKED", failure_detail="Blocked.")
        notification.refresh_from_db()
        dialogue = django_mmc.open_dialogue("+353861234567")
        message = Message.objects.create(dialogue=dialogue, direction="INBOUND", text="Hi")
        with caplog.at_level(logging.INFO, logger="shop.messaging"):
            signals.notification_status_changed.send(
                sender=Notification, notification=notification, old_status="SENT",
                new_status="FAILED")
            signals.message_received.send(sender=Message, message=message, dialogue=dialogue)
            signals.dialogue_closed.send(sender=Dialogue, dialogue=dialogue, closed_by="TIMEOUT")
    finally:
        signals.notification_status_changed.disconnect(dispatch_uid="shop.notification_status")
        signals.message_received.disconnect(dispatch_uid="shop.message_received")
        signals.dialogue_closed.disconnect(dispatch_uid="shop.dialogue_closed")
    assert receivers["logger"].name == "shop.messaging"
    text = caplog.text
    assert "FAILED (BLOCKED: Blocked.)" in text
    assert "wrote in dialogue" in text and ": Hi" in text
    assert "closed by TIMEOUT" in text


def test_monitoring_snippet(directory: dict[str, Any]) -> None:
    health = load_snippet("monitoring").mmc_health
    assert set(health().values()) == {0}
    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "1"})
    Notification.objects.filter(pk=notification.pk).update(status=Status.ERROR)
    WebhookEvent.objects.create(event_id="evt_1", agent_key="support", event_type="x",
                                body="{}", state=WebhookEvent.State.FAILED)
    counts = health()
    assert counts["notifications_error"] == 1
    assert counts["events_failed"] == 1


# The sandbox page's example tests, run as they are shown.
_sandbox_example = load_snippet("example_sandbox_test")
test_docs_sandbox_example_sends = _sandbox_example.test_shipping_notice_reaches_the_platform
test_docs_sandbox_example_scripted = _sandbox_example.test_unreachable_number_is_reported

_webhook_example = load_snippet("example_webhook_test")
mmc_config = _webhook_example.mmc_config
test_docs_webhook_example_delivery = (
    _webhook_example.test_delivery_report_updates_the_notification)
test_docs_webhook_example_signature = _webhook_example.test_a_wrong_signature_is_refused


# -- the references cannot drift ---------------------------------------------------------


def documented(page_name: str, directive: str) -> list[str]:
    return re.findall(rf"^\.\. {directive}:: (\S+)\s*$", page(page_name), re.MULTILINE)


def test_configuration_page_lists_every_setting() -> None:
    text = page("configuration")
    for key in conf.DEFAULTS:
        assert key in text, f"MMC[{key!r}] is not in docs/configuration.rst"
    entries = documented("configuration", "setting")
    assert sorted(entries) == sorted(conf.DEFAULTS)
    assert len(entries) == len(set(entries))


def test_configuration_page_lists_every_check() -> None:
    text = page("configuration")
    for check_id in checks.CHECK_IDS:
        assert check_id in text, f"{check_id} is not in docs/configuration.rst"
    entries = documented("configuration", "check")
    assert sorted(entries) == sorted(checks.CHECK_IDS)


def test_signals_page_lists_every_signal() -> None:
    defined = sorted(name for name, value in vars(signals).items() if isinstance(value, Signal))
    entries = [name.rsplit(".", 1)[-1] for name in documented("signals", "data")]
    assert sorted(entries) == defined


def test_operations_page_lists_every_command_and_task() -> None:
    text = page("operations")
    commands = sorted(name for name, app in get_commands().items() if app == "django_mmc")
    assert commands
    for command in commands:
        assert command in text, f"manage.py {command} is not in docs/operations.rst"
    for task in vars(tasks).values():
        if hasattr(task, "apply_async"):
            assert task.name in text, f"the task {task.name} is not in docs/operations.rst"



def test_the_dialogue_diagram_is_drawn_from_the_code():
    """The committed image is what docs/diagrams/dialogue_life.py draws (the
    docs build redraws it), and it shows every dialogue status."""
    from django_mmc.status import DialogueStatus

    path = Path(__file__).resolve().parent.parent / "docs" / "diagrams" / "dialogue_life.py"
    spec = importlib.util.spec_from_file_location("dialogue_life", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.STATES) == set(DialogueStatus.values)
    assert module.OUTPUT.read_text(encoding="utf-8") == module.draw()
