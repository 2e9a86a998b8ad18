"""Recipients by the platform's customer id: events that name a customer by
id find or create the right row, and link the id to the number when both
are seen."""

from __future__ import annotations

from typing import Any

from django_mmc.models import Dialogue, Recipient
from django_mmc.status import DialogueStatus
from django_mmc.testing import build_event
from tests.helpers import SUPPORT_GROUP_ID

from .test_processing import NUMBER, ProcessingCase, dialogue_opened, message_received

PROCESSED = "PROCESSED"


def opened_by_customer(customer_id: str, number: str | None, **kwargs: Any) -> dict[str, Any]:
    return build_event("dialogue.opened", dialogue=kwargs.pop("dialogue", "9002"),
                       recipient=number, customer_id=customer_id,
                       channel_group=SUPPORT_GROUP_ID, initiated_by="RECIPIENT",
                       channel_type="WHATSAPP", **kwargs)


class TestCustomerIds(ProcessingCase):

    def test_an_event_naming_only_a_customer_id_creates_that_recipient(self) -> None:
        stored = self.process(opened_by_customer("88001", None))

        assert stored.state == PROCESSED, stored.error
        recipient = Dialogue.objects.get().recipient
        assert (recipient.customer_id, recipient.phone_number) == ("88001", None)
        assert str(recipient) == "88001"
        # The next event about it, naming the same customer, finds the same row.
        assert self.process(message_received(dialogue="9002", recipient=None,
                                             customer_id="88001")).state == PROCESSED
        assert Recipient.objects.count() == 1

    def test_the_number_beside_a_customer_id_is_linked(self) -> None:
        known = self.recipient()  # known here by number only
        stored = self.process(opened_by_customer("88001", NUMBER))

        assert stored.state == PROCESSED, stored.error
        known.refresh_from_db()
        assert known.customer_id == "88001"
        assert Dialogue.objects.get().recipient == known
        assert Recipient.objects.count() == 1

    def test_a_customer_known_by_id_gets_its_number_when_an_event_gives_it(self) -> None:
        Recipient.objects.for_customer("88001")
        self.process(opened_by_customer("88001", NUMBER))
        recipient = Recipient.objects.get()
        assert (recipient.customer_id, recipient.phone_number) == ("88001", NUMBER)

    def test_an_event_about_our_dialogue_links_its_recipient_to_the_customer_id(self) -> None:
        dialogue = self.dialogue(platform_id="9002")  # opened here by number
        stored = self.process(build_event(
            "message.received", message="55101", dialogue="9002", recipient=None,
            customer_id="88001", channel_group=SUPPORT_GROUP_ID, text="Hi",
            channel_type="WHATSAPP"))

        assert stored.state == PROCESSED, stored.error
        dialogue.recipient.refresh_from_db()
        assert dialogue.recipient.customer_id == "88001"
        assert Recipient.objects.count() == 1

    def test_two_rows_for_the_id_and_the_number_are_never_merged(self) -> None:
        by_number = self.recipient()
        by_id = Recipient.objects.for_customer("88001")
        self.process(opened_by_customer("88001", NUMBER))

        by_number.refresh_from_db()
        assert Dialogue.objects.get().recipient == by_id
        assert by_number.customer_id is None and Recipient.objects.count() == 2

    def test_a_number_event_still_works_as_before(self) -> None:
        assert self.process(dialogue_opened()).state == PROCESSED
        recipient = Dialogue.objects.get().recipient
        assert recipient.phone_number == NUMBER and recipient.customer_id is None
        assert Dialogue.objects.get().status == DialogueStatus.OPEN
