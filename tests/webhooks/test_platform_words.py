"""Item 17 of the hardening issue, the webhook half: a status event whose
status names one of django_mmc's local statuses is an unknown status. It is
logged, and the row stays as it was."""

from __future__ import annotations

import logging

import pytest

from django_mmc.models import WebhookEvent
from django_mmc.status import Status

from .test_processing import ProcessingCase, message_status, notification_status

LOCAL_WORDS = ["CANCELLED", "QUEUED", "RECEIVED", "SENDING", "ERROR", "REFUSED", "SCHEDULED"]


class TestLocalStatusWords(ProcessingCase):
    @pytest.fixture(autouse=True)
    def _caplog(self, caplog: pytest.LogCaptureFixture) -> None:
        caplog.set_level(logging.INFO, logger="django_mmc")
        self.caplog = caplog

    def logged(self, word: str) -> list[str]:
        return [r.getMessage() for r in self.caplog.records
                if r.name.startswith("django_mmc") and repr(word) in r.getMessage()]

    @pytest.mark.parametrize("word", LOCAL_WORDS)
    def test_item_17_a_notification_event_naming_a_local_status_changes_nothing(
            self, word: str) -> None:
        notification = self.notification(status=Status.ACCEPTED)
        before = notification.status_changed_at

        stored = self.process(notification_status(word))

        notification.refresh_from_db()
        assert notification.status == Status.ACCEPTED
        assert notification.status_changed_at == before
        assert stored.state != WebhookEvent.State.PROCESSED
        assert word in stored.error
        assert self.logged(word), "the unknown word was not logged"

    @pytest.mark.parametrize("word", LOCAL_WORDS)
    def test_item_17_a_message_event_naming_a_local_status_changes_nothing(
            self, word: str) -> None:
        message = self.outbound(self.dialogue(), status=Status.SENT)

        stored = self.process(message_status(word))

        message.refresh_from_db()
        assert message.status == Status.SENT
        assert word in stored.error
        assert self.logged(word), "the unknown word was not logged"

    def test_item_17_the_platforms_own_word_still_applies(self) -> None:
        notification = self.notification(status=Status.ACCEPTED)
        stored = self.process(notification_status("DELIVERED"))
        notification.refresh_from_db()
        assert stored.state == WebhookEvent.State.PROCESSED
        assert notification.status == Status.DELIVERED
