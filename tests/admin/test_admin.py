"""django_mmc's admin: pages, the send and dialogue views, actions,
permissions, secrets and query counts.

Directory rows are created directly (the ``directory`` fixture); nothing here
talks to the platform: the one action that would (Refresh status) and the
sync get a fake client or function. Enqueueing after commit does not run in
these non-transactional tests, and the reprocess action's immediate enqueue
is recorded instead of sent.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_mmc import api
from django_mmc.client.resources import NotificationResource
from django_mmc.exceptions import MMCAPIError
from django_mmc.models import (
    ConsentChange,
    Dialogue,
    Message,
    Notification,
    Recipient,
    WebhookEvent,
)
from django_mmc.status import DialogueStatus, Direction, Priority, Status

pytestmark = pytest.mark.django_db

NUMBER = "+353861234567"
OTHER_NUMBER = "+353861234568"


# -- helpers ------------------------------------------------------------------------


def make_user(django_user_model: Any, username: str, *perms: str, staff: bool = True) -> Any:
    user = django_user_model.objects.create_user(username, password="pw", is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(
            content_type__app_label=app_label, codename=codename))
    return user


def make_notification(directory: dict, number: str = NUMBER, **fields: Any) -> Notification:
    recipient = Recipient.objects.for_number(number)
    values = {"template": directory["order_shipped"], "channel_group": directory["support"],
              "channel_type": "WHATSAPP", "context": {"first_name": "Ann"}}
    values.update(fields)
    return Notification.objects.create(recipient=recipient, **values)


def make_dialogue(directory: dict, number: str = NUMBER, **fields: Any) -> Dialogue:
    values = {"agent_key": "support", "channel_group": directory["support"],
              "channel_type": "WHATSAPP", "status": DialogueStatus.OPEN,
              "platform_id": f"d-{number[-4:]}", "opened_at": timezone.now()}
    values.update(fields)
    return Dialogue.objects.create(recipient=Recipient.objects.for_number(number), **values)


def make_event(event_id: str = "evt_1", state: str = WebhookEvent.State.PROCESSED
               ) -> WebhookEvent:
    body = {"data": {"type": "events", "id": event_id,
                     "attributes": {"eventType": "notification.status", "status": "SENT"}}}
    return WebhookEvent.objects.create(
        event_id=event_id, agent_key="support", event_type="notification.status",
        body=json.dumps(body), signature="ab" * 32, subject_id="79746", state=state)


def follow_messages(response: Any) -> list[str]:
    return [str(m) for m in list(response.context["messages"])]


@pytest.fixture
def rows(directory: dict) -> dict[str, Any]:
    """One row of every model."""
    notification = make_notification(directory, status=Status.FAILED,
                                     failure_code="RECIPIENT_UNREACHABLE",
                                     failure_detail="The recipient's number cannot be reached.",
                                     platform_id="79746")
    dialogue = make_dialogue(directory)
    inbound = Message.objects.create(
        dialogue=dialogue, direction=Direction.INBOUND, text="Where is my order?",
        status=Status.RECEIVED, platform_id="m-1", received_at=timezone.now(),
        files=[{"id": "9", "name": "photo.jpg", "contentType": "image/jpeg", "size": 2048,
                "url": "https://files.example/9"},
               {"id": "10", "name": "evil.html", "url": "javascript:alert(1)"}])
    outbound = Message.objects.create(
        dialogue=dialogue, direction=Direction.OUTBOUND, text="It left today.",
        status=Status.DELIVERED, platform_id="m-2")
    event = make_event()
    api.set_consent(notification.recipient, "SMS", True, source="API", detail="STOP")
    consent = ConsentChange.objects.get()
    return {"notification": notification, "dialogue": dialogue, "inbound": inbound,
            "outbound": outbound, "event": event, "recipient": notification.recipient,
            "channel_group": directory["support"], "template": directory["order_shipped"],
            "consent": consent}


# -- pages render ------------------------------------------------------------------------

MODELS = ["recipient", "channelgroup", "template", "notification", "dialogue", "message",
          "webhookevent", "consentchange"]
ROW_OF = {"recipient": "recipient", "channelgroup": "channel_group", "template": "template",
          "notification": "notification", "dialogue": "dialogue", "message": "inbound",
          "webhookevent": "event", "consentchange": "consent"}


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_change_page_render(admin_client: Any, rows: dict, model: str) -> None:
    changelist = admin_client.get(reverse(f"admin:django_mmc_{model}_changelist"))
    assert changelist.status_code == 200
    obj = rows[ROW_OF[model]]
    change = admin_client.get(reverse(f"admin:django_mmc_{model}_change", args=[obj.pk]))
    assert change.status_code == 200


def test_index_and_custom_views_render(admin_client: Any, rows: dict) -> None:
    for url in (reverse("admin:index"), reverse("admin:app_list", args=["django_mmc"]),
                reverse("admin:django_mmc_recipient_add"),
                reverse("admin:django_mmc_notification_send"),
                reverse("admin:django_mmc_dialogue_open")):
        assert admin_client.get(url).status_code == 200, url


def test_changelist_filters_and_search_render(admin_client: Any, rows: dict) -> None:
    url = reverse("admin:django_mmc_notification_changelist")
    for query in ({"status__exact": "FAILED"}, {"channel_type": "WHATSAPP"},
                  {"channel_group__id__exact": rows["channel_group"].pk},
                  {"q": "353861234567"}, {"q": "79746"}):
        response = admin_client.get(url, query)
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1, query
    dialogues = reverse("admin:django_mmc_dialogue_changelist")
    assert admin_client.get(dialogues, {"agent": "support"}).context["cl"].result_count == 1
    assert admin_client.get(dialogues, {"agent": "sales"}).context["cl"].result_count == 0
    events = reverse("admin:django_mmc_webhookevent_changelist")
    assert admin_client.get(events, {"event_type": "notification.status"}
                            ).context["cl"].result_count == 1
    assert admin_client.get(events, {"event_type": "_other"}).context["cl"].result_count == 0
    messages = reverse("admin:django_mmc_message_changelist")
    response = admin_client.get(messages, {"dialogue__id__exact": rows["dialogue"].pk})
    assert response.context["cl"].result_count == 2


def test_status_badges_are_readable_and_failures_explained(admin_client: Any, rows: dict
                                                           ) -> None:
    html = admin_client.get(reverse("admin:django_mmc_notification_changelist")).content.decode()
    assert 'class="mmc-status mmc-status-failed"' in html
    assert ">Failed<" in html
    assert "RECIPIENT_UNREACHABLE" in html
    assert "cannot be reached" in html
    change = admin_client.get(reverse("admin:django_mmc_notification_change",
                                      args=[rows["notification"].pk])).content.decode()
    assert "RECIPIENT_UNREACHABLE" in change
    assert str(rows["notification"].idempotency_key) in change
    assert "django_mmc/admin.css" in change


def test_platform_owned_rows_cannot_be_added_changed_or_deleted(admin_client: Any, rows: dict
                                                               ) -> None:
    for model in ("notification", "dialogue", "message", "webhookevent", "channelgroup",
                  "template", "consentchange"):
        assert admin_client.get(reverse(f"admin:django_mmc_{model}_add")).status_code == 403
        obj = rows[ROW_OF[model]]
        delete = reverse(f"admin:django_mmc_{model}_delete", args=[obj.pk])
        assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    notification = rows["notification"]
    response = admin_client.post(
        reverse("admin:django_mmc_notification_change", args=[notification.pk]),
        {"status": "READ", "platform_id": "other"})
    assert response.status_code == 403
    notification.refresh_from_db()
    assert notification.status == Status.FAILED and notification.platform_id == "79746"


#: The management form of the (read-only) consent history inline.
CONSENT_INLINE = {"consent_changes-TOTAL_FORMS": "0", "consent_changes-INITIAL_FORMS": "0",
                  "consent_changes-MIN_NUM_FORMS": "0", "consent_changes-MAX_NUM_FORMS": "0"}


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


def test_transcript_never_links_unsafe_urls(admin_client: Any, rows: dict) -> None:
    html = admin_client.get(reverse("admin:django_mmc_dialogue_change",
                                    args=[rows["dialogue"].pk])).content.decode()
    assert 'href="https://files.example/9"' in html
    assert "javascript:alert" not in html
    assert "evil.html" in html


# -- the send view -------------------------------------------------------------------------

SEND_URL = "admin:django_mmc_notification_send"


def send_data(directory: dict, **overrides: Any) -> dict[str, Any]:
    data = {"to": NUMBER, "template": directory["order_shipped"].pk,
            "channel_group": directory["support"].pk, "channel_type": "WHATSAPP",
            "param_first_name": "Ann", "param_tracking_url": "https://t.example/1"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_send_form_shows_the_templates_parameters_and_preview(admin_client: Any,
                                                              directory: dict) -> None:
    url = reverse(SEND_URL)
    plain = admin_client.get(url).content.decode()
    assert 'name="param_first_name"' not in plain
    template = directory["order_shipped"]
    html = admin_client.get(url, {"template": template.pk, "to": NUMBER}).content.decode()
    assert 'name="param_first_name"' in html
    assert 'name="param_tracking_url"' in html
    assert 'id="mmc-template-preview"' in html
    assert "your order is on its way" in html
    assert f'value="{NUMBER}"' in html
    form = admin_client.get(url, {"template": template.pk}).context["form"]
    assert form.fields["param_first_name"].parameter_required
    assert not form.fields["param_tracking_url"].parameter_required
    assert '<label for="id_param_first_name" class="required">' in html


def test_choosing_a_template_by_post_rerenders_without_sending(admin_client: Any,
                                                                directory: dict) -> None:
    response = admin_client.post(reverse(SEND_URL), {
        "to": NUMBER, "template": directory["otp"].pk, "_choose": "1"})
    assert response.status_code == 200
    assert 'name="param_code"' in response.content.decode()
    assert not response.context["form"].errors
    assert Notification.objects.count() == 0


@pytest.mark.parametrize(("overrides", "field"), [
    ({"to": "12345"}, "to"),
    ({"to": "+1 555"}, "to"),
    ({"to": ""}, "to"),
    ({"param_first_name": ""}, "param_first_name"),
    ({"channel_group": "sales", "channel_type": "SMS"}, "channel_type"),
    ({"template": "appointment_reminder", "channel_type": "SMS",
      "param_date": "Monday"}, "channel_type"),
    ({"template": "999999"}, "template"),
])
def test_send_form_validates_like_send_notification(admin_client: Any, directory: dict,
                                                     overrides: dict, field: str) -> None:
    for key in ("channel_group", "template"):
        if overrides.get(key) in directory:
            overrides[key] = directory[overrides[key]].pk
    response = admin_client.post(reverse(SEND_URL), send_data(directory, **overrides))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, errors
    assert Notification.objects.count() == 0
    assert Recipient.objects.count() == 0


def test_send_form_reports_every_problem_at_once(admin_client: Any, directory: dict) -> None:
    # The number is text to the form: send_notification finds it invalid,
    # and in the same call finds the missing parameter.
    response = admin_client.post(reverse(SEND_URL), send_data(
        directory, to="+15550100", param_first_name=""))
    errors = response.context["form"].errors
    assert "not a valid phone number" in " ".join(errors["to"])
    assert errors["param_first_name"] == ["The template requires this parameter."]
    assert Notification.objects.count() == 0


def test_send_creates_a_notification_by_the_user(client: Any, django_user_model: Any,
                                                 directory: dict) -> None:
    user = make_user(django_user_model, "sender", "django_mmc.send_notification",
                     "django_mmc.view_notification")
    client.force_login(user)
    response = client.post(reverse(SEND_URL), send_data(directory))
    notification = Notification.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:django_mmc_notification_change",
                                           args=[notification.pk])
    assert notification.created_by == user
    assert notification.status == Status.QUEUED
    assert notification.recipient.phone_number == NUMBER
    assert notification.template == directory["order_shipped"]
    assert notification.channel_type == "WHATSAPP"
    assert notification.context == {"first_name": "Ann", "tracking_url": "https://t.example/1"}
    page = client.get(response["Location"])
    assert any("queued" in m for m in follow_messages(page))


def test_send_to_a_picked_recipient_and_default_channel(admin_client: Any, directory: dict
                                                        ) -> None:
    recipient = Recipient.objects.for_number(OTHER_NUMBER)
    data = send_data(directory, to="", recipient=recipient.pk, channel_group="",
                     channel_type="", param_tracking_url="")
    response = admin_client.post(reverse(SEND_URL), data)
    assert response.status_code == 302
    notification = Notification.objects.get()
    assert notification.recipient == recipient
    assert notification.channel_group == directory["support"]  # MMC DEFAULT_CHANNEL_GROUP
    assert notification.context == {"first_name": "Ann"}


def test_send_refuses_both_a_recipient_and_a_number(admin_client: Any, directory: dict) -> None:
    recipient = Recipient.objects.for_number(OTHER_NUMBER)
    response = admin_client.post(reverse(SEND_URL),
                                 send_data(directory, recipient=recipient.pk))
    assert "to" in response.context["form"].errors
    assert Notification.objects.count() == 0


# -- dialogues -----------------------------------------------------------------------------


def test_dialogue_page_shows_the_transcript_in_time_order(admin_client: Any, rows: dict
                                                          ) -> None:
    response = admin_client.get(reverse("admin:django_mmc_dialogue_change",
                                        args=[rows["dialogue"].pk]))
    html = response.content.decode()
    assert html.index("Where is my order?") < html.index("It left today.")
    assert "mmc-message-inbound" in html and "mmc-message-outbound" in html
    assert 'class="mmc-status mmc-status-delivered"' in html
    assert "photo.jpg" in html
    assert 'id="mmc-reply-text"' in html and 'name="text"' in html
    assert 'id="mmc-close-dialogue"' in html


def test_reply_sends_a_message_as_the_user(admin_client: Any, rows: dict,
                                           admin_user: Any) -> None:
    dialogue = rows["dialogue"]
    url = reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk])
    response = admin_client.post(url, {"text": "Your refund is on its way."}, follow=True)
    message = Message.objects.get(text="Your refund is on its way.")
    assert message.direction == Direction.OUTBOUND
    assert message.created_by == admin_user
    assert message.status == Status.QUEUED
    assert any("queued" in m for m in follow_messages(response))
    assert response.redirect_chain[-1][0].endswith(f"/{dialogue.pk}/change/#mmc-transcript")


def test_reply_refused_in_a_closed_dialogue(admin_client: Any, directory: dict) -> None:
    dialogue = make_dialogue(directory, status=DialogueStatus.CLOSED)
    page = admin_client.get(reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk]))
    assert 'id="mmc-reply-text"' not in page.content.decode()
    response = admin_client.post(reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk]),
                                 {"text": "Hello?"}, follow=True)
    assert not Message.objects.filter(text="Hello?").exists()
    assert follow_messages(response)  # the reason is shown


def test_empty_reply_is_refused(admin_client: Any, rows: dict) -> None:
    before = Message.objects.count()
    response = admin_client.post(reverse("admin:django_mmc_dialogue_reply",
                                         args=[rows["dialogue"].pk]), {"text": "  "}, follow=True)
    assert Message.objects.count() == before
    assert follow_messages(response)


def test_close_button_closes_as_the_user(admin_client: Any, rows: dict, admin_user: Any) -> None:
    dialogue = rows["dialogue"]
    response = admin_client.post(reverse("admin:django_mmc_dialogue_close", args=[dialogue.pk]),
                                 follow=True)
    dialogue.refresh_from_db()
    assert dialogue.status == DialogueStatus.CLOSING
    assert dialogue.closed_by_user == admin_user
    assert any("being closed" in m for m in follow_messages(response))
    page = admin_client.get(reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk]))
    assert 'id="mmc-close-dialogue"' not in page.content.decode()


def test_conflict_names_the_agent_holding_the_recipient(admin_client: Any, directory: dict
                                                        ) -> None:
    dialogue = make_dialogue(directory, status=DialogueStatus.CONFLICT, platform_id=None,
                             conflict_agent_id="18", conflict_dialogue_id="5490")
    html = admin_client.get(reverse("admin:django_mmc_dialogue_change",
                                    args=[dialogue.pk])).content.decode()
    assert 'id="mmc-dialogue-conflict"' in html
    assert "sales (agent 18)" in html and "5490" in html
    listing = admin_client.get(reverse("admin:django_mmc_dialogue_changelist")).content.decode()
    assert "sales (agent 18)" in listing


def test_open_dialogue_view(admin_client: Any, directory: dict, admin_user: Any) -> None:
    url = reverse("admin:django_mmc_dialogue_open")
    response = admin_client.post(url, {"to": NUMBER, "agent": "support",
                                       "channel_group": directory["support"].pk,
                                       "channel_type": "WHATSAPP"})
    dialogue = Dialogue.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:django_mmc_dialogue_change",
                                           args=[dialogue.pk])
    assert dialogue.status == DialogueStatus.OPENING
    assert dialogue.agent_key == "support" and dialogue.opened_by_user == admin_user
    # The same agent again: the open dialogue is reused.
    again = admin_client.post(url, {"to": NUMBER, "agent": "support",
                                    "channel_group": directory["support"].pk}, follow=True)
    assert Dialogue.objects.count() == 1
    assert any("already has an open dialogue" in m for m in follow_messages(again))
    # Another agent: refused, naming the field.
    other = admin_client.post(url, {"to": NUMBER, "agent": "sales",
                                    "channel_group": directory["support"].pk})
    assert other.status_code == 200
    assert "to" in other.context["form"].errors
    bad = admin_client.post(url, {"to": "nonsense", "agent": "support"})
    assert "to" in bad.context["form"].errors
    sms_on_sales = admin_client.post(url, {"to": OTHER_NUMBER, "agent": "sales",
                                           "channel_group": directory["sales"].pk,
                                           "channel_type": "SMS"})
    assert "channel_type" in sms_on_sales.context["form"].errors
    assert Dialogue.objects.count() == 1


# -- actions -----------------------------------------------------------------------------------


def run_action(client: Any, model: str, action: str, objects: list[Any]) -> Any:
    return client.post(reverse(f"admin:django_mmc_{model}_changelist"), {
        "action": action, "_selected_action": [o.pk for o in objects]}, follow=True)


def test_retry_action_message(admin_client: Any, directory: dict) -> None:
    failed = make_notification(directory, status=Status.FAILED, platform_id="1")
    refused = make_notification(directory, OTHER_NUMBER, status=Status.REFUSED)
    delivered = make_notification(directory, status=Status.DELIVERED, platform_id="2")
    response = run_action(admin_client, "notification", "retry_notifications",
                          [failed, refused, delivered])
    assert ("2 notifications retried; 1 skipped: Only failed, refused or unsent "
            "notifications can be retried") in follow_messages(response)
    assert Notification.objects.filter(retry_of__in=[failed, refused]).count() == 2


def test_retry_action_requeues_error_rows(admin_client: Any, directory: dict) -> None:
    error = make_notification(directory, status=Status.ERROR, attempts=8)
    response = run_action(admin_client, "notification", "retry_notifications", [error])
    assert "1 notification retried" in follow_messages(response)
    error.refresh_from_db()
    assert error.status == Status.QUEUED and error.attempts == 0
    assert Notification.objects.count() == 1


class FakeClient:
    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.calls: list[list[str]] = []

    def get_notifications(self, ids: list[str]) -> list[NotificationResource]:
        self.calls.append(list(ids))
        return [NotificationResource(id=i, status=self.statuses[i]) for i in ids
                if i in self.statuses]


def test_refresh_status_action_message(admin_client: Any, directory: dict,
                                       monkeypatch: Any) -> None:
    accepted = make_notification(directory, status=Status.ACCEPTED, platform_id="501")
    sent = make_notification(directory, status=Status.SENT, platform_id="502")
    queued = make_notification(directory, status=Status.QUEUED)
    read = make_notification(directory, status=Status.READ, platform_id="503")
    fake = FakeClient({"501": "DELIVERED", "502": "SENT"})
    monkeypatch.setattr("django_mmc.client.get_client", lambda: fake)
    response = run_action(admin_client, "notification", "refresh_status",
                          [accepted, sent, queued, read])
    assert len(fake.calls) == 1 and sorted(fake.calls[0]) == ["501", "502"]
    text = follow_messages(response)[0]
    assert text.startswith("Asked the platform about 2 notifications: 1 changed; 2 skipped:")
    assert "not on the platform yet (1)" in text and "their status is final (1)" in text
    accepted.refresh_from_db()
    assert accepted.status == Status.DELIVERED


def test_refresh_status_reports_a_platform_error(admin_client: Any, directory: dict,
                                                 monkeypatch: Any) -> None:
    accepted = make_notification(directory, status=Status.ACCEPTED, platform_id="501")

    class Down:
        def get_notifications(self, ids: list[str]) -> list:
            raise MMCAPIError("the platform is down", status_code=503)

    monkeypatch.setattr("django_mmc.client.get_client", lambda: Down())
    response = run_action(admin_client, "notification", "refresh_status", [accepted])
    assert follow_messages(response)[0].startswith("Could not ask the platform:")


def test_close_selected_action_message(admin_client: Any, directory: dict) -> None:
    open_ = make_dialogue(directory)
    closed = make_dialogue(directory, OTHER_NUMBER, status=DialogueStatus.CLOSED)
    response = run_action(admin_client, "dialogue", "close_selected", [open_, closed])
    assert ("1 dialogue closing; 1 skipped: Only open dialogues can be closed"
            in follow_messages(response))
    open_.refresh_from_db()
    assert open_.status == DialogueStatus.CLOSING


@pytest.mark.parametrize("model", ["channelgroup", "template"])
def test_sync_action_and_button_messages(admin_client: Any, directory: dict, monkeypatch: Any,
                                         model: str) -> None:
    calls = []

    def fake_sync() -> dict[str, int]:
        calls.append(1)
        return {"channel_groups": 2, "channels": 3, "templates": 5}

    monkeypatch.setattr("django_mmc.directory.sync_directory", fake_sync)
    obj = directory["support"] if model == "channelgroup" else directory["otp"]
    expected = ("Synced from the platform: 2 channel groups, 3 channels and 5 templates "
                "are active.")
    response = run_action(admin_client, model, "sync_from_platform", [obj])
    assert expected in follow_messages(response)
    button = admin_client.post(reverse(f"admin:django_mmc_{model}_sync"), follow=True)
    assert expected in follow_messages(button)
    assert len(calls) == 2


def test_sync_failure_is_reported(admin_client: Any, monkeypatch: Any) -> None:
    def failing() -> dict[str, int]:
        raise MMCAPIError("connection refused")

    monkeypatch.setattr("django_mmc.directory.sync_directory", failing)
    response = admin_client.post(reverse("admin:django_mmc_channelgroup_sync"), follow=True)
    assert follow_messages(response)[0].startswith("Could not sync from the platform:")


def test_reprocess_action_message(admin_client: Any, monkeypatch: Any) -> None:
    queued = []
    monkeypatch.setattr("django_mmc.dispatch.enqueue", lambda kind, pk, **kw: queued.append(
        (kind, pk)) or True)
    failed = make_event("evt_a", WebhookEvent.State.FAILED)
    processed = make_event("evt_b", WebhookEvent.State.PROCESSED)
    response = run_action(admin_client, "webhookevent", "process_again", [failed, processed])
    assert "2 webhook events queued to be processed again" in follow_messages(response)
    assert sorted(queued) == sorted([("process_event", failed.pk),
                                     ("process_event", processed.pk)])
    processed.refresh_from_db()
    assert processed.state == WebhookEvent.State.PENDING


def test_event_search_is_exact_on_the_event_or_subject_id(admin_client: Any) -> None:
    make_event("evt_a")
    other = make_event("evt_b")
    WebhookEvent.objects.filter(pk=other.pk).update(subject_id="55012")
    url = reverse("admin:django_mmc_webhookevent_changelist")

    def found(term: str) -> list[str]:
        response = admin_client.get(url, {"q": term})
        assert response.status_code == 200
        return sorted(e.event_id for e in response.context["cl"].result_list)

    assert found("evt_a") == ["evt_a"]
    assert found("55012") == ["evt_b"]
    assert found("79746") == ["evt_a"]
    # Platform ids are compared as they are: no case folding, no substrings.
    assert found("EVT_A") == []
    assert found("evt") == []
    assert found("5501") == []


# -- permissions ------------------------------------------------------------------------------

#: operation -> (the permission it needs, the view permission its page needs)
OPERATIONS = {
    "send": ("django_mmc.send_notification", "django_mmc.view_notification"),
    "retry": ("django_mmc.send_notification", "django_mmc.view_notification"),
    "cancel": ("django_mmc.cancel_notification", "django_mmc.view_notification"),
    "consent": ("django_mmc.change_recipient", "django_mmc.view_recipient"),
    "reply": ("django_mmc.reply_dialogue", "django_mmc.view_dialogue"),
    "open": ("django_mmc.reply_dialogue", "django_mmc.view_dialogue"),
    "close": ("django_mmc.close_dialogue", "django_mmc.view_dialogue"),
    "close_selected": ("django_mmc.close_dialogue", "django_mmc.view_dialogue"),
    "sync": ("django_mmc.sync_directory", "django_mmc.view_channelgroup"),
    "sync_action": ("django_mmc.sync_directory", "django_mmc.view_template"),
    "reprocess": ("django_mmc.reprocess_webhookevent", "django_mmc.view_webhookevent"),
}


def _page_and_marker(operation: str, rows: dict) -> tuple[str, str]:
    """The page that shows the operation's control, and the control."""
    dialogue = reverse("admin:django_mmc_dialogue_change", args=[rows["dialogue"].pk])
    return {
        "send": (reverse("admin:django_mmc_notification_changelist"),
                 'id="mmc-send-notification"'),
        "retry": (reverse("admin:django_mmc_notification_changelist"),
                  'value="retry_notifications"'),
        "cancel": (reverse("admin:django_mmc_notification_changelist"),
                   'value="cancel_notifications"'),
        "consent": (reverse("admin:django_mmc_recipient_change", args=[rows["recipient"].pk]),
                    'id="mmc-opt-out-whatsapp"'),
        "reply": (dialogue, 'id="mmc-reply-text"'),
        "open": (reverse("admin:django_mmc_dialogue_changelist"), 'id="mmc-open-dialogue"'),
        "close": (dialogue, 'id="mmc-close-dialogue"'),
        "close_selected": (reverse("admin:django_mmc_dialogue_changelist"),
                           'value="close_selected"'),
        "sync": (reverse("admin:django_mmc_channelgroup_changelist"),
                 'id="mmc-sync-directory"'),
        "sync_action": (reverse("admin:django_mmc_template_changelist"),
                        'value="sync_from_platform"'),
        "reprocess": (reverse("admin:django_mmc_webhookevent_changelist"),
                      'value="process_again"'),
    }[operation]


def _forge(client: Any, operation: str, rows: dict, directory: dict) -> Any:
    """The POST that performs the operation, as a forged request would."""
    def action(model: str, name: str, obj: Any) -> Any:
        return client.post(reverse(f"admin:django_mmc_{model}_changelist"),
                           {"action": name, "_selected_action": [obj.pk]})

    dialogue = rows["dialogue"]
    if operation == "send":
        return client.post(reverse(SEND_URL), send_data(directory))
    if operation == "retry":
        return action("notification", "retry_notifications", rows["notification"])
    if operation == "cancel":
        return action("notification", "cancel_notifications", rows["scheduled"])
    if operation == "consent":
        return client.post(reverse("admin:django_mmc_recipient_consent",
                                   args=[rows["recipient"].pk]),
                           {"channel_type": "WHATSAPP", "opted_out": "1"})
    if operation == "reply":
        return client.post(reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk]),
                           {"text": "forged"})
    if operation == "open":
        return client.post(reverse("admin:django_mmc_dialogue_open"),
                           {"to": OTHER_NUMBER, "agent": "support"})
    if operation == "close":
        return client.post(reverse("admin:django_mmc_dialogue_close", args=[dialogue.pk]))
    if operation == "close_selected":
        return action("dialogue", "close_selected", dialogue)
    if operation == "sync":
        return client.post(reverse("admin:django_mmc_channelgroup_sync"))
    if operation == "sync_action":
        return action("template", "sync_from_platform", rows["template"])
    if operation == "reprocess":
        return action("webhookevent", "process_again", rows["event"])
    raise AssertionError(operation)


def _nothing_happened(operation: str, rows: dict) -> bool:
    dialogue = Dialogue.objects.get(pk=rows["dialogue"].pk)
    return {
        "send": Notification.objects.count() == 2,
        "retry": Notification.objects.count() == 2,
        "cancel": Notification.objects.get(pk=rows["scheduled"].pk).status == Status.SCHEDULED,
        "consent": Recipient.objects.get(pk=rows["recipient"].pk).opted_out_channel_types
        == ["SMS"],
        "reply": not Message.objects.filter(text="forged").exists(),
        "open": Dialogue.objects.count() == 1,
        "close": dialogue.status == DialogueStatus.OPEN,
        "close_selected": dialogue.status == DialogueStatus.OPEN,
        "sync": True,
        "sync_action": True,
        "reprocess": WebhookEvent.objects.get().state == WebhookEvent.State.PROCESSED,
    }[operation]


@pytest.fixture
def harmless_platform(monkeypatch: Any) -> None:
    monkeypatch.setattr("django_mmc.directory.sync_directory",
                        lambda: {"channel_groups": 0, "channels": 0, "templates": 0})
    monkeypatch.setattr("django_mmc.dispatch.enqueue", lambda *a, **k: True)


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("who", ["superuser", "staff_with", "staff_without", "anonymous"])
def test_permission_matrix(client: Any, django_user_model: Any, rows: dict, directory: dict,
                           harmless_platform: None, operation: str, who: str) -> None:
    permission, view = OPERATIONS[operation]
    if who == "superuser":
        user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    elif who == "staff_with":
        user = make_user(django_user_model, "with", permission, view)
    elif who == "staff_without":
        user = make_user(django_user_model, "without", view)
    else:
        user = None
    if user is not None:
        client.force_login(user)
    rows["scheduled"] = make_notification(
        directory, OTHER_NUMBER, status=Status.SCHEDULED,
        send_at=timezone.now() + timedelta(hours=1))
    page_url, marker = _page_and_marker(operation, rows)
    page = client.get(page_url)
    response = _forge(client, operation, rows, directory)

    if who == "anonymous":
        assert page.status_code == 302 and "/login/" in page["Location"]
        assert response.status_code == 302 and "/login/" in response["Location"]
        assert _nothing_happened(operation, rows)
    elif who == "staff_without":
        assert page.status_code == 200
        assert marker not in page.content.decode()
        assert response.status_code == 403
        assert _nothing_happened(operation, rows)
    else:
        assert page.status_code == 200
        assert marker in page.content.decode()
        assert response.status_code in (200, 302)
        if operation not in ("sync", "sync_action"):
            assert not _nothing_happened(operation, rows)


def test_view_only_staff_sees_lists_but_no_controls(client: Any, django_user_model: Any,
                                                     rows: dict) -> None:
    user = make_user(django_user_model, "viewer", *[
        f"django_mmc.view_{m}" for m in MODELS])
    client.force_login(user)
    for model in MODELS:
        response = client.get(reverse(f"admin:django_mmc_{model}_changelist"))
        assert response.status_code == 200
        html = response.content.decode()
        for marker in ('id="mmc-send-notification"', 'id="mmc-open-dialogue"',
                       'id="mmc-sync-directory"', 'value="retry_notifications"',
                       'value="close_selected"', 'value="process_again"',
                       'value="sync_from_platform"', 'value="delete_selected"'):
            assert marker not in html, (model, marker)
    # Refreshing statuses is reading: allowed with the view permission.
    html = client.get(reverse("admin:django_mmc_notification_changelist")).content.decode()
    assert 'value="refresh_status"' in html


# -- secrets ------------------------------------------------------------------------------------

SECRETS = {
    "CLIENT_SECRET": "client-secret-Zq81xVb2",
    "support": "whsec-support-Pw93mLx7",
    "support-old": "whsec-support-old-Tk52nQe4",
    "sales": "whsec-sales-Rj60sHd1",
}


def test_no_secret_appears_in_any_admin_page(admin_client: Any, rows: dict, settings: Any
                                             ) -> None:
    mmc = dict(settings.MMC)
    mmc["CLIENT_SECRET"] = SECRETS["CLIENT_SECRET"]
    mmc["AGENTS"] = {
        "support": {"ID": "17", "WEBHOOK_SECRETS": [SECRETS["support"], SECRETS["support-old"]]},
        "sales": {"ID": "18", "WEBHOOK_SECRETS": [SECRETS["sales"]]},
    }
    settings.MMC = mmc
    urls = [reverse("admin:index"), reverse("admin:app_list", args=["django_mmc"]),
            reverse(SEND_URL), reverse(SEND_URL) + f"?template={rows['template'].pk}",
            reverse("admin:django_mmc_dialogue_open"), reverse("admin:django_mmc_recipient_add")]
    for model in MODELS:
        urls.append(reverse(f"admin:django_mmc_{model}_changelist"))
        urls.append(reverse(f"admin:django_mmc_{model}_change", args=[rows[ROW_OF[model]].pk]))
        urls.append(reverse(f"admin:django_mmc_{model}_history", args=[rows[ROW_OF[model]].pk]))
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in SECRETS.values():
            assert secret not in html, (url, secret)
    # Error pages of the views, too.
    response = admin_client.post(reverse(SEND_URL), {"to": "x", "template": "1"})
    for secret in SECRETS.values():
        assert secret not in response.content.decode()


# -- query counts ------------------------------------------------------------------------------


def _changelist_queries(client: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        assert response.status_code == 200
    return len(queries)


def test_notification_changelist_queries_do_not_grow_with_rows(
        admin_client: Any, directory: dict, django_user_model: Any) -> None:
    sender = django_user_model.objects.create_user("sender", password="pw")
    url = reverse("admin:django_mmc_notification_changelist")

    def add(count: int) -> None:
        for i in range(count):
            make_notification(
                directory, f"+35386{1000000 + Notification.objects.count():07d}",
                status=[Status.QUEUED, Status.DELIVERED, Status.FAILED][i % 3],
                channel_group=[directory["support"], directory["sales"]][i % 2],
                template=[directory["order_shipped"], directory["otp"]][i % 2],
                created_by=sender if i % 2 else None, failure_code="X" if i % 3 == 2 else "")

    add(5)
    admin_client.get(url)  # warm the session and content-type caches
    five = _changelist_queries(admin_client, url)
    add(45)
    fifty = _changelist_queries(admin_client, url)
    assert Notification.objects.count() == 50
    assert five == fifty


@pytest.mark.parametrize("model", ["dialogue", "message", "webhookevent", "recipient",
                                   "channelgroup", "template", "consentchange"])
def test_other_changelists_queries_do_not_grow_with_rows(admin_client: Any, directory: dict,
                                                         model: str) -> None:
    url = reverse(f"admin:django_mmc_{model}_changelist")
    counter = iter(range(10_000))

    def add(count: int) -> None:
        for _ in range(count):
            i = next(counter)
            number = f"+35386{2000000 + i:07d}"
            if model in ("dialogue", "message"):
                dialogue = make_dialogue(directory, number, platform_id=f"d{i}")
                Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                                       text=f"m{i}", status=Status.SENT)
            elif model == "webhookevent":
                make_event(f"evt_{i}")
            elif model == "recipient":
                Recipient.objects.for_number(number)
            elif model == "consentchange":
                api.set_consent(number, "SMS", True, source="API")
            elif model == "channelgroup":
                from django_mmc.models import Channel, ChannelGroup

                group = ChannelGroup.objects.create(platform_id=f"g{i}", name=f"G{i}")
                Channel.objects.create(platform_id=f"c{i}", group=group, channel_type="SMS")
            else:
                from django_mmc.models import Template

                Template.objects.create(platform_id=f"t{i}", name=f"t{i}",
                                        parameters=[{"name": "a", "required": True}])

    add(3)
    admin_client.get(url)
    few = _changelist_queries(admin_client, url)
    add(20)
    many = _changelist_queries(admin_client, url)
    assert few == many


# -- scheduling, cancelling, templates in dialogues, consent ------------------------------------


def test_send_form_options_schedule_and_prioritise(admin_client: Any, directory: dict) -> None:
    later = timezone.localtime() + timedelta(hours=2)
    response = admin_client.post(reverse(SEND_URL), send_data(
        directory, priority="now", send_at=later.strftime("%Y-%m-%dT%H:%M")))
    assert response.status_code == 302
    notification = Notification.objects.get()
    assert notification.status == Status.SCHEDULED
    assert notification.priority == Priority.NOW
    assert abs((notification.send_at - later).total_seconds()) < 60


def test_send_form_reports_time_errors_on_their_fields(admin_client: Any, directory: dict
                                                       ) -> None:
    later = timezone.localtime() + timedelta(hours=2)
    response = admin_client.post(reverse(SEND_URL), send_data(
        directory, send_at=later.strftime("%Y-%m-%dT%H:%M"),
        expires_at=(later - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")))
    assert response.status_code == 200
    assert "expires_at" in response.context["form"].errors
    assert Notification.objects.count() == 0


def test_cancel_action_message(admin_client: Any, directory: dict) -> None:
    scheduled = make_notification(directory, status=Status.SCHEDULED,
                                  send_at=timezone.now() + timedelta(hours=1))
    queued = make_notification(directory, OTHER_NUMBER, status=Status.QUEUED)
    delivered = make_notification(directory, status=Status.DELIVERED, platform_id="9")
    response = run_action(admin_client, "notification", "cancel_notifications",
                          [scheduled, queued, delivered])
    assert ("2 notifications cancelled; 1 skipped: Only scheduled or waiting notifications "
            "can be cancelled") in follow_messages(response)
    assert fresh(scheduled).status == Status.CANCELLED
    assert fresh(delivered).status == Status.DELIVERED
    listing = admin_client.get(reverse("admin:django_mmc_notification_changelist"))
    assert 'class="mmc-status mmc-status-cancelled"' in listing.content.decode()


def fresh(obj: Any) -> Any:
    obj.refresh_from_db()
    return obj


def test_care_window_and_template_reply(admin_client: Any, directory: dict,
                                        admin_user: Any) -> None:
    # Opened by us, the recipient never wrote: WhatsApp takes only templates.
    dialogue = make_dialogue(directory)
    url = reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk])
    html = admin_client.get(url).content.decode()
    assert 'id="mmc-care-window"' in html
    assert 'id="mmc-reply-template"' in html
    assert "appointment_reminder" in html  # a WhatsApp template is offered
    reply = reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk])
    refused = admin_client.post(reply, {"text": "Hello"}, follow=True)
    assert any("only a template" in m for m in follow_messages(refused))
    assert not dialogue.messages.exists()

    template = directory["order_shipped"]
    chosen = admin_client.get(url, {"reply_template": template.pk}).content.decode()
    assert 'name="param_first_name"' in chosen and 'id="mmc-send-template-reply"' in chosen
    missing = admin_client.post(reply, {"template": template.pk, "param_first_name": ""})
    assert missing["Location"].endswith(f"?reply_template={template.pk}#mmc-template-reply")
    assert not dialogue.messages.exists()
    sent = admin_client.post(reply, {"template": template.pk, "param_first_name": "Ann"},
                             follow=True)
    message = dialogue.messages.get()
    assert message.template == template and message.context == {"first_name": "Ann"}
    assert message.created_by == admin_user
    assert any("template message is queued" in m for m in follow_messages(sent))
    transcript = admin_client.get(url).content.decode()
    assert "Hi Ann, your order is on its way" in transcript


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


def test_the_fallback_chain_is_shown_on_both_notifications(admin_client, directory):
    import django_mmc
    from django_mmc.models import Notification

    first = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                         channel_type="WHATSAPP", fallback=["WHATSAPP", "SMS"])
    Notification.objects.filter(pk=first.pk).update(status="FAILED",
                                                    failure_code="NOT_ON_CHANNEL")
    from django_mmc.sending import start_fallback

    follow_up = start_fallback(first.pk)
    assert follow_up is not None
    for row in (first, follow_up):
        page = admin_client.get(f"/admin/django_mmc/notification/{row.pk}/change/")
        html = page.content.decode()
        assert "fallback chain" in html.lower()
        chain = html[html.lower().index("fallback chain"):]
        assert chain.index("WHATSAPP") < chain.index("SMS")
        assert "(this one)" in chain
