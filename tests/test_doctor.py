"""``manage.py mmc_doctor`` against real sandboxes on loopback: with the wrong
``CONTRACT`` it reports exactly the items where the platform differs and
proposes the override that fixes them; with that override, or the right
dialect, every item is ok. Tokens and secrets never appear in its output."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from io import StringIO
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import CommandError, call_command

from django_mmc.dialect import DIALECTS, Dialect, load_dialect
from django_mmc.doctor import DIFFERS, NOT_AVAILABLE, OK, Doctor, Report
from django_mmc.sandbox import Sandbox

#: Every item the doctor reads on a platform with one notification and no
#: open dialogue, for the two agents the sandbox plays.
READ_ITEMS = {
    "token_url", "organisation_prefix", "channel_groups_path", "type_channel_groups",
    "type_channels", "templates_path", "type_templates", "pagination", "notifications_path",
    "type_notifications", "filter_style", "idempotency_key_filter", "notification_path",
    "statuses", "dialogues_path [support]", "dialogues_path [sales]",
}
SITE_ITEMS = {"secrets [support]", "secrets [sales]", "webhook [support]", "webhook [sales]"}
TO = "+353861234567"
PARTIAL = {"filter_style": "operators"}


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site_url() -> Iterator[str]:
    """This site (tests/urls.py, with django_mmc's webhooks) served on loopback."""
    server: WSGIServer = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[str, Sandbox]]:
    """One sandbox per dialect it plays, on loopback."""
    started = {
        "default": Sandbox(rate_limit=None, progress_interval=0.02),
        "filter-operators": Sandbox(dialect="filter-operators", rate_limit=None,
                                    progress_interval=0.02),
        "partial": Sandbox(dialect=PARTIAL, rate_limit=None, progress_interval=0.02),
    }
    for sandbox in started.values():
        sandbox.start()
    try:
        yield started
    finally:
        for sandbox in started.values():
            sandbox.stop()


def configure(settings: Any, sandbox: Sandbox, contract: Any) -> dict[str, Any]:
    """``settings.MMC`` pointing at ``sandbox`` with ``CONTRACT`` = ``contract``."""
    mmc = sandbox.mmc_settings()
    mmc.pop("CONTRACT", None)
    if contract is not None:
        mmc["CONTRACT"] = contract
    settings.MMC = mmc
    return mmc


def fresh(sandboxes: dict[str, Sandbox], plays: str, settings: Any) -> Sandbox:
    """The sandbox playing ``plays``, reset, with one notification sent in
    its own dialect (so the notification items can be read)."""
    sandbox = sandboxes[plays]
    sandbox.reset()
    configure(settings, sandbox, PARTIAL if plays == "partial" else plays)
    sent = Doctor().send_test(TO, "order_shipped", context={"first_name": "Ann"},
                              timeout=5, interval=0.02)
    assert sent.state == OK, sent
    return sandbox


def run(settings: Any, sandbox: Sandbox, contract: Any, site_url: str) -> Report:
    configure(settings, sandbox, contract)
    return Doctor(site_url=site_url).run()


def assert_all_ok(report: Report) -> None:
    assert {f.item: f.seen for f in report.findings if f.state != OK} == {}
    assert set(report.states()) == READ_ITEMS | SITE_ITEMS
    assert report.proposal == {}


@pytest.mark.parametrize(("plays", "configured"), [
    ("filter-operators", None), ("default", "filter-operators")])
def test_the_wrong_contract_differs_in_exactly_the_items_and_the_proposal_fixes_them(
        sandboxes: dict[str, Sandbox], settings: Any, site_url: str, plays: str,
        configured: str | None) -> None:
    sandbox = fresh(sandboxes, plays, settings)
    report = run(settings, sandbox, configured, site_url)

    played, wrong = DIALECTS[plays], load_dialect(configured)
    assert {f.item for f in report.differs} == READ_ITEMS
    assert {f.item for f in report.findings if f.state == OK} == SITE_ITEMS
    proposal = report.proposal
    keys = {item.split(" ")[0] for item in READ_ITEMS}
    assert proposal == {key: (dict(getattr(played, key)) if key == "statuses"
                              else getattr(played, key)) for key in keys}
    assert all(getattr(wrong, key) != value for key, value in proposal.items())

    # The proposal, merged into the wrong dialect, is right; so is the played one.
    assert_all_ok(run(settings, sandbox, {"base": wrong.name, **proposal}, site_url))
    assert_all_ok(run(settings, sandbox, plays, site_url))


def test_a_platform_that_differs_in_one_item_differs_in_that_item_only(
        sandboxes: dict[str, Sandbox], settings: Any, site_url: str) -> None:
    sandbox = fresh(sandboxes, "partial", settings)
    report = run(settings, sandbox, None, site_url)
    assert {f.item for f in report.differs} == {"filter_style"}
    [finding] = report.differs
    assert "400" in finding.seen and "filter[id]" in finding.seen
    assert report.proposal == PARTIAL
    assert_all_ok(run(settings, sandbox, PARTIAL, site_url))


def test_a_platform_that_lists_nothing_by_a_path_is_not_available(
        sandboxes: dict[str, Sandbox], settings: Any, site_url: str) -> None:
    sandbox = sandboxes["default"]
    sandbox.reset()
    odd = Dialect(name="odd", templates_path="/no-such-list")
    configure(settings, sandbox, odd)
    # The sandbox serves templates where the default says; neither the site's
    # reading nor the one alternative finds them: the list is "not available".
    doctor = Doctor(site_url=site_url,
                    alternatives=[Dialect(name="other", templates_path="/also-missing")])
    states = doctor.run().states()
    assert states["templates_path"] == NOT_AVAILABLE
    assert "pagination" not in states


def test_the_webhook_check_needs_the_site_and_its_secrets(
        sandboxes: dict[str, Sandbox], settings: Any) -> None:
    sandbox = sandboxes["default"]
    sandbox.reset()
    mmc = configure(settings, sandbox, None)
    mmc["AGENTS"]["sales"]["WEBHOOK_SECRETS"] = []
    settings.MMC = mmc
    states = Doctor().run().states()
    assert states["webhook [support]"] == NOT_AVAILABLE  # no site URL given
    assert states["secrets [sales]"] == DIFFERS
    states = Doctor(site_url="http://127.0.0.1:9").run().states()
    assert states["webhook [support]"] == DIFFERS  # nothing listens there


def test_the_command_shows_no_token_and_no_secret(
        sandboxes: dict[str, Sandbox], settings: Any, site_url: str) -> None:
    sandbox = sandboxes["filter-operators"]
    sandbox.reset()
    mmc = configure(settings, sandbox, None)
    outputs = []
    for extra in ([], ["--json"]):
        out = StringIO()
        with pytest.raises(CommandError, match="item\\(s\\) differs"):
            call_command("mmc_doctor", "--site-url", site_url, "--send-test-to", TO,
                         "--template", "order_shipped", "--context", "first_name=Ann",
                         "--timeout", "5", *extra, stdout=out)
        outputs.append(out.getvalue())
    table, document = outputs
    assert "token_url" in table and "Proposed MMC['CONTRACT']" in table
    report = json.loads(document)
    assert report["proposal"]["filter_style"] == "operators"
    assert report["ok"] is False
    tokens = sandbox.platform.issued_tokens
    assert tokens
    secrets = [mmc["CLIENT_SECRET"], *(s for a in mmc["AGENTS"].values()
                                       for s in a["WEBHOOK_SECRETS"]), *tokens]
    for text in outputs:
        for secret in secrets:
            assert secret not in text


def test_the_command_with_the_right_contract_succeeds(
        sandboxes: dict[str, Sandbox], settings: Any, site_url: str) -> None:
    sandbox = sandboxes["default"]
    sandbox.reset()
    configure(settings, sandbox, None)
    out = StringIO()
    call_command("mmc_doctor", "--site-url", site_url, stdout=out)
    assert "Every item checked is ok." in out.getvalue()


def test_a_test_send_needs_a_template() -> None:
    with pytest.raises(CommandError, match="--template"):
        call_command("mmc_doctor", "--send-test-to", TO)
