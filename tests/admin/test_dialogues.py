"""The dialogues admin: the transcript, the reply box, open and close, and
the messages list."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from django_mmc.models import (
    Dialogue,
    Message,
)
from django_mmc.status import DialogueStatus, Direction, Status
from tests.admin.helpers import (
    NUMBER,
    OTHER_NUMBER,
    follow_messages,
    make_dialogue,
    run_action,
)

pytestmark = pytest.mark.django_db


def test_transcript_never_links_unsafe_urls(admin_client: Any, rows: dict) -> None:
    html = admin_client.get(reverse("admin:django_mmc_dialogue_change",
                                    args=[rows["dialogue"].pk])).content.decode()
    assert 'href="https://files.example/9"' in html
    assert "javascript:alert" not in html
    assert "evil.html" in html


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


def test_close_selected_action_message(admin_client: Any, directory: dict) -> None:
    open_ = make_dialogue(directory)
    closed = make_dialogue(directory, OTHER_NUMBER, status=DialogueStatus.CLOSED)
    response = run_action(admin_client, "dialogue", "close_selected", [open_, closed])
    assert ("1 dialogue closing; 1 skipped: Only open dialogues can be closed"
            in follow_messages(response))
    open_.refresh_from_db()
    assert open_.status == DialogueStatus.CLOSING


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


# -- the admin at work: exact times, replies never lost, confirmation --------------------


def test_the_transcript_shows_each_time_to_the_second_with_the_zone(admin_client: Any,
                                                                    rows: dict) -> None:
    written = timezone.now().replace(microsecond=0) - timedelta(minutes=5, seconds=7)
    Message.objects.filter(pk=rows["inbound"].pk).update(received_at=written)
    html = admin_client.get(reverse("admin:django_mmc_dialogue_change",
                                    args=[rows["dialogue"].pk])).content.decode()
    transcript = html[html.index('id="mmc-transcript"'):]
    assert f'{timezone.localtime(written):%Y-%m-%d %H:%M:%S} UTC' in transcript
    assert f'datetime="{written.isoformat()}"' in transcript


def test_free_text_refused_by_the_care_window_comes_back_with_the_reason(
        admin_client: Any, directory: dict) -> None:
    dialogue = make_dialogue(directory)  # opened by us: the recipient never wrote
    url = reverse("admin:django_mmc_dialogue_change", args=[dialogue.pk])
    page = admin_client.get(url).content.decode()
    # The box is off and says why, before anything is typed.
    assert 'readonly aria-describedby="mmc-care-window"' in page
    assert 'id="mmc-send-reply" class="default" value="Send reply" disabled' in page
    assert "only a template can be sent" in page
    text = "Your parcel was handed to the courier at 10:04."
    response = admin_client.post(reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk]),
                                 {"text": text}, follow=True)
    assert response.redirect_chain[-1][0].endswith("#mmc-reply-form")
    html = response.content.decode()
    box = html[html.index('id="mmc-reply-form"'):html.index("</form>", html.index(
        'id="mmc-reply-form"'))]
    assert text in box
    assert 'class="errorlist' in box and "only a template" in box
    assert not dialogue.messages.exists()
    # Shown once: a reload is an empty box again.
    assert text not in admin_client.get(url).content.decode()


def test_a_refused_reply_in_an_open_window_comes_back_editable(admin_client: Any,
                                                               rows: dict) -> None:
    dialogue = rows["dialogue"]
    too_long = "x" * 5000
    response = admin_client.post(reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk]),
                                 {"text": too_long}, follow=True)
    form = response.context["reply_form"]
    assert form["text"].value() == too_long and form.errors["text"]
    html = response.content.decode()
    assert too_long in html
    box = html[html.index('id="mmc-reply-text"') - 200:html.index('id="mmc-reply-text"')]
    assert "readonly" not in box


def test_a_refused_template_reply_keeps_what_was_typed(admin_client: Any, directory: dict
                                                       ) -> None:
    dialogue = make_dialogue(directory)
    template = directory["order_shipped"]
    response = admin_client.post(
        reverse("admin:django_mmc_dialogue_reply", args=[dialogue.pk]),
        {"template": template.pk, "param_first_name": "",
         "param_tracking_url": "https://t.example/kept"}, follow=True)
    html = response.content.decode()
    assert 'value="https://t.example/kept"' in html
    assert 'id="mmc-template-reply-form"' in html and "errorlist" in html
    assert not dialogue.messages.exists()


def test_closing_asks_for_confirmation(admin_client: Any, rows: dict) -> None:
    html = admin_client.get(reverse("admin:django_mmc_dialogue_change",
                                    args=[rows["dialogue"].pk])).content.decode()
    form = html[html.index('id="mmc-close-form"') - 300:html.index('id="mmc-close-dialogue"')]
    assert 'data-mmc-confirm="Close this dialogue?' in form
    assert "django_mmc/forms.js" in html


def test_the_messages_list_shows_a_template_messages_text(admin_client: Any, directory: dict
                                                          ) -> None:
    dialogue = make_dialogue(directory)
    Message.objects.create(dialogue=dialogue, direction=Direction.OUTBOUND,
                           template=directory["order_shipped"], context={"first_name": "Ann"},
                           status=Status.SENT)
    html = admin_client.get(reverse("admin:django_mmc_message_changelist")).content.decode()
    assert "Hi Ann, your order is on its way:" in html
    assert "(order_shipped)" in html and "{{tracking_url}}" not in html


def test_open_dialogue_view_offers_an_opening_template(admin_client: Any,
                                                        directory: dict) -> None:
    url = reverse("admin:django_mmc_dialogue_open")
    template = directory["order_confirmed"]
    chosen = admin_client.get(url, {"template": template.pk, "to": NUMBER})
    html = chosen.content.decode()
    assert 'id="mmc-parameters"' in html and "param_order_number" in html
    assert chosen.context["form"].initial["to"] == NUMBER

    missing = admin_client.post(url, {"to": NUMBER, "agent": "support",
                                      "template": template.pk, "param_first_name": "Ann"})
    assert missing.status_code == 200 and not Dialogue.objects.exists()
    assert "param_order_number" in missing.context["form"].errors

    response = admin_client.post(url, {"to": NUMBER, "agent": "support",
                                       "template": template.pk, "param_first_name": "Ann",
                                       "param_order_number": "A-1"})
    assert response.status_code == 302
    opening = Message.objects.get(dialogue=Dialogue.objects.get())
    assert opening.template == template
    assert opening.context == {"first_name": "Ann", "order_number": "A-1"}
