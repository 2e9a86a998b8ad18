"""Recipients by the platform's customer id: the model, sends, the dialect's
wire form, erasure and the admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

import django_mmc
from django_mmc.dialect import load_dialect
from django_mmc.erasure import forget_recipient, is_erased
from django_mmc.models import Notification, Recipient
from django_mmc.policy import Outcome
from django_mmc.testing import build_event
from django_mmc.workers.dialogues import open_on_platform
from django_mmc.workers.notifications import deliver_notification

pytestmark = pytest.mark.django_db

NUMBER = "+353861234567"


def test_a_recipient_needs_a_number_or_a_customer_id():
    with pytest.raises(IntegrityError), transaction.atomic():
        Recipient.objects.create(name="Nobody")
    with pytest.raises(ValidationError) as caught:
        Recipient(name="Nobody").full_clean()
    assert "phone_number" in caught.value.message_dict
    for bad in ("", "+353861234567", " "):
        with pytest.raises(ValidationError):
            Recipient.objects.for_customer(bad)


def test_for_customer_finds_creates_and_links():
    first = Recipient.objects.for_customer(" 88001 ")
    assert Recipient.objects.for_customer("88001") == first
    assert first.customer_id == "88001" and first.phone_number is None
    linked = Recipient.objects.for_customer("88001", phone_number="+353 86 123 4567")
    assert linked == first and Recipient.objects.get().phone_number == NUMBER
    other = Recipient.objects.for_number("+353861234568")
    assert Recipient.objects.for_customer("88002", phone_number="+353861234568") == other
    assert Recipient.objects.get(pk=other.pk).customer_id == "88002"
    # Many recipients without a number: NULL is not a duplicate.
    Recipient.objects.for_customer("88003")
    Recipient.objects.for_customer("88004")
    assert Recipient.objects.filter(phone_number__isnull=True).count() == 2


def test_a_notification_to_a_customer_id_goes_out_in_the_customer_id_form(synced):
    customer_id = synced.customer_id_for(NUMBER)
    recipient = Recipient.objects.for_customer(customer_id)
    row = django_mmc.send_notification(recipient, "otp", {"code": "123456"})

    assert deliver_notification(row.pk, task_id="t1").outcome is Outcome.DONE
    row.refresh_from_db()
    with synced.platform.lock:
        sent = synced.platform.notifications[row.platform_id]
    assert (sent.recipient, sent.customer_id) == (NUMBER, customer_id)
    posted = [e for e in synced.requests_log if e["method"] == "POST"][-1]
    assert posted["status"] == 201


def test_the_sandbox_refuses_a_customer_id_it_does_not_know(synced):
    row = django_mmc.send_notification(Recipient.objects.for_customer("99999"), "otp",
                                       {"code": "1"})
    deliver_notification(row.pk, task_id="t1")
    row.refresh_from_db()
    assert row.failure_code == "INVALID_RECIPIENT"


def test_campaigns_and_dialogues_take_recipients_known_by_customer_id(synced):
    customer_id = synced.customer_id_for("+353861234568")
    recipient = Recipient.objects.for_customer(customer_id)
    assert django_mmc.send_notifications([recipient, NUMBER], "otp", {"code": "1"}) == 2
    assert set(Notification.objects.values_list("recipient__customer_id", flat=True)) == {
        customer_id, None}

    dialogue = django_mmc.open_dialogue(recipient)
    assert django_mmc.open_dialogue(recipient) == dialogue  # found again, not a second one
    assert open_on_platform(dialogue.pk, task_id="t").outcome is Outcome.DONE
    dialogue.refresh_from_db()
    with synced.platform.lock:
        opened = synced.platform.dialogues[dialogue.platform_id]
    assert (opened.recipient, opened.customer_id) == ("+353861234568", customer_id)


def test_each_dialect_writes_and_reads_its_customer_id_form():
    default, operators = load_dialect(None), load_dialect("filter-operators")
    assert default.recipient_linkage(NUMBER, "88001") == ("customers", NUMBER)
    assert default.recipient_linkage(None, "88001") == ("customer-ids", "88001")
    assert operators.recipient_linkage(None, "88001") == ("customer", "88001")

    event = build_event("dialogue.opened", dialogue="1", recipient=NUMBER, customer_id="88001",
                        channel_group="7", initiated_by="RECIPIENT", channel_type="SMS")
    linkage = operators.wire_event(event)["data"]["relationships"]["recipient"]["data"]
    assert linkage == {"type": "customer", "id": "88001", "meta": {"msisdn": NUMBER}}
    assert operators.read_recipient(linkage) == (NUMBER, "88001")
    assert default.read_recipient({"type": "customers", "id": NUMBER}) == (NUMBER, None)
    assert default.read_recipient({"type": "customers", "id": "0861234567"}) == (
        "0861234567", None)  # a phone number, not valid: refused downstream
    same_type = load_dialect({"customer_id_type": "customers"})
    assert same_type.read_recipient({"type": "customers", "id": "88001"}) == (None, "88001")
    assert same_type.read_recipient({"type": "customers", "id": NUMBER}) == (NUMBER, None)


def test_forgetting_a_customer_known_only_by_id(db):
    recipient = Recipient.objects.for_customer("88001", name="Ann")
    forget_recipient(recipient)
    recipient.refresh_from_db()
    assert recipient.customer_id is None and recipient.name == ""
    assert is_erased(recipient)


def test_the_admin_adds_a_recipient_by_customer_id(admin_client: Any):
    add = reverse("admin:django_mmc_recipient_add")
    neither = admin_client.post(add, {"phone_number": "", "customer_id": "", "name": "X",
                                      "metadata": "{}"})
    assert neither.status_code == 200 and not Recipient.objects.exists()
    response = admin_client.post(add, {"phone_number": "", "customer_id": "88001",
                                       "name": "Ann", "metadata": "{}"})
    assert response.status_code == 302
    recipient = Recipient.objects.get()
    assert (recipient.customer_id, recipient.phone_number) == ("88001", None)
    page = admin_client.get(reverse("admin:django_mmc_recipient_change", args=[recipient.pk]))
    html = page.content.decode()
    assert 'name="phone_number"' in html  # a number can still be added
    assert 'name="customer_id"' not in html  # the id, once set, is not rewritten
    assert f"?recipient={recipient.pk}" in html
