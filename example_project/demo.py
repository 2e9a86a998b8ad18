#!/usr/bin/env python3
"""The django_mmc demo: the example shop, the MMC sandbox and Celery, in one command.

    make demo                              # or: python3 example_project/demo.py
    make demo-check                        # or: python3 example_project/demo.py --check

Needs only Python 3.10+. Unless the running interpreter already has
django_mmc, it creates ``.venv`` at the repository root (if absent),
installs the package into it with ``pip install -e .`` and runs itself again
from there. Then it:

1. migrates the SQLite database (``example_project/.demo/``);
2. starts the MMC sandbox (``python -m django_mmc.sandbox``), its agents'
   webhooks pointed at the dev server, statuses moving every 1.5 s;
3. creates the superuser ``admin`` with a new random password, syncs
   channel groups and templates from the sandbox, and starts the shop
   afresh (sample orders; the sandbox remembers nothing of an earlier run,
   so neither does the demo);
4. starts a Celery worker and beat (filesystem broker, no server needed);
5. starts the Django dev server on 127.0.0.1:8000 (``DEMO_PORT``; the
   sandbox port is ``DEMO_SANDBOX_PORT``, default 8765; the seconds between
   status steps ``DEMO_PROGRESS_INTERVAL``, default 1.5);

and prints the admin URL, the login and what to try. Ctrl-C stops
everything. Logs are in ``example_project/.demo/logs/``.

``--check`` runs the same stack unattended on free ports, in a temporary
directory (a developer's demo data is never touched), walks through the
scenario (send a notification, ship an order, open a dialogue, receive the
customer's reply, answer, close) printing PASS or FAIL for each step, and
exits non-zero if any step failed.

Only the standard library is imported at the top: this file must run before
anything is installed.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "example_project"
VENV = ROOT / ".venv"
WINDOWS = os.name == "nt"

#: What must be importable for the demo to run from the current interpreter.
REQUIRED_MODULES = ("django", "celery", "rest_framework_json_api", "phonenumbers",
                    "requests_oauthlib", "django_mmc")

#: Environment variables the check mode never takes from the caller, so it
#: always runs on its own SQLite file, filesystem broker and sandbox.
ISOLATED_VARIABLES = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_CACHE_URL",
                      "DJANGO_SETTINGS_MODULE", "DEMO_DATA_DIR")

#: The sandbox's fake credentials (django_mmc/sandbox/defaults.py).
SANDBOX_AGENTS = {"support": ("17", "agent-17-secret"), "sales": ("18", "agent-18-secret")}


def say(text: str = "") -> None:
    print(text, flush=True)


# -- 1. the environment -------------------------------------------------------------------


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if WINDOWS else "bin/python")


def has_requirements(python: str | Path) -> bool:
    code = ("import importlib.util, sys; "
            f"sys.exit(0 if all(importlib.util.find_spec(m) for m in {REQUIRED_MODULES!r}) "
            "else 1)")
    # Run from example_project/ so a django_mmc that is merely in the current
    # directory (the repository root) does not count as installed.
    result = subprocess.run([str(python), "-c", code], cwd=PROJECT, capture_output=True)
    return result.returncode == 0


def quiet_pip(python: Path, *args: str) -> None:
    """pip, silent unless it fails: then its whole output, and the demo stops."""
    result = subprocess.run(
        [str(python), "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        say(result.stdout)
        sys.exit(f"pip {' '.join(args)} failed (exit {result.returncode}); its output is above.")


def bootstrap(argv: list[str]) -> None:
    """Make sure we run on an interpreter with django_mmc installed: this one,
    or ``.venv`` (created and ``pip install -e .``-ed if needed)."""
    if sys.version_info < (3, 10):  # noqa: UP036 - this runs on any python3 first
        sys.exit("The demo needs Python 3.10 or newer.")
    if has_requirements(sys.executable):
        return
    python = venv_python()
    if os.environ.get("DEMO_BOOTSTRAPPED") == "1":
        sys.exit(f"{python} still cannot import {', '.join(REQUIRED_MODULES)} after "
                 "installing; see pip's output above.")
    if not python.exists():
        say(f"Creating a virtualenv in {VENV} ...")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not has_requirements(python):
        say("Installing django_mmc into it (pip install -e .) ...")
        # An older pip cannot install a pyproject-only project in editable mode.
        quiet_pip(python, "install", "--upgrade", "pip")
        quiet_pip(python, "install", "-e", str(ROOT))
    env = {**os.environ, "DEMO_BOOTSTRAPPED": "1"}
    args = [str(python), str(Path(__file__).resolve()), *argv]
    if WINDOWS:  # no real exec on Windows: run and pass the exit status on
        sys.exit(subprocess.run(args, env=env).returncode)
    os.execve(str(python), args, env)


# -- 2. processes ----------------------------------------------------------------------------


class Child:
    """A subprocess in its own process group (so Ctrl-C reaches only us, and
    we stop it, with whatever it started, in order), logging to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        log = self.log_path.open("ab")
        kwargs: dict[str, Any] = {"start_new_session": True}
        if WINDOWS:
            kwargs = {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
        self.process = subprocess.Popen(self.args, cwd=PROJECT, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        **kwargs)
        log.close()  # the child has its own copy
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = 15) -> None:
        """Terminate (warm shutdown for Celery), wait, then kill if needed."""
        if self.process is None or self.process.poll() is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL if not WINDOWS else signal.SIGTERM)
            self.process.wait(5)
        if not WINDOWS:
            # Whatever it started and left behind (a reloader, a pool).
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def _signal(self, sig: int) -> None:
        assert self.process is not None
        try:
            if WINDOWS:
                self.process.terminate()
            else:
                os.killpg(self.process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        if not WINDOWS:
            # As the servers will bind: a port in TIME_WAIT from a previous
            # run is free to them.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def http_get(url: str, timeout: float = 2) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - local URLs
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return 0


def wait_until(what: str, predicate: Callable[[], Any], timeout: float,
               child: Child | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if child is not None and not child.alive:
            raise RuntimeError(f"{child.name} exited while waiting for {what}:\n{child.tail()}")
        time.sleep(0.1)
    detail = f":\n{child.tail()}" if child is not None else ""
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


class Demo:
    """The whole stack: configuration, children, and their order."""

    def __init__(self, *, check: bool) -> None:
        self.check = check
        if check:
            self.data_dir = Path(tempfile.mkdtemp(prefix="django-mmc-demo-check-"))
            self.web_port, self.sandbox_port = free_port(), free_port()
            self.progress_interval = 0.3
        else:
            self.data_dir = PROJECT / ".demo"
            self.web_port = int(os.environ.get("DEMO_PORT") or 8000)
            self.sandbox_port = int(os.environ.get("DEMO_SANDBOX_PORT") or 8765)
            self.progress_interval = float(os.environ.get("DEMO_PROGRESS_INTERVAL") or 1.5)
        self.log_dir = self.data_dir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.web_url = f"http://127.0.0.1:{self.web_port}"
        self.sandbox_url = f"http://127.0.0.1:{self.sandbox_port}"
        self.password = secrets.token_urlsafe(12)
        self.python = sys.executable
        self.children: list[Child] = []
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.check:
            for name in ISOLATED_VARIABLES:
                env.pop(name, None)
        # The demo plays against its own sandbox: every MMC_* setting is the
        # sandbox's, whatever the shell says.
        for name in [n for n in env if n.startswith("MMC_")]:
            env.pop(name)
        env.update({
            "DJANGO_SETTINGS_MODULE": "example_project.settings",
            "DEMO_DATA_DIR": str(self.data_dir),
            "MMC_BASE_URL": self.sandbox_url,
            "SHOP_SANDBOX_CONTROLS": "1",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")])),
        })
        if self.check:
            env["DEMO_BROKER_POLLING_INTERVAL"] = "0.1"
        return env

    # -- steps of the start-up ------------------------------------------------------------

    def manage(self, *args: str, env: dict[str, str] | None = None) -> None:
        result = subprocess.run([self.python, "manage.py", *args], cwd=PROJECT,
                                env=env or self.env, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}"
                               f"{result.stderr}")

    def spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.env, self.log_dir).start()
        self.children.append(child)
        return child

    def start(self) -> None:
        if not self.check:
            for port, variable in ((self.web_port, "DEMO_PORT"),
                                   (self.sandbox_port, "DEMO_SANDBOX_PORT")):
                if not port_is_free(port):
                    raise RuntimeError(f"Port {port} is in use: set {variable} to a free one "
                                       f"(e.g. {variable}={port + 1} make demo).")
        say(f"[demo] data in {self.data_dir}")
        # The sandbox starts empty every time: so do the queue and the cache
        # (messages about an earlier run's rows, its access token).
        if "CELERY_BROKER_URL" not in self.env:
            shutil.rmtree(self.data_dir / "broker", ignore_errors=True)
        if "REDIS_CACHE_URL" not in self.env:
            shutil.rmtree(self.data_dir / "cache", ignore_errors=True)
        say("[demo] migrating the database ...")
        self.manage("migrate", "--noinput")

        say(f"[demo] starting the MMC sandbox on {self.sandbox_url} ...")
        agents = []
        for key, (agent_id, secret) in SANDBOX_AGENTS.items():
            agents += ["--agent", f"{agent_id}={secret}@{self.web_url}/mmc/webhooks/{key}/"]
        sandbox = self.spawn("sandbox", [
            self.python, "-m", "django_mmc.sandbox", "--port", str(self.sandbox_port),
            "--progress-interval", str(self.progress_interval), *agents])
        wait_until("the sandbox", lambda: http_get(self.sandbox_url + "/") == 200, 30, sandbox)

        say("[demo] creating the superuser, syncing the directory from the sandbox ...")
        self.manage("demo_setup", "--fresh-start",
                    env={**self.env, "DEMO_ADMIN_PASSWORD": self.password})

        say("[demo] starting the Celery worker and beat ...")
        worker = self.spawn("worker", [
            self.python, "-m", "celery", "-A", "example_project", "worker",
            "--pool", "threads", "--concurrency", "4", "--loglevel", "info",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", f"demo-{os.getpid()}@%h"])
        self.spawn("beat", [self.python, "-m", "celery", "-A", "example_project", "beat",
                            "--loglevel", "info"])

        say(f"[demo] starting the dev server on {self.web_url} ...")
        # --noreload: one process, stopped cleanly with the others.
        web = self.spawn("web", [self.python, "manage.py", "runserver",
                                 f"127.0.0.1:{self.web_port}", "--noreload"])
        wait_until("the Celery worker", lambda: " ready." in worker.output(), 60, worker)
        wait_until("the dev server", lambda: http_get(self.web_url + "/admin/login/") == 200,
                   60, web)

    def stop(self) -> None:
        # The web server first (no new work), the sandbox last (webhooks in flight).
        for child in sorted(self.children, key=lambda c: ["web", "beat", "worker",
                                                           "sandbox"].index(c.name)):
            child.stop()

    def dead_child(self) -> Child | None:
        return next((c for c in self.children if not c.alive), None)

    # -- the interactive banner ---------------------------------------------------------------

    def banner(self) -> str:
        number = "+353861234567"
        payload = json.dumps({"number": number, "text": "Hi, where is my order?",
                              "channelGroup": "7", "channelType": "WHATSAPP"})
        curl = (f"curl -X POST {self.sandbox_url}/_sandbox/reply "
                f"-H 'Content-Type: application/json' -d '{payload}'")
        prefix = ""
        if self.sandbox_port != 8765:
            prefix = f"MMC_BASE_URL={self.sandbox_url} "
        python = Path(self.python)
        try:
            python = python.relative_to(ROOT)
        except ValueError:
            pass
        manage = f"{prefix}{python} example_project/manage.py"
        return f"""
==============================================================================
 django_mmc demo is running
==============================================================================
 Admin     {self.web_url}/admin/
 Login     admin / {self.password}
 Sandbox   {self.sandbox_url}  (the stand-in MMC platform; a status step every
           {self.progress_interval:g} s, webhooks to {self.web_url}/mmc/webhooks/...)
 Logs      {self.log_dir}/{{web,worker,beat,sandbox}}.log

 Things to try
 1. Send a notification: Message My Customer > Notifications > SEND NOTIFICATION.
    Template order_shipped, number {number}, first_name Ann. Reload the page
    and watch Accepted > Sent > Delivered > Read arrive through the webhooks.
    +15005550001 never gets anything: its notification fails; select it and
    use the "Retry" action.
 2. Ship an order: Shop > Orders, select one, action "Mark as shipped".
    shop/signals.py sends order_shipped when the change commits.
 3. Talk: select the order again, action "Open a WhatsApp dialogue with the
    customer" (or Dialogues > OPEN DIALOGUE). Make the customer write back:
      {curl}
    or: {manage} demo_reply {number} Hi, where is my order?
    or the order action "Sandbox: make the customer write to us".
    The message shows in the dialogue's transcript: reply there, then Close.

 Ctrl-C stops everything.
==============================================================================
"""

    def run_interactive(self) -> int:
        say(self.banner())
        while True:
            dead = self.dead_child()
            if dead is not None:
                say(f"[demo] {dead.name} stopped unexpectedly; its last lines:\n{dead.tail()}")
                return 1
            time.sleep(0.5)


# -- 3. the unattended check ----------------------------------------------------------------------


class AdminSession:
    """A logged-in admin user over real HTTP (cookies and CSRF tokens)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _csrf(self) -> str:
        return next((c.value for c in self.jar if c.name == "csrftoken"), "")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.base_url + path, timeout=20) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def post(self, path: str, data: dict[str, str]) -> tuple[int, str]:
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self._csrf()}).encode()
        request = urllib.request.Request(self.base_url + path, data=body, method="POST")
        try:
            with self.opener.open(request, timeout=20) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def login(self, username: str, password: str) -> None:
        self.get("/admin/login/")
        status, html = self.post("/admin/login/?next=/admin/",
                                 {"username": username, "password": password, "next": "/admin/"})
        if status != 200 or "logout" not in html.lower():
            raise AssertionError(f"login failed (HTTP {status})")


class Checker:
    """Runs named steps, printing PASS or FAIL with the time each took."""

    def __init__(self) -> None:
        self.results: list[tuple[str, bool]] = []

    def step(self, name: str, func: Callable[[], str | None], *, needs: tuple[str, ...] = ()
             ) -> bool:
        failed_needs = [n for n, ok in self.results if n in needs and not ok]
        started = time.monotonic()
        if failed_needs:
            ok, detail = False, f"skipped: {failed_needs[0]!r} failed"
        else:
            try:
                detail = func() or ""
                ok = True
            except Exception as error:  # noqa: BLE001 - any failure is this step's FAIL
                ok, detail = False, f"{type(error).__name__}: {error}"
        took = time.monotonic() - started
        say(f"{'PASS' if ok else 'FAIL'}  {name} ({took:.1f}s){' - ' + detail if detail else ''}")
        self.results.append((name, ok))
        return ok

    @property
    def passed(self) -> bool:
        return all(ok for _, ok in self.results)


def poll(what: str, func: Callable[[], Any], timeout: float = 30) -> Any:
    """``func()`` once it is truthy; a TimeoutError saying what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = func()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:.0f}s")
        time.sleep(0.2)


def run_check(demo: Demo) -> bool:
    """The scenario, against the running stack, from this process's own
    Django (same settings and database as the children)."""
    os.environ.update(demo.env)
    sys.path.insert(0, str(PROJECT))
    import django

    django.setup()
    from django.db import transaction
    from shop.models import Order

    import django_mmc
    from django_mmc.models import ChannelGroup, Message, Notification, Template
    from django_mmc.status import DialogueStatus, Direction, Status

    check = Checker()
    admin = AdminSession(demo.web_url)
    state: dict[str, Any] = {}

    def fresh(obj: Any) -> Any:
        obj.refresh_from_db()
        return obj

    def reaches(obj: Any, statuses: tuple[str, ...], timeout: float = 30) -> str:
        try:
            poll(f"{'/'.join(statuses)} for {obj}", lambda: fresh(obj).status in statuses,
                 timeout)
        except TimeoutError as error:
            raise TimeoutError(f"{error}; it is {obj.status}") from None
        return obj.status

    def login() -> str:
        admin.login("admin", demo.password)
        return "logged in as admin"

    def directory() -> str:
        names = set(Template.objects.filter(is_active=True).values_list("name", flat=True))
        expected = {"order_shipped", "otp", "appointment_reminder", "welcome", "order_confirmed"}
        assert expected <= names, f"templates: {sorted(names)}"
        groups = ChannelGroup.objects.filter(is_active=True).count()
        assert groups == 2, f"{groups} channel groups"
        return f"{groups} channel groups, {len(names)} templates"

    def notification() -> str:
        sent = django_mmc.send_notification("+353861110001", "welcome")
        try:
            return reaches(sent, (Status.READ,), timeout=25)
        except TimeoutError:
            if fresh(sent).status == Status.DELIVERED:
                return "DELIVERED (READ not reported yet)"
            raise

    def order_shipped() -> str:
        order = Order.objects.create(customer_name="Casey Check", phone="+353861110002")
        with transaction.atomic():  # the notification is sent when this commits
            order.status = Order.Status.SHIPPED
            order.tracking_url = "https://tracking.example.com/check"
            order.save()
        sent = poll("order_shipped notification", lambda: Notification.objects.filter(
            recipient__phone_number=order.phone, template__name="order_shipped").first(), 10)
        return reaches(sent, (Status.DELIVERED, Status.READ))

    def admin_lists() -> str:
        status, html = admin.get("/admin/django_mmc/notification/")
        assert status == 200, f"HTTP {status}"
        assert "mmc-status-read" in html or "mmc-status-delivered" in html, "no status badge"
        assert demo.password not in html
        return "notifications listed with their status badges"

    def open_dialogue() -> str:
        dialogue = django_mmc.open_dialogue("+353861110003", agent="support",
                                            channel_group="7", channel_type="WHATSAPP")
        state["dialogue"] = dialogue
        return reaches(dialogue, (DialogueStatus.OPEN,))

    def customer_replies() -> str:
        dialogue = state["dialogue"]
        payload = json.dumps({"number": "+353861110003", "text": "Hi, where is my order?",
                              "channelGroup": "7", "channelType": "WHATSAPP"}).encode()
        request = urllib.request.Request(f"{demo.sandbox_url}/_sandbox/reply", data=payload,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - local
            assert answer.status == 201, f"sandbox answered {answer.status}"
        poll("inbound message", lambda: Message.objects.filter(
            dialogue=dialogue, direction=Direction.INBOUND,
            text="Hi, where is my order?").exists())
        return "received in the dialogue"

    def we_reply() -> str:
        dialogue = state["dialogue"]
        status, _ = admin.post(f"/admin/django_mmc/dialogue/{dialogue.pk}/reply/",
                               {"text": "It left our warehouse today."})
        assert status == 200, f"reply view answered HTTP {status}"
        message = poll("our reply stored", lambda: Message.objects.filter(
            dialogue=dialogue, direction=Direction.OUTBOUND,
            text="It left our warehouse today.").first(), 5)
        return reaches(message, (Status.DELIVERED, Status.READ))

    def transcript() -> str:
        status, html = admin.get(f"/admin/django_mmc/dialogue/{state['dialogue'].pk}/change/")
        assert status == 200, f"HTTP {status}"
        assert html.index("Hi, where is my order?") < html.index("It left our warehouse today.")
        return "both messages, in order"

    def close() -> str:
        dialogue = state["dialogue"]
        status, _ = admin.post(f"/admin/django_mmc/dialogue/{dialogue.pk}/close/", {})
        assert status == 200, f"close view answered HTTP {status}"
        return reaches(dialogue, (DialogueStatus.CLOSED,))

    synced = "directory synced from the sandbox"
    check.step("admin login", login)
    check.step(synced, directory)
    check.step("notification sent and READ", notification, needs=(synced,))
    check.step("order shipped, its notification DELIVERED", order_shipped, needs=(synced,))
    check.step("admin lists the notifications", admin_lists, needs=("admin login",))
    check.step("dialogue opened", open_dialogue, needs=(synced,))
    check.step("customer reply received", customer_replies, needs=("dialogue opened",))
    check.step("reply sent from the admin and DELIVERED", we_reply,
               needs=("dialogue opened", "admin login"))
    check.step("admin transcript shows the conversation", transcript,
               needs=("customer reply received", "reply sent from the admin and DELIVERED"))
    check.step("dialogue closed from the admin", close, needs=("dialogue opened", "admin login"))
    passed = sum(ok for _, ok in check.results)
    say(f"{passed}/{len(check.results)} steps passed")
    return check.passed


# -- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="run the scenario unattended on free ports; exit non-zero on failure")
    args = parser.parse_args(argv)
    bootstrap(argv)

    def on_sigterm(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, `kill` and a closed terminal all stop the stack cleanly. SIGINT
    # is set explicitly: a shell starting us in the background ignores it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, on_sigterm)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_sigterm)
    demo = Demo(check=args.check)
    started = time.monotonic()
    status = 1
    try:
        demo.start()
        if args.check:
            say(f"[demo] stack up in {time.monotonic() - started:.1f}s; checking ...")
            status = 0 if run_check(demo) else 1
        else:
            status = demo.run_interactive()
    except KeyboardInterrupt:
        say("\n[demo] stopping ...")
        status = 0
    except RuntimeError as error:
        say(f"[demo] {error}")
        status = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip cleanup
        demo.stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if args.check:
            if status == 0:
                shutil.rmtree(demo.data_dir, ignore_errors=True)
            else:
                for child in demo.children:
                    say(f"\n--- last lines of {child.name} ({child.log_path}) ---\n"
                        f"{child.tail(40)}")
                say(f"\n[demo] logs kept in {demo.log_dir}")
            say(f"[demo] {'done' if status == 0 else 'FAILED'} in "
                f"{time.monotonic() - started:.1f}s")
        else:
            say("[demo] stopped.")
    return status


if __name__ == "__main__":
    sys.exit(main())

