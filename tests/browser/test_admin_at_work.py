"""The admin at a support desk's pace, in a real Chromium against the live
server: lists that fit a laptop, times to the second, replies never lost,
actions where the object is, the text as the customer saw it, both colour
schemes readable, and the inbox. The rows are made directly (no worker, no
sandbox): what is checked here is what the browser shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone

from django_mmc.models import Dialogue, Message, Notification, Recipient, WebhookEvent
from django_mmc.status import DialogueStatus, Direction, Status

from .conftest import screenshot
from .test_admin_browser import PASSWORD, log_in

pytestmark = [pytest.mark.browser]

#: The width of a common laptop screen: no list may clip a column there.
LAPTOP = {"width": 1366, "height": 800}

#: WCAG 2 AA for text of the size the admin uses.
AA = 4.5

CONTRAST_JS = """
(selectors) => {
  function parse(text) {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) { return null; }
    const p = m[1].split(",").map((s) => parseFloat(s));
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  }
  function over(top, below) {
    const a = top.a;
    return {r: top.r * a + below.r * (1 - a), g: top.g * a + below.g * (1 - a),
            b: top.b * a + below.b * (1 - a), a: 1};
  }
  function background(el) {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) { break; } }
    }
    let result = {r: 255, g: 255, b: 255, a: 1};
    for (let i = layers.length - 1; i >= 0; i--) { result = over(layers[i], result); }
    return result;
  }
  function luminance(c) {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  }
  const found = [];
  for (const selector of selectors) {
    document.querySelectorAll(selector).forEach((el) => {
      if (!el.offsetParent || !el.textContent.trim()) { return; }
      const bg = background(el);
      const fg = over(parse(getComputedStyle(el).color), bg);
      const l1 = luminance(fg), l2 = luminance(bg);
      found.push({selector: selector, text: el.textContent.trim().slice(0, 40),
                  ratio: (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05),
                  fg: getComputedStyle(el).color, bg: [bg.r, bg.g, bg.b].join(",")});
    });
  }
  return found;
}
"""

CLIPPING_JS = """
() => {
  const doc = document.documentElement;
  const results = document.querySelector(".results");
  const width = doc.clientWidth;
  const headers = Array.from(document.querySelectorAll("#result_list thead th"));
  const right = (el) => Math.round(el.getBoundingClientRect().right);
  return {
    page: [doc.scrollWidth, width],
    results: results ? [results.scrollWidth, results.clientWidth] : null,
    columns: headers.map((th) => [th.textContent.trim(), right(th)]),
    width: results ? right(results) : width,
  };
}
"""


def contrast(page: Any, selectors: list[str]) -> list[dict[str, Any]]:
    return page.evaluate(CONTRAST_JS, selectors)


def assert_readable(page: Any, selectors: list[str], expect: set[str]) -> None:
    found = contrast(page, selectors)
    assert {f["selector"] for f in found} >= expect, found  # each was there to check
    poor = [f for f in found if f["ratio"] < AA]
    assert not poor, poor


def assert_no_column_clipped(page: Any) -> None:
    layout = page.evaluate(CLIPPING_JS)
    assert layout["page"][0] <= layout["page"][1], layout
    if layout["results"] is not None:
        assert layout["results"][0] <= layout["results"][1], layout
    assert layout["columns"], layout
    for name, right in layout["columns"]:
        assert right <= layout["width"], (name, layout)


@pytest.fixture
def staff(transactional_db: Any) -> User:
    return User.objects.create_superuser("staff", "staff@example.com", PASSWORD)


@pytest.fixture
def quiet_platform(monkeypatch: Any) -> None:
    """Nothing is handed to a worker: these tests look at pages, not sends."""
    monkeypatch.setattr("django_mmc.dispatch.enqueue", lambda *a, **k: True)
    monkeypatch.setattr("django_mmc.dispatch.enqueue_on_commit", lambda *a, **k: None,
                        raising=False)


@pytest.fixture
def laptop(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport=LAPTOP)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def desk(directory: dict) -> dict[str, Any]:
    """A support desk's day: notifications in every state, dialogues waiting
    or not, events of each kind, with long names and failures."""
    now = timezone.now().replace(microsecond=0)
    rows: dict[str, Any] = {"notifications": [], "dialogues": []}
    statuses = [Status.READ, Status.DELIVERED, Status.SENT, Status.ACCEPTED, Status.QUEUED,
                Status.SCHEDULED, Status.FAILED, Status.EXPIRED, Status.REFUSED, Status.ERROR,
                Status.CANCELLED]
    for i, status in enumerate(statuses):
        recipient = Recipient.objects.for_number(
            f"+35386{1200000 + i:07d}", name=f"Margaret-Anne Fitzgerald-O'Sullivan {i}")
        notification = Notification.objects.create(
            recipient=recipient, template=directory["order_shipped"],
            channel_group=directory["support"], channel_type="WHATSAPP",
            context={"first_name": "Margaret"}, status=status,
            platform_id=f"7{i:04d}" if status not in (Status.QUEUED, Status.SCHEDULED) else None,
            failure_code="RECIPIENT_UNREACHABLE" if status == Status.FAILED else "",
            failure_detail=("The recipient's handset has been switched off for longer than "
                            "the platform keeps trying to deliver a message.")
            if status == Status.FAILED else "",
        )
        Notification.objects.filter(pk=notification.pk).update(
            created_at=now - timedelta(minutes=3), accepted_at=now - timedelta(seconds=50),
            sent_at=now - timedelta(seconds=49), delivered_at=now - timedelta(seconds=48)
            if status in (Status.DELIVERED, Status.READ) else None,
            read_at=now - timedelta(seconds=47) if status == Status.READ else None,
            failed_at=now - timedelta(seconds=30) if status == Status.FAILED else None,
            status_changed_at=now - timedelta(seconds=30))
        rows["notifications"].append(notification)
    for i, minutes in enumerate((95, 600, 60 * 30, 3)):
        recipient = Recipient.objects.for_number(f"+35386{1300000 + i:07d}",
                                                 name=f"Customer With A Long Name {i}")
        dialogue = Dialogue.objects.create(
            recipient=recipient, agent_key="support", channel_group=directory["support"],
            channel_type="WHATSAPP" if i % 2 == 0 else "SMS", status=DialogueStatus.OPEN,
            platform_id=f"90{i:02d}", opened_at=now - timedelta(minutes=minutes + 5))
        at = now - timedelta(minutes=minutes)
        Message.objects.create(dialogue=dialogue, direction=Direction.INBOUND,
                               text="Hi, where is my order? It was due yesterday.",
                               status=Status.RECEIVED, platform_id=f"55{i:03d}", received_at=at)
        Dialogue.objects.filter(pk=dialogue.pk).update(last_inbound_at=at)
        rows["dialogues"].append(dialogue)
    conflict_recipient = Recipient.objects.for_number("+353861399999")
    Dialogue.objects.create(
        recipient=conflict_recipient, agent_key="support", channel_group=directory["sales"],
        channel_type="WHATSAPP", status=DialogueStatus.CONFLICT, conflict_agent_id="18",
        conflict_dialogue_id="5490")
    for i, (event_type, subject, status) in enumerate([
            ("notification.status", "70000", "READ"), ("notification.status", "70006", "FAILED"),
            ("message.received", "55000", None), ("dialogue.opened", "9000", None),
            ("dialogue.closed", "9001", None), ("message.status", "55001", "DELIVERED")]):
        kind = event_type.split(".")[0]
        attributes = {"eventType": event_type, "occurredAt": now.isoformat()}
        if status:
            attributes["status"] = status
        WebhookEvent.objects.create(
            event_id=f"evt_{i:03d}_0123456789abcdef", agent_key="support",
            event_type=event_type, subject_id=subject, body=json.dumps({"data": {
                "type": "events", "id": f"evt_{i}", "attributes": attributes,
                "relationships": {kind: {"data": {"type": f"{kind}s", "id": subject}}}}}),
            state=WebhookEvent.State.FAILED if i == 1 else WebhookEvent.State.PROCESSED,
            error="Notification 70006 is not known here yet; the platform may have sent the "
                  "event before the send was recorded." if i == 1 else "",
            processed_at=now)
    return rows


LISTS = ["notification", "dialogue", "webhookevent", "message"]


def test_lists_fit_a_laptop_screen(live_server: Any, staff: User, directory: dict,
                                   laptop: Any) -> None:
    desk(directory)
    log_in(laptop, live_server.url, "staff")
    for model in LISTS:
        laptop.goto(f"{live_server.url}/admin/django_mmc/{model}/")
        assert laptop.locator("#result_list tbody tr").count() >= 4, model
        assert_no_column_clipped(laptop)
    laptop.goto(f"{live_server.url}/admin/django_mmc/notification/")
    screenshot(laptop, "notification-list")
    laptop.goto(f"{live_server.url}/admin/django_mmc/webhookevent/")
    screenshot(laptop, "webhook-event-list")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_transcript_badges_and_notices_are_readable_in_both_colour_schemes(
        live_server: Any, staff: User, directory: dict, chromium: Any, scheme: str) -> None:
    rows = desk(directory)
    dialogue = rows["dialogues"][0]
    Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                           text="It left the warehouse this morning.", status=Status.READ,
                           channel_type="WHATSAPP", created_by=staff)
    Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                           template=directory["order_shipped"], context={"first_name": "Ann"},
                           status=Status.FAILED, channel_type="WHATSAPP",
                           failure_code="RECIPIENT_UNREACHABLE",
                           failure_detail="The handset is switched off.")
    Dialogue.objects.filter(pk=dialogue.pk).update(assigned_to=staff)
    closed_window = rows["dialogues"][2]  # the customer wrote 30 hours ago: WhatsApp
    context = chromium.new_context(viewport=LAPTOP, color_scheme=scheme)
    page = context.new_page()
    try:
        log_in(page, live_server.url, "staff")
        page.goto(f"{live_server.url}/admin/django_mmc/dialogue/{dialogue.pk}/change/")
        dark = page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        assert dark == (scheme == "dark")
        assert_readable(page, [
            ".mmc-status", ".mmc-message-text", ".mmc-message-who", ".mmc-message-meta time",
            ".mmc-message-channel", ".mmc-failure strong", "#mmc-claimed-by", ".mmc-waiting",
        ], expect={".mmc-status", ".mmc-message-channel", ".mmc-message-meta time",
                   ".mmc-message-text", ".mmc-failure strong"})
        # The channel label of an outgoing bubble, the one that was unreadable.
        labels = [f for f in contrast(page, [".mmc-message-outbound .mmc-message-channel"])]
        assert labels and min(f["ratio"] for f in labels) >= AA, labels
        if scheme == "dark":
            screenshot(page, "dialogue-dark")
        page.goto(f"{live_server.url}/admin/django_mmc/dialogue/{closed_window.pk}/change/")
        assert_readable(page, [".mmc-care-window", ".mmc-status"],
                        expect={".mmc-care-window"})
        for model in ("notification", "dialogue", "webhookevent"):
            page.goto(f"{live_server.url}/admin/django_mmc/{model}/")
            assert_readable(page, [".mmc-status", ".mmc-cell-time", ".mmc-failure strong",
                                   ".mmc-conflict", ".mmc-care-closed", ".mmc-muted"],
                            expect={".mmc-status"})
        page.goto(f"{live_server.url}/admin/django_mmc/dialogue/?waiting=1")
        assert_readable(page, [".mmc-waiting", ".mmc-care-closed", ".mmc-muted"],
                        expect={".mmc-waiting", ".mmc-care-closed"})
    finally:
        context.close()


def test_times_to_the_second_in_the_history_and_the_transcript(
        live_server: Any, staff: User, directory: dict, laptop: Any) -> None:
    rows = desk(directory)
    read = rows["notifications"][0]
    log_in(laptop, live_server.url, "staff")
    laptop.goto(f"{live_server.url}/admin/django_mmc/notification/{read.pk}/change/")
    history = laptop.inner_text(".mmc-history")
    steps = [line for line in history.splitlines() if line.strip()]
    assert [s.split()[0] for s in steps] == ["Created", "Accepted", "Sent", "Delivered", "Read"]
    times = [s.split()[-2] for s in steps]
    assert times == sorted(times) and all(len(t) == 8 for t in times)  # HH:MM:SS
    assert all(s.endswith("UTC") for s in steps)
    dialogue = rows["dialogues"][0]
    laptop.goto(f"{live_server.url}/admin/django_mmc/dialogue/{dialogue.pk}/change/")
    stamp = laptop.inner_text(".mmc-message-meta time")
    assert stamp.endswith(" UTC") and len(stamp.split()[1]) == 8


def test_a_refused_reply_stays_in_the_box_and_closing_asks_first(
        live_server: Any, staff: User, directory: dict, laptop: Any,
        quiet_platform: None) -> None:
    dialogue = desk(directory)["dialogues"][0]  # WhatsApp, the customer wrote 95 minutes ago
    url = f"{live_server.url}/admin/django_mmc/dialogue/{dialogue.pk}/change/"
    log_in(laptop, live_server.url, "staff")
    laptop.goto(url)
    assert laptop.get_attribute("#mmc-reply-text", "readonly") is None
    text = "Your parcel is with the courier; it arrives tomorrow before noon."
    laptop.fill("#mmc-reply-text", text)
    # Meanwhile the care window closes (the customer wrote 25 hours ago).
    long_ago = timezone.now() - timedelta(hours=25)
    Message.objects.filter(dialogue=dialogue).update(received_at=long_ago)
    Dialogue.objects.filter(pk=dialogue.pk).update(last_inbound_at=long_ago)
    laptop.click("#mmc-send-reply")
    laptop.wait_for_url("**#mmc-reply-form")
    assert laptop.input_value("#mmc-reply-text") == text  # not lost
    assert "only a template" in laptop.inner_text("#mmc-reply-form .errorlist")
    # The box now says why it is off.
    assert laptop.get_attribute("#mmc-reply-text", "readonly") is not None
    assert laptop.is_disabled("#mmc-send-reply")
    assert laptop.is_visible("#mmc-care-window")
    screenshot(laptop, "dialogue-reply-refused")
    assert not Message.objects.filter(direction=Direction.OUTBOUND).exists()

    asked = []
    laptop.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    laptop.click("#mmc-close-dialogue")
    laptop.wait_for_timeout(300)
    assert asked and "Close this dialogue?" in asked[0]
    assert Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.OPEN
    laptop.once("dialog", lambda d: d.accept())
    laptop.click("#mmc-close-dialogue")
    laptop.wait_for_selector(".messagelist .success")
    assert Dialogue.objects.get(pk=dialogue.pk).status == DialogueStatus.CLOSING


def test_actions_where_the_object_is(live_server: Any, staff: User, directory: dict,
                                     laptop: Any, quiet_platform: None) -> None:
    rows = desk(directory)
    failed = rows["notifications"][6]
    log_in(laptop, live_server.url, "staff")
    laptop.goto(f"{live_server.url}/admin/django_mmc/notification/{failed.pk}/change/")
    laptop.click("#mmc-retry")
    laptop.click("#mmc-retried-as")
    new = Notification.objects.get(retry_of=failed)
    laptop.wait_for_url(f"**/notification/{new.pk}/change/")
    event = WebhookEvent.objects.get(state=WebhookEvent.State.FAILED)
    laptop.goto(f"{live_server.url}/admin/django_mmc/webhookevent/{event.pk}/change/")
    laptop.click("#mmc-process-again")
    laptop.wait_for_selector(".messagelist .success")
    assert WebhookEvent.objects.get(pk=event.pk).state == WebhookEvent.State.PENDING
    # Refreshing rows whose status is final is information, not an error.
    laptop.goto(f"{live_server.url}/admin/django_mmc/notification/")
    read = rows["notifications"][0]
    laptop.check(f"input[name=_selected_action][value='{read.pk}']")
    laptop.select_option("select[name=action]", "refresh_status")
    laptop.click("button[name=index]")
    laptop.wait_for_selector(".messagelist li")
    assert "their status is final" in laptop.inner_text(".messagelist .info")
    assert laptop.locator(".messagelist .error").count() == 0


def test_view_only_staff_get_no_platform_action_and_the_admins_403(
        live_server: Any, directory: dict, laptop: Any) -> None:
    desk(directory)
    clerk = User.objects.create_user("clerk", "clerk@example.com", PASSWORD, is_staff=True)
    clerk.user_permissions.add(*Permission.objects.filter(
        content_type__app_label="django_mmc", codename__startswith="view_"))
    log_in(laptop, live_server.url, "clerk")
    laptop.goto(f"{live_server.url}/admin/django_mmc/notification/")
    options = laptop.locator("select[name=action] option").all_inner_texts()
    assert not any("Refresh" in o or "Retry" in o or "Cancel" in o for o in options), options
    screenshot(laptop, "notification-list-view-only")
    answer = laptop.goto(f"{live_server.url}/admin/django_mmc/notification/send/")
    assert answer.status == 403
    assert laptop.is_visible("#site-name") and laptop.is_visible("#mmc-forbidden")
    assert laptop.is_visible("#user-tools")  # still inside the admin


def test_the_text_as_the_customer_saw_it(live_server: Any, staff: User, directory: dict,
                                         laptop: Any) -> None:
    rows = desk(directory)
    log_in(laptop, live_server.url, "staff")
    notification = rows["notifications"][1]  # sent without the optional tracking_url
    laptop.goto(f"{live_server.url}/admin/django_mmc/notification/{notification.pk}/change/")
    text = laptop.inner_text(".mmc-preview")
    assert text.startswith("Hi Margaret, your order is on its way") and "{{" not in text
    dialogue = rows["dialogues"][0]
    Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                           template=directory["order_shipped"], context={"first_name": "Ann"},
                           status=Status.SENT)
    laptop.goto(f"{live_server.url}/admin/django_mmc/message/")
    assert "Hi Ann, your order is on its way" in laptop.inner_text("#result_list")
    laptop.goto(f"{live_server.url}/admin/django_mmc/webhookevent/")
    row = laptop.locator("#result_list tbody tr", has_text="evt_000")
    assert row.locator(".mmc-status-read").count() == 1  # the status the event carried
    row.locator("a.mmc-about").click()
    laptop.wait_for_url(f"**/notification/{rows['notifications'][0].pk}/change/")


def test_the_inbox_and_claims(live_server: Any, staff: User, directory: dict, laptop: Any,
                              quiet_platform: None) -> None:
    rows = desk(directory)
    log_in(laptop, live_server.url, "staff")
    assert "4 dialogues waiting for us" in laptop.inner_text("#mmc-inbox-count")
    laptop.click("#mmc-inbox-count")
    laptop.wait_for_url("**/dialogue/?waiting=1")
    names = laptop.locator("#result_list tbody tr th").all_inner_texts()
    assert [n.split(" (")[0][-1] for n in names] == ["2", "1", "0", "3"]  # longest wait first
    assert_no_column_clipped(laptop)
    screenshot(laptop, "inbox")
    first = rows["dialogues"][2]
    laptop.goto(f"{live_server.url}/admin/django_mmc/dialogue/{first.pk}/change/")
    laptop.click("#mmc-claim-dialogue")
    assert "You are answering this dialogue." in laptop.inner_text("#mmc-claimed-by")
    laptop.goto(f"{live_server.url}/admin/django_mmc/dialogue/?waiting=1")
    assert "staff" in laptop.locator("#result_list tbody tr").first.inner_text()
    laptop.goto(f"{live_server.url}/admin/django_mmc/dialogue/{first.pk}/change/")
    laptop.once("dialog", lambda d: d.accept())
    laptop.click("#mmc-close-dialogue")
    laptop.wait_for_selector(".messagelist .success")
    assert Dialogue.objects.get(pk=first.pk).assigned_to is None
