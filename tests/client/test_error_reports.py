"""Item 16 of the hardening issue: Django's error reports never show the
bearer token or the client secret.

An exception raised on the client's request path ends up in Django's
technical 500 page (``DEBUG = True``) or in the error e-mail to the admins
(``DEBUG = False``, where ``sensitive_variables`` applies). Both are built by
``django.views.debug.ExceptionReporter``, which prints every local variable
of every frame. Each test raises from inside a real request to the sandbox
and reads the report Django would build, as HTML and as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import urllib3.connection
from django.test import RequestFactory
from django.views.debug import ExceptionReporter

from django_mmc.client import MMCClient
from django_mmc.conf import mmc_settings
from django_mmc.exceptions import MMCTransientError

from . import TOKEN_PATH, current_token


def report(call: Callable[[], Any], expected: type[BaseException]
           ) -> tuple[list[dict[str, Any]], str, str]:
    """Run ``call``, which must raise ``expected``; return the frames of
    Django's report on it, and the report as HTML and as text."""
    try:
        call()
    except expected as error:
        reporter = ExceptionReporter(RequestFactory().get("/shop/"), type(error), error,
                                     error.__traceback__)
        return (reporter.get_traceback_frames(), reporter.get_traceback_html(),
                reporter.get_traceback_text())
    raise AssertionError(f"{expected.__name__} was not raised")


def frame_names(frames: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["filename"].replace("\\", "/").rsplit("django_mmc/", 1)[-1], f["function"])
            for f in frames if "django_mmc/" in f["filename"].replace("\\", "/")}


def assert_hidden(secrets: list[str], html: str, text: str) -> None:
    secrets = [s for s in secrets if s]
    assert secrets, "nothing to look for: the test would pass vacuously"
    for secret in secrets:
        assert secret not in html, "a secret is on the HTML error page"
        assert secret not in text, "a secret is in the text error report"


@pytest.fixture(params=[False, True], ids=["error-email", "debug-page"])
def debug(request: pytest.FixtureRequest, settings: Any) -> bool:
    """Both reports: ``DEBUG = False`` (the admins' e-mail, variables marked
    sensitive are masked) and ``DEBUG = True`` (the technical 500 page,
    where Django masks nothing in the frames)."""
    settings.DEBUG = request.param
    return request.param


def test_item_16_platform_500_shows_no_token(sandbox: Any, client: MMCClient,
                                              debug: bool) -> None:
    client.list_channel_groups()  # a token in hand
    token = current_token(client)
    sandbox.faults.inject("500")

    frames, html, text = report(lambda: client.get_notification("79746"), MMCTransientError)

    assert ("client/__init__.py", "request") in frame_names(frames)
    assert ("client/__init__.py", "get_notification") in frame_names(frames)
    assert "GET" in html and "/notifications/79746" in text  # the report still helps
    assert_hidden([token, f"Bearer {token}", mmc_settings.CLIENT_SECRET], html, text)


def test_item_16_transport_breaking_mid_request_shows_no_token(
    sandbox: Any, client: MMCClient, debug: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.list_channel_groups()
    token = current_token(client)
    original = urllib3.connection.HTTPConnection.request

    def breaks_after_sending(self: Any, *args: Any, **kwargs: Any) -> Any:
        original(self, *args, **kwargs)  # the request went out, token and all
        raise RuntimeError("the connection broke in a way nobody expected")

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "request", breaks_after_sending)

    frames, html, text = report(lambda: client.get_notification("79746"), RuntimeError)

    monkeypatch.undo()
    # The sandbox answered it: the request went out whole before the break.
    assert any("/notifications/79746" in entry["path"] for entry in sandbox.requests_log)
    names = frame_names(frames)
    assert ("client/__init__.py", "request") in names
    assert any("urllib3" in f["filename"] for f in frames)  # the transport's frames too
    assert_hidden([token, f"Bearer {token}", mmc_settings.CLIENT_SECRET], html, text)


def test_item_16_token_endpoint_500_shows_no_client_secret(
    sandbox: Any, client: MMCClient, debug: bool
) -> None:
    sandbox.faults.inject("500", path=TOKEN_PATH)

    frames, html, text = report(client.list_channel_groups, MMCTransientError)

    names = frame_names(frames)
    assert ("client/__init__.py", "request") in names
    assert ("client/auth.py", "_fetch") in names
    assert_hidden([mmc_settings.CLIENT_SECRET], html, text)


def test_item_16_token_fetched_then_refused_shows_neither(
    sandbox: Any, client: MMCClient, debug: bool
) -> None:
    # A token is fetched (a token response in hand) and the call it was
    # fetched for fails: every frame of both steps is in one report.
    sandbox.faults.inject("503")

    frames, html, text = report(client.list_templates, MMCTransientError)

    token = current_token(client)
    assert ("client/__init__.py", "request") in frame_names(frames)
    assert_hidden([token, mmc_settings.CLIENT_SECRET], html, text)
