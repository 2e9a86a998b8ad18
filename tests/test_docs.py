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
import os
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
from django_mmc.models import Dialogue, Message, Notification, WebhookEvent

# The sandbox's pytest fixtures, for the docs' example test that uses them.
from django_mmc.sandbox.pytest_plugin import (  # noqa: F401
    mmc_sandbox,
    mmc_sandbox_options,
    mmc_sandbox_server,
    mmc_settings,
)
from django_mmc.status import DialogueStatus, Status

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
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


def test_settings_snippet_runs_with_no_environment_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pasted as it is, the settings point at the sandbox with its credentials."""
    for name in [*SNIPPET_ENV, "MMC_BASE_URL", "MMC_OAUTH_BASE_URL", "REDIS_URL",
                 "CELERY_BROKER_URL", "MMC_SUPPORT_AGENT_ID", "MMC_DEFAULT_CHANNEL_GROUP"]:
        monkeypatch.delenv(name, raising=False)
    namespace = runpy.run_path(str(SNIPPETS / "settings.py"))
    mmc = namespace["MMC"]
    assert mmc["BASE_URL"] == "http://127.0.0.1:8765"
    assert mmc["OAUTH_BASE_URL"] == "http://127.0.0.1:8765/oauth2/v2.0"
    assert mmc["CLIENT_ID"] == "sandbox-client"
    assert mmc["AGENTS"]["support"] == {"ID": "17", "WEBHOOK_SECRETS": ["agent-17-secret"]}
    with override_settings(MMC=mmc, CACHES=namespace["CACHES"],
                           DATABASES={"default": namespace["DATABASES"]["default"]}):
        assert checks.check_mmc_settings() == []  # W006 included: SQLite is set up


def test_settings_snippet_names_the_missing_variable_off_the_sandbox(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from django.core.exceptions import ImproperlyConfigured

    for name in SNIPPET_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MMC_BASE_URL", "https://prod-api.example.com")
    with pytest.raises(ImproperlyConfigured, match="MMC_CLIENT_ID"):
        runpy.run_path(str(SNIPPETS / "settings.py"))


def test_install_lines_name_the_distribution_setup_cfg_declares() -> None:
    """Every ``pip install`` of this project in the README and the docs names
    the distribution that setup.cfg builds (an unrelated project owns the old
    name on the public index)."""
    import configparser

    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    name = parser["metadata"]["name"]
    extras = set(parser["options.extras_require"])
    texts = {"README.md": (ROOT / "README.md").read_text(encoding="utf-8")}
    texts |= {f"docs/{p.name}": p.read_text(encoding="utf-8") for p in DOCS.glob("*.rst")}
    found = 0
    for where, text in texts.items():
        for match in re.finditer(r"pip install\s+([\"']?)([A-Za-z0-9_.-]+)(\[[^\]]*\])?\1", text):
            requirement, wanted = match.group(2), match.group(3)
            ours = requirement.lower().startswith(("django-messagemycustomer", "django-mmc",
                                                   "django_mmc", "messagemycustomer"))
            if not ours:
                continue  # other packages (Django, psycopg...) and pip's options
            found += 1
            assert requirement == name, f"{where}: pip install {requirement}, not {name}"
            for extra in (wanted or "[]").strip("[]").split(","):
                assert not extra or extra.strip() in extras, f"{where}: no extra {extra!r}"
    assert found >= 3, "the README, the quickstart and the installation page show the install"


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


# -- the quickstart, followed as written ---------------------------------------------


def console_commands(name: str) -> list[str]:
    """Every command the page shows in a ``console`` block, in order."""
    blocks = re.findall(r"\.\. code-block:: console\n\n((?:   .*\n|[ \t]*\n)+)", page(name))
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def quickstart_files() -> list[tuple[str, str, bool]]:
    """(path in the project, text, append?) for each file the quickstart shows,
    placed where its first line says."""
    files = []
    for name in re.findall(r"\.\. literalinclude:: snippets/([\w.]+\.py)", page("quickstart")):
        text = (SNIPPETS / name).read_text(encoding="utf-8")
        first = text.splitlines()[0]
        where = re.match(r"# ([\w/]+\.py)", first)
        assert where, f"{name} does not say where it goes: {first!r}"
        append = "add this" in first or where.group(1).endswith("__init__.py")
        files.append((where.group(1), text, append))
    return files


def test_the_quickstart_shows_a_file_for_every_step() -> None:
    paths = [path for path, _text, _append in quickstart_files()]
    assert paths == ["yourproject/settings.py", "yourproject/urls.py", "yourproject/celery.py",
                     "yourproject/__init__.py", "shop/models.py", "shop/handlers.py",
                     "shop/apps.py"]
    commands = console_commands("quickstart")
    assert 'pip install "django-messagemycustomer[redis]"' in commands
    assert any(c.startswith("python -m django_mmc.sandbox --agent 17=agent-17-secret@")
               for c in commands)


@pytest.mark.packaging
@pytest.mark.skipif(os.environ.get("DJANGO_MMC_TEST_PACKAGING") != "1",
                    reason="builds a new project and runs five processes: run with "
                           "DJANGO_MMC_TEST_PACKAGING=1 (the matrix's main leg does)")
def test_the_quickstart_as_written_reaches_read(tmp_path: Path) -> None:
    """A new project from the page's own files and commands (in this
    virtualenv, where the package is installed): the sandbox, the dev server,
    a worker, the directory sync, one shipped order, its notification READ,
    and no webhook event failed."""
    import shutil
    import signal
    import socket
    import subprocess
    import time

    from django.conf import settings as test_settings

    from tests import broker
    from tests.helpers import free_port

    def last_line(output: str) -> str:
        # Django's shell may first say how many objects it imported.
        return (output.strip().splitlines() or [""])[-1].strip()

    site_port, sandbox_port = free_port(), free_port()
    commands = console_commands("quickstart")
    project = tmp_path / "site"
    project.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "MMC_", "PYTHONPATH"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        # The page's defaults, moved to free ports and the test run's Redis.
        MMC_BASE_URL=f"http://127.0.0.1:{sandbox_port}",
        REDIS_URL=test_settings.TEST_REDIS_URL,
        CELERY_BROKER_URL=test_settings.TEST_REDIS_URL,
    )

    def as_here(command: str) -> str:
        return command.replace("127.0.0.1:8000", f"127.0.0.1:{site_port}")

    def page_command(prefix: str) -> str:
        [found] = [c for c in commands if c.startswith(prefix)]
        return as_here(found)

    def run(command: str, timeout: float = 120) -> str:
        result = subprocess.run(command, shell=True, cwd=project, env=env, timeout=timeout,
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result.stdout

    processes: list[tuple[str, subprocess.Popen, Path]] = []
    seen: list[str] = []

    def start(name: str, command: str) -> None:
        log = tmp_path / f"{name}.log"
        with log.open("wb") as output:
            processes.append((name, subprocess.Popen(
                command, shell=True, cwd=project, env=env, stdout=output,
                stderr=subprocess.STDOUT, start_new_session=True), log))

    def logs() -> str:
        return "\n".join(f"--- {name}:\n{log.read_text(errors='replace')[-3000:]}"
                         for name, _process, log in processes)

    def wait_for(what: str, check: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            for name, process, _log in processes:
                assert process.poll() is None, f"{name} exited while waiting for {what}\n{logs()}"
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what} (the page's command printed "
                             f"{seen[-1:]})\n{logs()}")

    run(page_command("django-admin startproject"))
    run(page_command("python manage.py startapp"))
    for path, text, append in quickstart_files():
        target = project / path
        if append:
            with target.open("a", encoding="utf-8") as handle:
                handle.write("\n\n" + text)
        else:
            target.write_text(text, encoding="utf-8")
    run(page_command("python manage.py makemigrations"))
    run(page_command("python manage.py migrate"))
    broker.purge("celery")  # the project's queue: Celery's default
    try:
        start("sandbox", page_command("python -m django_mmc.sandbox")
              + f" --port {sandbox_port}")
        start("runserver", page_command("python manage.py runserver") + " --noreload")
        start("worker", page_command("celery -A yourproject worker"))
        assert any(c.startswith("celery -A yourproject beat") for c in commands)

        def answers(port: int) -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for("the sandbox and the dev server", lambda: answers(sandbox_port)
                 and answers(site_port), 60)
        wait_for("the worker", lambda: " ready." in (tmp_path / "worker.log").read_text(
            errors="replace"), 60)
        run(page_command("python manage.py mmc_sync_directory"))
        run(page_command("python manage.py shell -c \"from shop.models import Order"))
        status_command = page_command("python manage.py shell -c \"from django_mmc.models")
        wait_for("the notification to be READ",
                 lambda: seen.append(last_line(run(status_command))) or seen[-1] == "READ", 90)
        failed = run("python manage.py shell -c \"from django_mmc.models import WebhookEvent; "
                     "print(WebhookEvent.objects.filter(state='FAILED').count(), "
                     "WebhookEvent.objects.count())\"")
        failed = last_line(failed).split()
        assert failed[0] == "0" and int(failed[1]) >= 3, f"events: {failed}\n{logs()}"
    finally:
        for _name, process, _log in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process, _log in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
        shutil.rmtree(project, ignore_errors=True)
