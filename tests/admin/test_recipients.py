"""The recipients admin: editing, consent and its log."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from django_mmc.models import (
    ConsentChange,
    Recipient,
)
from tests.admin.helpers import (
    CONSENT_INLINE,
    NUMBER,
    OTHER_NUMBER,
    SEND_URL,
    follow_messages,
    fresh,
    make_dialogue,
    send_data,
)

pytestmark = pytest.mark.django_db


def test_recipient_is_editable_and_the_number_normalised(admin_client: Any) -> None:
    add = reverse("admin:django_mmc_recipient_add")
    response = admin_client.post(add, {"phone_number": "+353 86 123 4567", "name": "Ann",
                                       "metadata": "{}"})
    assert response.status_code == 302
    recipient = Recipient.objects.get()
    assert recipient.phone_number == NUMBER
    bad = admin_client.post(add, {"phone_number": "0861234567", "name": "Bob", "metadata": "{}"})
    assert bad.status_code == 200
    assert "phone_number" in bad.context["adminform"].form.errors
    change = reverse("admin:django_mmc_recipient_change", args=[recipient.pk])
    response = admin_client.post(change, {"phone_number": "+15005550006", "name": "Ann B",
                                          "metadata": '{"vip": true}', **CONSENT_INLINE})
    assert response.status_code == 302
    recipient.refresh_from_db()
    assert recipient.name == "Ann B" and recipient.metadata == {"vip": True}
    assert recipient.phone_number == NUMBER  # the number is set once


def test_consent_buttons_record_and_log(admin_client: Any, directory: dict,
                                        admin_user: Any) -> None:
    recipient = Recipient.objects.for_number(NUMBER)
    url = reverse("admin:django_mmc_recipient_change", args=[recipient.pk])
    html = admin_client.get(url).content.decode()
    assert 'id="mmc-opt-out-whatsapp"' in html and 'id="mmc-opt-out-sms"' in html
    consent = reverse("admin:django_mmc_recipient_consent", args=[recipient.pk])
    response = admin_client.post(consent, {"channel_type": "SMS", "opted_out": "1"},
                                 follow=True)
    assert any("opted out of SMS" in m for m in follow_messages(response))
    assert fresh(recipient).opted_out_channel_types == ["SMS"]
    change = ConsentChange.objects.get()
    assert change.source == ConsentChange.Source.ADMIN and change.changed_by == admin_user
    html = admin_client.get(url).content.decode()
    assert 'id="mmc-opt-in-sms"' in html
    again = admin_client.post(consent, {"channel_type": "SMS", "opted_out": "1"}, follow=True)
    assert any("Nothing changed" in m for m in follow_messages(again))
    # An opted-out channel is refused by the send form, on the number's field.
    refused = admin_client.post(reverse(SEND_URL), send_data(directory, channel_type="SMS"))
    assert "opted out" in " ".join(refused.context["form"].errors["to"])
    admin_client.post(consent, {"channel_type": "SMS", "opted_out": "0"})
    assert fresh(recipient).opted_out_channel_types == []


def test_forget_asks_first_then_erases(admin_client: Any, directory: dict) -> None:
    recipient = Recipient.objects.for_number(NUMBER, name="Ann")
    change = reverse("admin:django_mmc_recipient_change", args=[recipient.pk])
    assert 'id="mmc-forget-recipient"' in admin_client.get(change).content.decode()
    url = reverse("admin:django_mmc_recipient_forget", args=[recipient.pk])
    page = admin_client.get(url).content.decode()
    assert "Kept, for accounting" in page and 'id="mmc-forget-confirm"' in page
    assert fresh(recipient).phone_number == NUMBER  # asking changes nothing
    response = admin_client.post(url, {"post": "yes"}, follow=True)
    assert "1 person forgotten" in follow_messages(response)
    assert fresh(recipient).phone_number == f"erased-{recipient.pk}"
    assert fresh(recipient).name == ""


def test_forget_action_confirms_and_reports_who_could_not_be(admin_client: Any,
                                                             directory: dict) -> None:
    quiet = Recipient.objects.for_number(NUMBER)
    busy = make_dialogue(directory, OTHER_NUMBER).recipient  # an open dialogue
    url = reverse("admin:django_mmc_recipient_changelist")
    data = {"action": "forget_selected", "_selected_action": [quiet.pk, busy.pk]}
    confirm = admin_client.post(url, data)
    assert confirm.status_code == 200
    assert 'id="mmc-forget-list"' in confirm.content.decode()
    assert fresh(quiet).phone_number == NUMBER
    done = admin_client.post(url, {**data, "post": "yes"}, follow=True)
    text = follow_messages(done)[0]
    assert text.startswith("1 person forgotten; 1 skipped:") and "still open" in text
    assert fresh(quiet).phone_number.startswith("erased-")
    assert fresh(busy).phone_number == OTHER_NUMBER
