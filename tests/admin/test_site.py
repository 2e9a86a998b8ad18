"""What every django_mmc admin page shares: pages render, platform-owned
rows stay read-only, the permission matrix, view-only staff, no secret on any
page, query counts that do not grow with the rows, the admin's own 403 page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from django_mmc import api
from django_mmc.models import (
    Dialogue,
    Message,
    Notification,
    Recipient,
    WebhookEvent,
)
from django_mmc.status import DialogueStatus, Direction, Status
from tests.admin.helpers import (
    MODELS,
    OTHER_NUMBER,
    ROW_OF,
    SEND_URL,
    changelist_queries,
    make_dialogue,
    make_event,
    make_notification,
    make_user,
    send_data,
)

pytestmark = pytest.mark.django_db


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


def test_platform_owned_rows_cannot_be_added_changed_or_deleted(admin_client: Any, rows: dict
                                                               ) -> None:
    for model in ("notification", "dialogue", "message", "webhookevent", "channelgroup",
                  "template", "consentchange"):
        # Channel groups and templates the platform does not list are
        # entered by hand (tests/test_directory_without_discovery.py); a
        # synced one is never changed or deleted here.
        if model not in ("channelgroup", "template"):
            add = admin_client.get(reverse(f"admin:django_mmc_{model}_add"))
            assert add.status_code == 403
            assert 'id="mmc-forbidden"' in add.content.decode()  # the admin's own 403 page
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


#: A recipient nobody has written to: one that can be forgotten at once.
QUIET_NUMBER = "+353861234569"


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
    "refresh": ("django_mmc.send_notification", "django_mmc.view_notification"),
    "retry_button": ("django_mmc.send_notification", "django_mmc.view_notification"),
    "process_again_button": ("django_mmc.reprocess_webhookevent",
                             "django_mmc.view_webhookevent"),
    "claim": ("django_mmc.reply_dialogue", "django_mmc.view_dialogue"),
    "claim_selected": ("django_mmc.reply_dialogue", "django_mmc.view_dialogue"),
    "forget": ("django_mmc.delete_recipient", "django_mmc.view_recipient"),
    "forget_selected": ("django_mmc.delete_recipient", "django_mmc.view_recipient"),
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
        "refresh": (reverse("admin:django_mmc_notification_changelist"),
                    'value="refresh_status"'),
        "retry_button": (reverse("admin:django_mmc_notification_change",
                                 args=[rows["notification"].pk]), 'id="mmc-retry"'),
        "process_again_button": (reverse("admin:django_mmc_webhookevent_change",
                                         args=[rows["failed_event"].pk]),
                                 'id="mmc-process-again"'),
        "claim": (dialogue, 'id="mmc-claim-dialogue"'),
        "claim_selected": (reverse("admin:django_mmc_dialogue_changelist"),
                           'value="claim_selected"'),
        "forget": (reverse("admin:django_mmc_recipient_change", args=[rows["quiet"].pk]),
                   'id="mmc-forget-recipient"'),
        "forget_selected": (reverse("admin:django_mmc_recipient_changelist"),
                            'value="forget_selected"'),
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
    if operation == "refresh":
        return action("notification", "refresh_status", rows["accepted"])
    if operation == "retry_button":
        return client.post(reverse("admin:django_mmc_notification_retry",
                                   args=[rows["notification"].pk]))
    if operation == "process_again_button":
        return client.post(reverse("admin:django_mmc_webhookevent_process_again",
                                   args=[rows["failed_event"].pk]))
    if operation == "claim":
        return client.post(reverse("admin:django_mmc_dialogue_claim", args=[dialogue.pk]),
                           {"claim": "1"})
    if operation == "claim_selected":
        return action("dialogue", "claim_selected", dialogue)
    if operation == "forget":
        return client.post(reverse("admin:django_mmc_recipient_forget",
                                   args=[rows["quiet"].pk]), {"post": "yes"})
    if operation == "forget_selected":
        return client.post(reverse("admin:django_mmc_recipient_changelist"), {
            "action": "forget_selected", "_selected_action": [rows["quiet"].pk],
            "post": "yes"})
    raise AssertionError(operation)


def _nothing_happened(operation: str, rows: dict) -> bool:
    dialogue = Dialogue.objects.get(pk=rows["dialogue"].pk)
    return {
        "send": Notification.objects.count() == 3,
        "retry": Notification.objects.count() == 3,
        "cancel": Notification.objects.get(pk=rows["scheduled"].pk).status == Status.SCHEDULED,
        "consent": Recipient.objects.get(pk=rows["recipient"].pk).opted_out_channel_types
        == ["SMS"],
        "reply": not Message.objects.filter(text="forged").exists(),
        "open": Dialogue.objects.count() == 1,
        "close": dialogue.status == DialogueStatus.OPEN,
        "close_selected": dialogue.status == DialogueStatus.OPEN,
        "sync": True,
        "sync_action": True,
        "reprocess": WebhookEvent.objects.get(pk=rows["event"].pk).state
        == WebhookEvent.State.PROCESSED,
        "refresh": Notification.objects.get(pk=rows["accepted"].pk).status == Status.ACCEPTED,
        "retry_button": Notification.objects.count() == 3,
        "process_again_button": WebhookEvent.objects.get(pk=rows["failed_event"].pk).state
        == WebhookEvent.State.FAILED,
        "claim": dialogue.assigned_to_id is None,
        "claim_selected": dialogue.assigned_to_id is None,
        "forget": Recipient.objects.get(pk=rows["quiet"].pk).phone_number == QUIET_NUMBER,
        "forget_selected": Recipient.objects.get(pk=rows["quiet"].pk).phone_number
        == QUIET_NUMBER,
    }[operation]


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
    rows["accepted"] = make_notification(directory, OTHER_NUMBER, status=Status.ACCEPTED,
                                         platform_id="601")
    rows["failed_event"] = make_event("evt_failed", WebhookEvent.State.FAILED)
    rows["quiet"] = Recipient.objects.for_number(QUIET_NUMBER)
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
        # The admin's own page, not Django's bare one.
        assert 'id="mmc-forbidden"' in response.content.decode()
        assert 'id="site-name"' in response.content.decode()
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
                       'value="sync_from_platform"', 'value="delete_selected"',
                       'value="refresh_status"', 'value="claim_selected"',
                       'value="forget_selected"', 'id="mmc-claim-dialogue"'):
            assert marker not in html, (model, marker)
    # Refreshing statuses asks the platform: not for view-only staff.
    html = client.get(reverse("admin:django_mmc_notification_changelist")).content.decode()
    assert 'value="refresh_status"' not in html


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
    few = changelist_queries(admin_client, url)
    add(20)
    many = changelist_queries(admin_client, url)
    assert few == many
