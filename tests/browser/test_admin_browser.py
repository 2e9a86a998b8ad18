"""Staff use the admin in a real Chromium, against the live server, a real
Celery worker and the sandbox. The screenshots go to the admin guide."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission, User

from django_mmc.models import Dialogue, Message, Notification
from django_mmc.status import DialogueStatus, Direction, Status

from .conftest import screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PASSWORD = "a-long-test-password-1"


def log_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def reload_until(page, selector: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.locator(selector).count():
            return
        time.sleep(0.3)
        page.reload()
    raise AssertionError(f"{selector} did not appear on {page.url} within {timeout}s")


@pytest.fixture
def staff(transactional_db):
    return User.objects.create_superuser("staff", "staff@example.com", PASSWORD)


def test_staff_send_a_notification_and_watch_it_delivered(mmc_stack, staff, page):
    base = mmc_stack.live_server_url
    log_in(page, base, "staff")
    page.goto(f"{base}/admin/django_mmc/notification/")
    page.click("#mmc-send-notification")
    page.fill("#mmc-to", "+353861234567")
    page.select_option("#mmc-template", label="order_shipped")
    # With JavaScript the form reloads itself with the template's parameters
    # (without it, the "Show its parameters" button does the same).
    page.wait_for_selector("input[name=param_first_name]")
    assert page.input_value("#mmc-to") == "+353861234567"
    page.fill("input[name=param_first_name]", "Ann")
    assert "Hi" in page.inner_text("#mmc-template-preview")
    screenshot(page, "send-notification")
    page.click("#mmc-send")
    page.wait_for_url("**/django_mmc/notification/*/change/")
    notification = Notification.objects.get()
    assert notification.created_by == staff
    assert notification.context == {"first_name": "Ann"}
    reload_until(page, ".mmc-status-delivered, .mmc-status-read")
    screenshot(page, "notification")
    page.goto(f"{base}/admin/django_mmc/notification/")
    assert page.locator(".mmc-status-read, .mmc-status-delivered").count() == 1
    assert Notification.objects.get().status in (Status.DELIVERED, Status.READ)


def test_staff_hold_a_dialogue_with_the_customer(mmc_stack, staff, page):
    base = mmc_stack.live_server_url
    log_in(page, base, "staff")
    page.goto(f"{base}/admin/django_mmc/dialogue/")
    page.click("#mmc-open-dialogue")
    page.fill("#mmc-to", "+353861234567")
    page.click("#mmc-open-dialogue-submit")
    page.wait_for_url("**/django_mmc/dialogue/*/change/")
    dialogue = Dialogue.objects.get()
    mmc_stack.wait_for(lambda: Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.OPEN,
                       message="the dialogue to open")
    mmc_stack.sandbox.reply("+353861234567", "Where is my parcel?")
    reload_until(page, ".mmc-message-inbound")
    assert "Where is my parcel?" in page.inner_text("#mmc-transcript")
    page.fill("#mmc-reply-text", "It left the warehouse this morning.")
    page.click("#mmc-send-reply")
    reload_until(page, ".mmc-message-outbound")
    assert "It left the warehouse" in page.inner_text("#mmc-transcript")
    mmc_stack.wait_for(
        lambda: Message.objects.filter(direction=Direction.OUTBOUND,
                                       status__in=(Status.DELIVERED, Status.READ)).exists(),
        message="the reply to be delivered")
    page.reload()
    screenshot(page, "dialogue")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#mmc-close-dialogue")
    mmc_stack.wait_for(
        lambda: Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.CLOSED,
        message="the dialogue to close")
    page.reload()
    assert page.locator("#mmc-close-dialogue").count() == 0
    assert page.locator(".mmc-status-closed").count() >= 1
    assert [d["status"] for d in mmc_stack.sandbox.dialogues()] == ["CLOSED"]


def test_staff_without_send_permission_see_no_button_and_cannot_forge(mmc_stack, page):
    clerk = User.objects.create_user("clerk", "clerk@example.com", PASSWORD, is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_notification"))
    base = mmc_stack.live_server_url
    log_in(page, base, "clerk")
    page.goto(f"{base}/admin/django_mmc/notification/")
    assert page.locator("#mmc-send-notification").count() == 0
    assert page.locator("select[name=action] option[value=retry_notifications]").count() == 0
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    answer = page.request.post(
        f"{base}/admin/django_mmc/notification/send/",
        form={"csrfmiddlewaretoken": token, "to": "+353861234567", "_send": "1"},
        headers={"Referer": f"{base}/admin/django_mmc/notification/"},
    )
    assert answer.status == 403
    assert Notification.objects.count() == 0
