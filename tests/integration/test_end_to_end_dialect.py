"""The end-to-end path again, against a platform that speaks another dialect.

The sandbox plays ``filter-operators`` (other paths, ``filter[id][in]`` and
``page[limit]``/``page[offset]``, other type, event and status words, base64
signatures with a prefix over a signed timestamp), and django_mmc is switched
to it by ``MMC['CONTRACT']`` alone: the worker process, the live server that
receives the webhooks and the test share that one setting. A few tests of
:mod:`.test_end_to_end` run here unchanged: notifications through webhooks,
an agent's dialogue with a recipient's reply, a dialogue the recipient
starts, and a customer the platform names by its customer id.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from django_mmc.sandbox import Sandbox
from tests.conftest import ISSUED_TOKENS, WORKER_LOGS, Worker, mmc_settings_for, purge_queue
from tests.integration.test_end_to_end import (  # noqa: F401 - collected here again
    test_a_customer_the_platform_names_by_id_is_found_and_linked,
    test_committed_notification_is_delivered_through_webhooks,
    test_recipient_initiated_dialogue_is_created_from_webhooks,
    test_recipient_reply_arrives_once_in_the_open_dialogue,
)

pytestmark = pytest.mark.integration

DIALECT = "filter-operators"


@pytest.fixture(scope="module")
def dialect_sandbox() -> Iterator[Sandbox]:
    server = Sandbox(progress_interval=0.05, rate_limit=None, dialect=DIALECT).start()
    try:
        yield server
    finally:
        server.stop()
        ISSUED_TOKENS.extend(server.platform.issued_tokens)


@pytest.fixture
def sandbox(dialect_sandbox: Sandbox, settings: Any) -> Iterator[Sandbox]:
    """This module's sandbox, fresh for the test, ``settings.MMC`` on it."""
    dialect_sandbox.reset()
    settings.MMC = mmc_settings_for(dialect_sandbox)
    assert settings.MMC["CONTRACT"] == DIALECT
    try:
        yield dialect_sandbox
    finally:
        dialect_sandbox.restore_agent_endpoints()
        dialect_sandbox.faults.clear()


@pytest.fixture(scope="module")
def celery_worker(celery_worker: Worker, dialect_sandbox: Sandbox) -> Iterator[Worker]:
    """A worker on this module's sandbox and dialect, in place of the
    session's (both consume the same queue: only one may run)."""
    from django.db import connection

    celery_worker.stop()
    purge_queue()
    env = {**celery_worker.env,
           "DJANGO_MMC_TEST_MMC": json.dumps(mmc_settings_for(dialect_sandbox)),
           "DJANGO_MMC_WORKER_DB": connection.settings_dict["NAME"]}
    log = Path(tempfile.gettempdir()) / f"django_mmc_worker_{os.getpid()}_dialect.log"
    log.unlink(missing_ok=True)
    WORKER_LOGS.append(log)
    worker = Worker(env, log)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        purge_queue()
        celery_worker.start()


def test_every_exchange_was_in_the_dialect(mmc_stack: Any) -> None:
    import requests
    from django.conf import settings

    import django_mmc
    from django_mmc.models import Notification, WebhookEvent
    from django_mmc.signing import sign
    from django_mmc.status import Status
    from django_mmc.testing import build_event

    notification = django_mmc.send_notification("+353861234567", "otp", {"code": "42"})
    mmc_stack.wait_for(
        lambda: Notification.objects.get(pk=notification.pk).status == Status.READ,
        message="the notification to be READ")
    mmc_stack.sandbox.wait_for_webhooks(timeout=5)

    requests_log = mmc_stack.sandbox.requests_log
    # A 401 is the worker's token from before the sandbox's reset, renewed once.
    assert requests_log and all(e["status"] in (200, 201, 401) for e in requests_log), [
        (e["method"], e["path"], e["status"]) for e in requests_log]
    assert all(e["path"].startswith(("/v2/orgs/", "/oauth2/v2.0/b2c_1_login/token"))
               for e in requests_log)
    deliveries = mmc_stack.sandbox.webhook_log
    assert deliveries and {d["status_code"] for d in deliveries} == {202}
    event_types = {e["data"]["attributes"]["eventType"] for e in mmc_stack.sandbox.events()}
    assert event_types == {"NOTIFICATION_STATUS_CHANGED"}
    stored = set(WebhookEvent.objects.values_list("event_type", flat=True))
    assert stored == {"notification.status"}  # our words once inside

    # A delivery signed the default way is refused in this dialect.
    secret = settings.MMC["AGENTS"]["support"]["WEBHOOK_SECRETS"][0]
    body = json.dumps(build_event("notification.status", notification=notification.platform_id,
                                  status="READ", agent_id="17")).encode()
    refused = requests.post(
        f"{mmc_stack.live_server_url}/mmc/webhooks/support/", data=body, timeout=5,
        headers={"Content-Type": "application/vnd.api+json",
                 "X-MMC-Signature": sign(body, secret)})
    assert refused.status_code == 401
    assert "X-MMC-Signature-256" in refused.headers["WWW-Authenticate"]
