"""The notifications admin: the list, the page, the send view and the Retry,
Cancel and Refresh actions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib import messages
from django.urls import reverse
from django.utils import timezone

from django_mmc.exceptions import MMCAPIError
from django_mmc.models import (
    Notification,
    Recipient,
)
from django_mmc.status import Priority, Status
from tests.admin.helpers import (
    NUMBER,
    OTHER_NUMBER,
    SEND_URL,
    FakeClient,
    changelist_queries,
    follow_messages,
    fresh,
    make_notification,
    make_user,
    run_action,
    send_data,
)

pytestmark = pytest.mark.django_db


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


def test_retry_action_message(admin_client: Any, directory: dict) -> None:
    failed = make_notification(directory, status=Status.FAILED, platform_id="1")
    refused = make_notification(directory, OTHER_NUMBER, status=Status.REFUSED)
    delivered = make_notification(directory, status=Status.DELIVERED, platform_id="2")
    response = run_action(admin_client, "notification", "retry_notifications",
                          [failed, refused, delivered])
    text = follow_messages(response)[0]
    assert text.startswith("2 notifications retried (")
    assert text.endswith("; 1 skipped: Only failed, refused or unsent notifications can be "
                         "retried")
    new = Notification.objects.filter(retry_of__in=[failed, refused]).order_by("pk")
    assert new.count() == 2
    # The message bar links to the new notifications.
    for notification in new:
        url = reverse("admin:django_mmc_notification_change", args=[notification.pk])
        assert f'<a href="{url}">notification {notification.pk}</a>' in text


def test_retry_action_requeues_error_rows(admin_client: Any, directory: dict) -> None:
    error = make_notification(directory, status=Status.ERROR, attempts=8)
    response = run_action(admin_client, "notification", "retry_notifications", [error])
    assert follow_messages(response)[0].startswith("1 notification retried (")
    error.refresh_from_db()
    assert error.status == Status.QUEUED and error.attempts == 0
    assert Notification.objects.count() == 1


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
    five = changelist_queries(admin_client, url)
    add(45)
    fifty = changelist_queries(admin_client, url)
    assert Notification.objects.count() == 50
    assert five == fifty


def test_the_fallback_chain_is_shown_on_both_notifications(admin_client, directory):
    import django_mmc
    from django_mmc.models import Notification

    first = django_mmc.send_notification("+15005550002", "otp", {"code": "1"},
                                         channel_type="WHATSAPP", fallback=["WHATSAPP", "SMS"])
    Notification.objects.filter(pk=first.pk).update(status="FAILED",
                                                    failure_code="NOT_ON_CHANNEL")
    from django_mmc.workers.fallback import start_fallback

    follow_up = start_fallback(first.pk)
    assert follow_up is not None
    for row in (first, follow_up):
        page = admin_client.get(f"/admin/django_mmc/notification/{row.pk}/change/")
        html = page.content.decode()
        assert "fallback chain" in html.lower()
        chain = html[html.lower().index("fallback chain"):]
        assert chain.index("WHATSAPP") < chain.index("SMS")
        assert "(this one)" in chain


# -- the admin at work: dense lists, exact times, the text as sent, actions on the page --


def test_the_list_is_dense_and_the_status_cell_has_its_time_and_failure(
        admin_client: Any, directory: dict) -> None:
    at = timezone.now().replace(microsecond=0)
    make_notification(directory, status=Status.FAILED, failure_code="RECIPIENT_UNREACHABLE",
                      failure_detail="Switched off.", status_changed_at=at)
    Notification.objects.update(status_changed_at=at)
    response = admin_client.get(reverse("admin:django_mmc_notification_changelist"))
    assert len(response.context["cl"].list_display) <= 6  # the checkbox and five columns
    html = response.content.decode()
    assert f'{timezone.localtime(at):%Y-%m-%d %H:%M:%S}' in html
    cell = html[html.index('class="mmc-cell"'):]
    assert cell.index("mmc-status-failed") < cell.index("RECIPIENT_UNREACHABLE")


def test_the_status_history_is_ordered_to_the_second(admin_client: Any, directory: dict
                                                     ) -> None:
    base = timezone.now().replace(second=0, microsecond=0)
    notification = make_notification(directory, status=Status.READ, platform_id="9")
    Notification.objects.filter(pk=notification.pk).update(
        created_at=base, accepted_at=base + timedelta(seconds=1),
        sent_at=base + timedelta(seconds=2), delivered_at=base + timedelta(seconds=3),
        read_at=base + timedelta(seconds=4))
    html = admin_client.get(reverse("admin:django_mmc_notification_change",
                                    args=[notification.pk])).content.decode()
    history = html[html.index('class="mmc-history"'):]
    history = history[:history.index("</ol>")]
    positions = [history.index(f"{timezone.localtime(base) + timedelta(seconds=s):%H:%M:%S} "
                               "UTC") for s in range(5)]
    assert positions == sorted(positions)
    labels = [history.index(label) for label in ("Created", "Accepted", "Sent", "Delivered",
                                                  "Read")]
    assert labels == sorted(labels)


def test_the_text_leaves_out_an_optional_parameter_not_given(admin_client: Any,
                                                             directory: dict) -> None:
    notification = make_notification(directory, context={"first_name": "Ann"})
    html = admin_client.get(reverse("admin:django_mmc_notification_change",
                                    args=[notification.pk])).content.decode()
    assert "Hi Ann, your order is on its way:" in html
    assert "{{tracking_url}}" not in html and "{{" not in html.split('id="content"')[1]


def test_retry_on_a_failed_notifications_page_links_to_the_new_one(admin_client: Any,
                                                                   directory: dict) -> None:
    failed = make_notification(directory, status=Status.FAILED, platform_id="1")
    delivered = make_notification(directory, status=Status.DELIVERED, platform_id="2")
    page = reverse("admin:django_mmc_notification_change", args=[failed.pk])
    assert 'id="mmc-retry"' in admin_client.get(page).content.decode()
    other = reverse("admin:django_mmc_notification_change", args=[delivered.pk])
    assert 'id="mmc-retry"' not in admin_client.get(other).content.decode()
    response = admin_client.post(reverse("admin:django_mmc_notification_retry",
                                         args=[failed.pk]), follow=True)
    new = Notification.objects.get(retry_of=failed)
    assert response.redirect_chain[-1][0] == page
    new_url = reverse("admin:django_mmc_notification_change", args=[new.pk])
    assert f'<a href="{new_url}" id="mmc-retried-as">' in response.content.decode()
    # The old page lists what it was retried as.
    assert f'href="{new_url}"' in admin_client.get(page).content.decode()
    refused = admin_client.post(reverse("admin:django_mmc_notification_retry",
                                        args=[delivered.pk]), follow=True)
    assert any("can be retried" in m for m in follow_messages(refused))


def test_refreshing_final_statuses_is_information_not_an_error(
        admin_client: Any, directory: dict, monkeypatch: Any) -> None:
    read = make_notification(directory, status=Status.READ, platform_id="503")
    fake = FakeClient({})
    monkeypatch.setattr("django_mmc.client.get_client", lambda: fake)
    response = run_action(admin_client, "notification", "refresh_status", [read])
    [message] = list(response.context["messages"])
    assert message.level == messages.INFO
    assert "their status is final" in str(message)
    assert fake.calls == []
