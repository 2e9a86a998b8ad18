"""django_mmc.testing: event documents exactly as contract section 8 has them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from django_mmc import contract
from django_mmc.signing import verify
from django_mmc.testing import build_event, format_timestamp, signed_delivery


def test_notification_status_event_matches_the_contract_example() -> None:
    event = build_event(
        "notification.status",
        event_id="evt_7f3a2c",
        occurred_at="2026-11-26T19:00:04.120Z",
        status="DELIVERED",
        notification="79746",
    )
    assert event == {
        "data": {
            "type": "events",
            "id": "evt_7f3a2c",
            "attributes": {
                "eventType": "notification.status",
                "occurredAt": "2026-11-26T19:00:04.120Z",
                "status": "DELIVERED",
                "failure": None,
            },
            "relationships": {
                "notification": {"data": {"type": "notifications", "id": "79746"}},
                "dialogueAgent": {"data": {"type": "dialogue-agents", "id": "17"}},
            },
        }
    }


@pytest.mark.parametrize(
    ("event_type", "fields", "attributes", "relationships"),
    [
        (
            contract.EVENT_MESSAGE_STATUS,
            {
                "status": "FAILED",
                "failure": {"code": "BLOCKED", "detail": "d"},
                "message": "m-1",
                "dialogue": 5501,
            },
            {"status": "FAILED", "failure": {"code": "BLOCKED", "detail": "d"}},
            {"message": ("messages", "m-1"), "dialogue": ("dialogues", "5501")},
        ),
        (
            contract.EVENT_MESSAGE_RECEIVED,
            {
                "text": "Hi",
                "channel_type": "SMS",
                "files": [
                    {
                        "id": 9,
                        "name": "a.pdf",
                        "contentType": "application/pdf",
                        "size": 3,
                        "url": "http://x/9",
                    }
                ],
                "message": "m-2",
                "dialogue": "5501",
                "recipient": "+353861234567",
                "channel_group": "7",
            },
            {
                "text": "Hi",
                "channelType": "SMS",
                "files": [
                    {
                        "id": "9",
                        "name": "a.pdf",
                        "contentType": "application/pdf",
                        "size": 3,
                        "url": "http://x/9",
                    }
                ],
            },
            {
                "message": ("messages", "m-2"),
                "dialogue": ("dialogues", "5501"),
                "recipient": ("customers", "+353861234567"),
                "channelGroup": ("channel-groups", "7"),
            },
        ),
        (
            contract.EVENT_DIALOGUE_OPENED,
            {
                "initiated_by": "RECIPIENT",
                "channel_type": "WHATSAPP",
                "dialogue": "5501",
                "recipient": "+353861234567",
                "channel_group": "7",
            },
            {"initiatedBy": "RECIPIENT", "channelType": "WHATSAPP"},
            {
                "dialogue": ("dialogues", "5501"),
                "recipient": ("customers", "+353861234567"),
                "channelGroup": ("channel-groups", "7"),
            },
        ),
        (
            contract.EVENT_DIALOGUE_CLOSED,
            {"closed_by": "TIMEOUT", "dialogue": "5501"},
            {"closedBy": "TIMEOUT"},
            {"dialogue": ("dialogues", "5501")},
        ),
    ],
)
def test_every_event_type(
    event_type: str, fields: dict, attributes: dict, relationships: dict
) -> None:
    event = build_event(event_type, agent_id="18", **fields)["data"]
    assert event["type"] == "events"
    assert event["id"].startswith("evt_") and len(event["id"]) > 8
    assert event["attributes"].pop("eventType") == event_type
    assert event["attributes"].pop("occurredAt").endswith("Z")
    assert event["attributes"] == attributes
    expected = {
        name: {"data": {"type": kind, "id": value}} for name, (kind, value) in relationships.items()
    }
    expected["dialogueAgent"] = {"data": {"type": "dialogue-agents", "id": "18"}}
    assert event["relationships"] == expected


def test_unknown_event_types_keep_their_fields() -> None:
    event = build_event("dialogue.transferred", agent_id="17", toAgent="18", reason="busy")
    attributes = event["data"]["attributes"]
    assert attributes["eventType"] == "dialogue.transferred"
    assert attributes["toAgent"] == "18" and attributes["reason"] == "busy"


def test_typos_and_missing_fields_are_refused() -> None:
    with pytest.raises(TypeError, match="unexpected"):
        build_event("notification.status", status="SENT", notification="1", notificaton="1")
    with pytest.raises(TypeError, match="needs"):
        build_event("notification.status", status="SENT")
    with pytest.raises(TypeError, match="needs"):
        build_event("dialogue.closed", dialogue="1")


def test_event_ids_are_unique() -> None:
    ids = {
        build_event("dialogue.closed", closed_by="AGENT", dialogue="1")["data"]["id"]
        for _ in range(100)
    }
    assert len(ids) == 100


def test_timestamps() -> None:
    moment = datetime(2026, 11, 26, 20, 0, 4, 120999, tzinfo=timezone(timedelta(hours=1)))
    assert format_timestamp(moment) == "2026-11-26T19:00:04.120Z"
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"
    event = build_event("dialogue.closed", closed_by="AGENT", dialogue="1", occurred_at=moment)
    assert event["data"]["attributes"]["occurredAt"] == "2026-11-26T19:00:04.120Z"
    now = format_timestamp()
    assert len(now) == 24 and now[10] == "T" and now.endswith("Z")


def test_signed_delivery() -> None:
    event = build_event("notification.status", status="READ", notification="1")
    body, headers = signed_delivery(event, "agent-17-secret")
    assert json.loads(body) == event
    assert headers["Content-Type"] == contract.JSONAPI_MEDIA_TYPE
    assert verify(body, headers[contract.SIGNATURE_HEADER], ["agent-17-secret"])
    assert not verify(body, headers[contract.SIGNATURE_HEADER], ["agent-18-secret"])
    assert headers[contract.SIGNATURE_HEADER] == headers[contract.SIGNATURE_HEADER].lower()
    raw = b'{"data": {"odd":  "spacing"}}'
    same, raw_headers = signed_delivery(raw, "s")
    assert same == raw
    assert verify(raw, raw_headers[contract.SIGNATURE_HEADER], ["s"])
    assert not verify(raw + b" ", raw_headers[contract.SIGNATURE_HEADER], ["s"])
