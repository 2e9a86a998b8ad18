"""django_mmc's translations: each catalogue under ``django_mmc/locale/`` is
complete, its compiled form is the one committed, it holds every string the
code marks, and the admin pages rendered in its language show no English
string of django_mmc. German is the complete translation that proves the
pipeline; a language added to ``locale/`` is tested the same way.

The page check compares each page's text (and the attributes people read:
button labels, tooltips, confirmations) with the English msgids of the
catalogue, so a string left untranslated, a catalogue entry made fuzzy or
emptied, or a ``.mo`` not compiled again after the ``.po`` changed, shows up
here with the page it is on. ``test_the_page_check_finds_english`` proves the
check can fail: the same pages in English are full of findings.
"""

from __future__ import annotations

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst

import django_mmc
from django_mmc import api
from django_mmc.models import ConsentChange, Dialogue, Message, WebhookEvent
from django_mmc.status import DialogueStatus, Direction, Status
from tests.admin.helpers import (
    OTHER_NUMBER,
    make_dialogue,
    make_event,
    make_notification,
    make_user,
)

PACKAGE = Path(django_mmc.__file__).resolve().parent
LOCALE = PACKAGE / "locale"

#: Every language django_mmc is translated into (German at least).
LANGUAGES = sorted(p.parent.parent.name for p in LOCALE.glob("*/LC_MESSAGES/django.po"))


def po_file(language: str) -> Path:
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def test_german_is_there() -> None:
    assert "de" in LANGUAGES


# -- the catalogue, read without GNU gettext -------------------------------------------


@dataclass
class Entry:
    """One message of a ``.po`` file."""

    msgid: str = ""
    msgid_plural: str = ""
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> tuple[str | None, str, str]:
        return (self.msgctxt, self.msgid, self.msgid_plural)

    @property
    def translations(self) -> list[str]:
        return [self.msgstr[i] for i in sorted(self.msgstr)]


_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')


def read_po(path: Path) -> list[Entry]:
    """The entries of a ``.po`` file (the header is the one with msgid "");
    obsolete (``#~``) entries are left out."""
    entries: list[Entry] = []
    entry = Entry()
    target: tuple[str, int] | None = None
    seen_msgid = False

    def flush() -> None:
        nonlocal entry, seen_msgid, target
        if seen_msgid:
            entries.append(entry)
        entry, seen_msgid, target = Entry(), False, None

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#~"):
            if entry.msgstr:
                flush()
            continue
        if line.startswith("#"):
            if entry.msgstr:
                flush()
            if line.startswith("#,"):
                entry.flags.update(f.strip() for f in line[2:].split(","))
            continue
        if line.startswith('"'):
            assert target is not None, f"{path}:{number}: a string continues nothing"
            _append(entry, target, ast.literal_eval(line))
            continue
        match = _KEYWORD.match(line)
        assert match, f"{path}:{number}: not understood: {line}"
        keyword, index, text = match.group(1), match.group(2), ast.literal_eval(match.group(3))
        if keyword in ("msgctxt", "msgid") and entry.msgstr:
            flush()
        if keyword == "msgid":
            seen_msgid = True
        assert seen_msgid or keyword == "msgctxt", f"{path}:{number}: {keyword} without msgid"
        target = ("msgstr", int(index or 0)) if keyword.startswith("msgstr") else (keyword, 0)
        _append(entry, target, text)
    flush()
    return entries


def _append(entry: Entry, target: tuple[str, int], text: str) -> None:
    name, index = target
    if name == "msgstr":
        entry.msgstr[index] = entry.msgstr.get(index, "") + text
    elif name == "msgctxt":
        entry.msgctxt = (entry.msgctxt or "") + text
    else:
        setattr(entry, name, getattr(entry, name) + text)


def messages_of(entries: list[Entry]) -> list[Entry]:
    """The entries that are messages (not the header)."""
    return [e for e in entries if e.msgid]


#: ``%(name)s``, ``%d``, ``{name}``: the parts of a message that are filled in.
PLACEHOLDER = re.compile(r"%\(\w+\)[sdfr]|%[sdfr]|\{\w*\}")


# -- the catalogue -----------------------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_is_complete(language: str) -> None:
    entries = read_po(po_file(language))
    header = next(e for e in entries if e.msgid == "")
    assert "fuzzy" not in header.flags, "the header is still marked fuzzy"
    assert f"Language: {language}\n" in header.msgstr[0]
    plural_forms = re.search(r"^Plural-Forms: nplurals=(\d+);", header.msgstr[0], re.M)
    assert plural_forms, "the header has no Plural-Forms"
    messages = messages_of(entries)
    assert len(messages) > 300, "the catalogue lost most of its messages"
    problems = []
    for entry in messages:
        if "fuzzy" in entry.flags:
            problems.append(f"fuzzy: {entry.msgid!r}")
        expected_forms = int(plural_forms.group(1)) if entry.msgid_plural else 1
        if len(entry.msgstr) != expected_forms or not all(entry.translations):
            problems.append(f"not translated: {entry.msgid!r}")
            continue
        wanted = sorted(PLACEHOLDER.findall(entry.msgid_plural or entry.msgid))
        for translation in entry.translations:
            got = sorted(PLACEHOLDER.findall(translation))
            # A plural form may spell out its number ("Die Person", no %(counter)s).
            if got != wanted and not (entry.msgid_plural and set(got) <= set(wanted)):
                problems.append(f"placeholders differ: {entry.msgid!r} -> {translation!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalogue_is_the_po_file_compiled(language: str) -> None:
    """The committed ``.mo`` holds exactly the ``.po``'s translations, so the
    package needs no GNU gettext where it is installed. After editing the
    ``.po``: ``django-admin compilemessages`` in ``django_mmc/``."""
    po, mo = po_file(language), po_file(language).with_suffix(".mo")
    expected: dict[Any, str] = {}
    for entry in read_po(po):
        if "fuzzy" in entry.flags and entry.msgid or not all(entry.translations):
            continue  # msgfmt leaves these out
        if not entry.msgid:  # the header, less the date msgfmt leaves out
            entry.msgstr[0] = re.sub(r"(?m)^POT-Creation-Date:.*\n", "", entry.msgstr[0])
        msgid = entry.msgid if entry.msgctxt is None else f"{entry.msgctxt}\x04{entry.msgid}"
        if entry.msgid_plural:
            for index, translation in entry.msgstr.items():
                expected[(msgid, index)] = translation
        else:
            expected[msgid] = entry.msgstr[0]
    with mo.open("rb") as compiled_file:
        compiled = gettext.GNUTranslations(compiled_file)
    catalog = dict(compiled._catalog)  # type: ignore[attr-defined]
    stale = {k for k in expected.keys() | catalog.keys() if expected.get(k) != catalog.get(k)}
    assert not stale, (
        f"{mo.name} is not {po.name} compiled ({len(stale)} messages differ, e.g. "
        f"{sorted(map(str, stale))[:3]}): run `django-admin compilemessages` in django_mmc/")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_holds_every_marked_string(language: str, tmp_path: Path,
                                                 monkeypatch: Any, settings: Any) -> None:
    """``makemessages`` run on the code finds no message the committed
    catalogue lacks. (One the code no longer has is harmless; ``makemessages
    --no-obsolete`` drops it.)"""
    if shutil.which("xgettext") is None:
        pytest.skip("GNU gettext (xgettext) is not installed: apt-get install gettext")
    copy = tmp_path / "django_mmc"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    monkeypatch.chdir(copy)
    settings.LOCALE_PATHS = []
    call_command("makemessages", locale=[language], verbosity=0, no_obsolete=True)
    fresh = {e.key for e in messages_of(read_po(copy / po_file(language).relative_to(PACKAGE)))}
    committed = {e.key for e in messages_of(read_po(po_file(language)))}
    assert not fresh - committed, (
        f"marked in the code but not in the catalogue: {sorted(map(str, fresh - committed))}; "
        f"run `django-admin makemessages -l {language}` in django_mmc/ and translate them")


# -- the admin, in each language ---------------------------------------------------------


#: Elements whose content is data (the customer's words, the platform's
#: texts, a stored webhook body), not the app's interface.
DATA_CLASSES = frozenset({"mmc-json", "mmc-preview", "mmc-message-text", "mmc-failure"})

#: Attributes people read.
READ_ATTRIBUTES = ("title", "aria-label", "placeholder", "alt", "data-mmc-confirm")

VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                       "meta", "source", "track", "wbr"})


class PageText(HTMLParser):
    """What a person reads on a page: its text (not scripts, styles or data)
    and the attributes above, one string per piece."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._skipping: list[str] = []  # tags of the skipped elements we are in

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in VOID_TAGS:
            if not self._skipping:
                self._read_attributes(tag, values)
            return
        classes = set((values.get("class") or "").split())
        if self._skipping or tag in ("script", "style") or classes & DATA_CLASSES:
            self._skipping.append(tag)
            return
        self._read_attributes(tag, values)

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping and data.strip():
            self.pieces.append(" ".join(data.split()))

    def _read_attributes(self, tag: str, values: dict[str, str | None]) -> None:
        for name in READ_ATTRIBUTES:
            if values.get(name):
                self.pieces.append(str(values[name]))
        if tag == "input" and values.get("type") in ("submit", "button") and values.get("value"):
            self.pieces.append(str(values["value"]))


def page_text(html: str) -> str:
    parser = PageText()
    parser.feed(html)
    parser.close()
    return "\n".join(parser.pieces)


#: A message shorter than this (in letters) is not looked for: "for", "to",
#: a lone "ID" say nothing about where they come from.
MIN_LETTERS = 4

#: Dotted names (``notification.status``, an event type) are the platform's
#: vocabulary, shown as they are.
DOTTED_NAME = re.compile(r"(?<![\w.])\w+(?:\.\w+)+(?![\w.])")


@dataclass
class EnglishCheck:
    """Patterns that find the English of each message whose translation differs
    (each literal part between placeholders, as written and with a capital
    first letter, as the admin shows labels; of a message with placeholders
    only the parts of two words or more), and the texts that are the same in
    both languages ("Message My Customer"), which are not English leaks."""

    patterns: dict[str, re.Pattern[str]]
    same_in_both: list[str]

    @classmethod
    def from_catalogue(cls, language: str) -> EnglishCheck:
        patterns, same = {}, set()
        for entry in messages_of(read_po(po_file(language))):
            english = [entry.msgid] + ([entry.msgid_plural] if entry.msgid_plural else [])
            if {t.casefold() for t in entry.translations} & {e.casefold() for e in english}:
                same.update(t for t in entry.translations if " " in t.strip())
                continue  # the same words in both languages ("Status", "Agent")
            parts = set()
            for text in english:
                pieces = PLACEHOLDER.split(text.replace("%%", "%"))
                for part in pieces:
                    part = part.strip(" \t\n:;,.()#\u2192-")
                    if (sum(c.isalpha() for c in part) >= MIN_LETTERS
                            and (len(pieces) == 1 or len(part.split()) > 1)):
                        parts.update({part, capfirst(part)})
            if parts:
                alternatives = "|".join(re.escape(p) for p in sorted(parts, key=len,
                                                                        reverse=True))
                patterns[entry.msgid] = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
        return cls(patterns, sorted(same, key=len, reverse=True))

    def english_on(self, text: str) -> dict[str, str]:
        """The messages whose English is in ``text``, with where."""
        text = DOTTED_NAME.sub(" ", text)
        for phrase in self.same_in_both:
            text = text.replace(phrase, " ")
        found = {}
        for msgid, pattern in self.patterns.items():
            match = pattern.search(text)
            if match:
                start = max(match.start() - 30, 0)
                found[msgid] = text[start:match.end() + 30].replace("\n", " | ")
        return found


@pytest.fixture
def page_rows(directory: dict, monkeypatch: Any) -> dict[str, Any]:
    """Rows in every state a page shows differently: a failed notification
    (Retry), a dialogue waiting for us with a transcript, one whose care
    window has closed, one held by another agent, a failed webhook event, a
    consent change. Nothing is sent anywhere."""
    monkeypatch.setattr("django_mmc.dispatch.enqueue", lambda *a, **k: True)
    notification = make_notification(
        directory, status=Status.FAILED, failure_code="RECIPIENT_UNREACHABLE",
        failure_detail="The number cannot be reached.", platform_id="79746",
        accepted_at=timezone.now() - timedelta(minutes=3), failed_at=timezone.now())
    waiting = make_dialogue(directory)
    received = timezone.now() - timedelta(minutes=40)
    Message.objects.create(
        dialogue=waiting, direction=Direction.INBOUND, text="Where is my order?",
        status=Status.RECEIVED, platform_id="m-1", received_at=received,
        files=[{"id": "9", "name": "photo.jpg", "contentType": "image/jpeg", "size": 2048,
                "url": "https://files.example/9"}])
    Dialogue.objects.filter(pk=waiting.pk).update(last_inbound_at=received)
    outbound = Message.objects.create(
        dialogue=waiting, direction=Direction.OUTBOUND, template=directory["order_shipped"],
        context={"first_name": "Ann"}, status=Status.FAILED, platform_id="m-2",
        failure_code="TEMPLATE_REJECTED")
    quiet = make_dialogue(directory, OTHER_NUMBER, platform_id="d-quiet")
    conflict = make_dialogue(directory, "+353861234569", platform_id="d-held",
                             status=DialogueStatus.CONFLICT, conflict_agent_id="99",
                             conflict_dialogue_id="d-other")
    event = make_event("evt_failed", state=WebhookEvent.State.FAILED)
    WebhookEvent.objects.filter(pk=event.pk).update(error="KeyError: 'data'")
    api.set_consent(notification.recipient, "SMS", True, source="API", detail="STOP")
    return {"notification": notification, "waiting": waiting, "quiet": quiet,
            "conflict": conflict, "outbound": outbound, "event": event,
            "recipient": notification.recipient, "channel_group": directory["support"],
            "template": directory["order_shipped"], "consent": ConsentChange.objects.get()}


def admin_pages(client: Any, rows: dict[str, Any], staff_client: Any) -> dict[str, str]:
    """Every page of django_mmc's admin, and a few answers to what people
    do there (the message bar, a form with errors), by a name for each."""
    pages: dict[str, Any] = {}

    def get(name: str, url: str, *, on: Any = client, status: int = 200) -> None:
        response = on.get(url)
        assert response.status_code == status, (name, url, response.status_code)
        pages[name] = response

    def post(name: str, url: str, data: dict[str, Any]) -> None:
        response = client.post(url, data, follow=True)
        assert response.status_code == 200, (name, url, response.status_code)
        pages[name] = response

    get("index", reverse("admin:index"))
    get("app", reverse("admin:app_list", args=["django_mmc"]))
    objects = {"notification": rows["notification"], "dialogue": rows["waiting"],
               "message": rows["outbound"], "recipient": rows["recipient"],
               "consentchange": rows["consent"], "channelgroup": rows["channel_group"],
               "template": rows["template"], "webhookevent": rows["event"]}
    for model, obj in objects.items():
        get(f"{model} list", reverse(f"admin:django_mmc_{model}_changelist"))
        get(f"{model} page", reverse(f"admin:django_mmc_{model}_change", args=[obj.pk]))
        get(f"{model} history", reverse(f"admin:django_mmc_{model}_history", args=[obj.pk]))
    get("recipient add", reverse("admin:django_mmc_recipient_add"))
    get("recipient delete", reverse("admin:django_mmc_recipient_delete",
                                    args=[rows["recipient"].pk]))
    get("recipient forget", reverse("admin:django_mmc_recipient_forget",
                                    args=[rows["recipient"].pk]))
    get("inbox", reverse("admin:django_mmc_dialogue_changelist") + "?waiting=1")
    dialogue_page = reverse("admin:django_mmc_dialogue_change", args=[rows["waiting"].pk])
    get("transcript with a template reply",
        f"{dialogue_page}?reply_template={rows['template'].pk}")
    get("care window closed", reverse("admin:django_mmc_dialogue_change",
                                      args=[rows["quiet"].pk]))
    get("conflict", reverse("admin:django_mmc_dialogue_change", args=[rows["conflict"].pk]))
    send = reverse("admin:django_mmc_notification_send")
    get("send", send)
    get("send with a template", f"{send}?template={rows['template'].pk}")
    post("send with errors", send, {"template": rows["template"].pk, "_send": "1",
                                    "to": "0861234567"})
    opening = reverse("admin:django_mmc_dialogue_open")
    get("open dialogue", opening)
    post("open dialogue with errors", opening, {})
    post("retried", reverse("admin:django_mmc_notification_retry",
                            args=[rows["notification"].pk]), {})
    post("claimed", reverse("admin:django_mmc_dialogue_claim", args=[rows["waiting"].pk]),
         {"claim": "1"})
    post("reply refused", reverse("admin:django_mmc_dialogue_reply", args=[rows["quiet"].pk]),
         {"text": "Hello"})
    post("opted back in", reverse("admin:django_mmc_recipient_consent",
                                  args=[rows["recipient"].pk]),
         {"channel_type": "SMS", "opted_out": "0"})
    post("cancel action", reverse("admin:django_mmc_notification_changelist"),
         {"action": "cancel_notifications", "_selected_action": [rows["notification"].pk]})
    get("forbidden", send, on=staff_client, status=403)
    return {name: page_text(response.content.decode()) for name, response in pages.items()}


@pytest.fixture
def clients(client: Any, django_user_model: Any) -> tuple[Any, Any]:
    """A superuser's client, and a client of staff who may only view
    notifications (for the 403 page)."""
    client.force_login(django_user_model.objects.create_superuser("boss", password="pw"))
    staff = Client()
    staff.force_login(make_user(django_user_model, "viewer", "django_mmc.view_notification"))
    return client, staff


def findings_on(pages: dict[str, str], language: str) -> dict[str, dict[str, str]]:
    check = EnglishCheck.from_catalogue(language)
    found = {name: check.english_on(text) for name, text in pages.items()}
    return {name: hits for name, hits in found.items() if hits}


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_the_admin_shows_no_english(language: str, clients: tuple[Any, Any],
                                    page_rows: dict[str, Any]) -> None:
    with override_settings(LANGUAGE_CODE=language):
        pages = admin_pages(clients[0], page_rows, clients[1])
    findings = findings_on(pages, language)
    assert not findings, f"English on the pages in {language}:\n" + "\n".join(
        f"{name}: {msgid!r} in ...{where}..." for name, hits in findings.items()
        for msgid, where in hits.items())
    if language == "de":
        # German pages, not empty ones: Django's own words and django_mmc's.
        assert "Abmelden" in pages["index"]
        assert "Benachrichtigung senden" in pages["notification list"]


@pytest.mark.django_db
def test_the_page_check_finds_english(clients: tuple[Any, Any],
                                      page_rows: dict[str, Any]) -> None:
    """The same pages in English: the check above would see the English."""
    with override_settings(LANGUAGE_CODE="en"):
        pages = admin_pages(clients[0], page_rows, clients[1])
    findings = findings_on(pages, "de")
    assert "Send notification" in findings["notification list"]
    assert "Conversation with %(recipient)s" in findings["transcript with a template reply"]
    assert len({msgid for hits in findings.values() for msgid in hits}) > 150
