"""The first-day check (``manage.py mmc_doctor``): does the platform speak the
configured dialect?

:class:`Doctor` asks the configured platform (or a sandbox) for a token and
calls each read endpoint the dialect defines, and reports one
:class:`Finding` per contract item: ``ok``, ``differs`` (with what was seen:
the status code, the media type, the first error's code and pointer, the
pagination links that came back) or ``not available``. For every ``differs``
it probes the alternatives the shipped dialects know (token URLs, paths,
filter and page grammar, type names, status words) and proposes the
``MMC['CONTRACT']`` items that worked. It checks that each agent's webhook
URL answers from the site itself and that its secrets are set.

It only reads, unless :meth:`Doctor.send_test` is asked for: that sends one
notification and follows it to a final status. Tokens and secrets never
appear in a finding; :meth:`Report.scrub` hides them again from anything
written out, whatever the platform echoed back.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests

from . import contract
from .client import create_session, jsonapi
from .conf import MMCSettings, mmc_settings
from .dialect import DIALECTS, Dialect

__all__ = ["OK", "DIFFERS", "NOT_AVAILABLE", "Doctor", "Finding", "Report"]

OK = "ok"
DIFFERS = "differs"
NOT_AVAILABLE = "not available"

#: Our statuses after which a notification changes no more.
FINAL_STATUSES = (contract.PlatformStatus.READ.value, contract.PlatformStatus.FAILED.value,
                  contract.PlatformStatus.EXPIRED.value)
_HIDDEN = "[hidden]"


@dataclass
class Seen:
    """One answer, as a finding shows it (never a header's or a body's secret)."""

    method: str
    target: str
    status_code: int = 0
    media_type: str = ""
    error_code: str = ""
    error_pointer: str = ""
    links: tuple[str, ...] = ()
    count: int | None = None
    types: tuple[str, ...] = ()
    problem: str = ""

    @property
    def success(self) -> bool:
        return 200 <= self.status_code < 300

    def __str__(self) -> str:
        if not self.status_code:
            return f"{self.method} {self.target}: {self.problem or 'no answer'}"
        parts = [str(self.status_code)]
        if self.media_type:
            parts.append(self.media_type)
        if self.error_code:
            parts.append(self.error_code + (f" at {self.error_pointer}"
                                            if self.error_pointer else ""))
        if self.count is not None:
            parts.append(f"{self.count} item(s)" + (f" of type {', '.join(self.types)}"
                                                    if self.types else ""))
        if self.success and self.count is not None:
            parts.append(f"links: {', '.join(self.links) or 'none'}")
        if self.problem:
            parts.append(self.problem)
        return f"{self.method} {self.target}: {', '.join(parts)}"


@dataclass
class Finding:
    """One contract item (or one agent's webhook or secret) and its state."""

    item: str
    state: str
    seen: str
    configured: Any = None
    proposal: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Report:
    """Every finding, and the ``CONTRACT`` items proposed for those that differ."""

    findings: list[Finding]
    dialect: str
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def proposal(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for finding in self.findings:
            merged.update(finding.proposal)
        return merged

    @property
    def differs(self) -> list[Finding]:
        return [f for f in self.findings if f.state == DIFFERS]

    def states(self) -> dict[str, str]:
        return {f.item: f.state for f in self.findings}

    def as_dict(self) -> dict[str, Any]:
        return {"dialect": self.dialect, "findings": [f.as_dict() for f in self.findings],
                "proposal": self.proposal,
                "ok": not any(f.state != OK for f in self.findings)}

    def scrub(self, text: str) -> str:
        """``text`` with every secret and token of this run hidden."""
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, _HIDDEN)
        return text

    def to_json(self) -> str:
        return self.scrub(json.dumps(self.as_dict(), indent=2, sort_keys=True, default=str))

    def to_table(self) -> str:
        rows = [("ITEM", "STATE", "SEEN")]
        for f in self.findings:
            proposed = ", ".join(f"{k}={_short(v)}" for k, v in f.proposal.items())
            rows.append((f.item, f.state, f.seen + (f"  => {proposed}" if proposed else "")))
        width = max(len(row[0]) for row in rows)
        lines = [f"{row[0]:<{width}}  {row[1]:<13}  {row[2]}" for row in rows]
        lines.append("")
        proposal = self.proposal
        if proposal:
            lines.append("Proposed MMC['CONTRACT'] items (merge them into the current "
                         f"dialect, {self.dialect!r}):")
            lines.append(json.dumps(proposal, indent=4, sort_keys=True))
        elif all(f.state == OK for f in self.findings):
            lines.append("Every item checked is ok.")
        lines.append("Not checked here: event names and the signature scheme. Set "
                     "MMC['WEBHOOK_DIAGNOSIS_UNTIL'] and watch the first delivery.")
        return self.scrub("\n".join(lines))


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


class Doctor:
    """Checks the platform against the site's dialect. One run per instance.

    ``site_url`` is where the site itself is served (``https://example.com``);
    without it the webhook URLs are not checked. ``alternatives`` are the
    dialects whose items are probed where the site's differ (default: the
    shipped ones). ``session`` replaces the HTTP session.
    """

    def __init__(self, settings: MMCSettings | None = None, *, site_url: str | None = None,
                 alternatives: Iterable[Dialect] | None = None,
                 session: requests.Session | None = None) -> None:
        self.settings = settings or mmc_settings
        self.dialect: Dialect = self.settings.dialect
        self.site_url = site_url.rstrip("/") if site_url else None
        self.base_url = str(self.settings.BASE_URL).rstrip("/")
        self.session = session or create_session(self.base_url)
        self.timeout = self.settings.timeout
        self.findings: list[Finding] = []
        self._token: str | None = None
        self._secrets: list[str] = list(self.settings.secret_values())
        #: The values found to work, by dialect item.
        self.found: dict[str, Any] = {}
        self._shipped = [self.dialect, *(DIALECTS.values() if alternatives is None
                                         else alternatives)]
        #: The organisation's root path, once the prefix is known.
        self.root: str | None = None

    # -- running --------------------------------------------------------------

    def run(self) -> Report:
        """Every read-only check; the :class:`Report`."""
        self.settings.require("CLIENT_ID", "CLIENT_SECRET", "ORGANISATION_ID")
        if self.check_token():
            self.check_api()
        else:
            self._add("API", NOT_AVAILABLE, "no token: nothing below the token endpoint was "
                                            "asked")
        self.check_webhooks()
        return self.report()

    def report(self) -> Report:
        return Report(self.findings, self.dialect.name,
                      tuple(s for s in [*self._secrets, self._token or ""] if s))

    def _add(self, item: str, state: str, seen: Any, proposal: Mapping[str, Any] | None = None,
             configured: Any = None) -> Finding:
        finding = Finding(item, state, str(seen), configured, dict(proposal or {}))
        self.findings.append(finding)
        return finding

    def _judge(self, item: str, key: str, tried: list[tuple[Any, Seen, bool]],
               scope: str = "") -> Any:
        """A finding for dialect item ``key`` from ``(value, seen, works)``
        attempts, the configured value first; the value that works, or None."""
        label = f"{item} [{scope}]" if scope else item
        configured = getattr(self.dialect, key)
        working = next(((value, seen) for value, seen, works in tried if works), None)
        first_seen = tried[0][1]
        if working and working[0] == configured:
            self._add(label, OK, working[1], configured=configured)
        elif working:
            self._add(label, DIFFERS, f"{first_seen}; {working[1]}", {key: working[0]},
                      configured)
        elif all(seen.status_code in (403, 404, 405, 501) for _, seen, _ in tried):
            self._add(label, NOT_AVAILABLE, first_seen, configured=configured)
        else:
            self._add(label, DIFFERS, first_seen, configured=configured)
        if working:
            self.found[key] = working[0]
        return working[0] if working else None

    # -- HTTP -----------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[Seen, Any]:
        return self._call("GET", self.base_url + path, params=params)

    def _call(self, method: str, url: str, *, params: Mapping[str, Any] | None = None,
              document: Any = None, headers: Mapping[str, str] | None = None,
              form: Mapping[str, str] | None = None) -> tuple[Seen, Any]:
        query = f"?{urlencode(params, safe='[],')}" if params else ""
        target = (url[len(self.base_url):] if url.startswith(self.base_url) else
                  urlsplit(url).path) + query
        sent = {"Accept": contract.JSONAPI_MEDIA_TYPE, **(headers or {})}
        if self._token and form is None:
            sent["Authorization"] = f"Bearer {self._token}"
        body = None
        if document is not None:
            sent["Content-Type"] = contract.JSONAPI_MEDIA_TYPE
            body = json.dumps(document).encode()
        seen = Seen(method, target)
        for _ in range(3):
            try:
                response = self.session.request(method, url + query, data=form or body,
                                                headers=sent, timeout=self.timeout,
                                                allow_redirects=False)
            except requests.RequestException as err:
                seen.problem = f"could not be reached ({type(err).__name__})"
                return seen, None
            if response.status_code != 429:
                break
            time.sleep(min(2.0, float(response.headers.get("Retry-After") or 1)))
        seen.status_code = response.status_code
        seen.media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            document = response.json() if response.content else None
        except ValueError:
            document = None
        errors = jsonapi.error_objects(document)
        if errors:
            first = errors[0]
            seen.error_code = str(first.get("code") or "")
            source = first.get("source") if isinstance(first.get("source"), dict) else {}
            seen.error_pointer = str(source.get("pointer") or source.get("parameter") or "")
        elif isinstance(document, dict) and isinstance(document.get("error"), str):
            seen.error_code = document["error"]  # an OAuth error
        if seen.success and isinstance(document, dict) and isinstance(document.get("data"),
                                                                      list):
            data = [d for d in document["data"] if isinstance(d, dict)]
            seen.count = len(data)
            seen.types = tuple(_unique(str(d.get("type")) for d in data))
            links = document.get("links")
            seen.links = tuple(k for k, v in links.items() if v) if isinstance(links, dict) \
                else ()
        return seen, document

    # -- the token ------------------------------------------------------------

    def check_token(self) -> bool:
        """A token from the configured token URL, or from another a shipped
        dialect builds; its lifetime and granted scope (never the token)."""
        tried: list[tuple[Any, Seen, bool]] = []
        settings = self.settings
        for template in _unique(d.token_url for d in self._shipped):
            url = template.format(oauth_base_url=str(settings.OAUTH_BASE_URL).rstrip("/"),
                                  oauth_flow=settings.OAUTH_FLOW)
            form = {"grant_type": "client_credentials", "client_id": str(settings.CLIENT_ID),
                    "client_secret": str(settings.CLIENT_SECRET)}
            if settings.SCOPE:
                form["scope"] = str(settings.SCOPE)
            seen, answer = self._call("POST", url, form=form,
                                      headers={"Accept": "application/json"})
            seen.target = url
            works = seen.success and isinstance(answer, dict) and \
                isinstance(answer.get("access_token"), str)
            if works:
                self._token = answer["access_token"]
                self._secrets.append(self._token)
                granted = answer.get("scope")
                seen.problem = (f"{answer.get('token_type', '?')} token living "
                                f"{answer.get('expires_in', '(unstated)')} s, scope "
                                + (f"{granted}" if granted else
                                   f"not stated (asked for {settings.SCOPE})"))
            tried.append((template, seen, works))
            if works or seen.error_code in ("invalid_client", "unauthorized_client",
                                            "invalid_scope"):
                break  # the endpoint is right; the credentials are not
        if not self._token and tried[-1][1].error_code:
            self._add("token_url", DIFFERS, f"{tried[-1][1]}; check MMC['CLIENT_ID'], "
                                            "MMC['CLIENT_SECRET'] and MMC['SCOPE']",
                      configured=self.dialect.token_url)
            return False
        self._judge("token_url", "token_url", tried)
        return self._token is not None

    # -- the organisation API -------------------------------------------------

    def _candidates(self, key: str) -> list[Any]:
        return _unique(getattr(d, key) for d in self._shipped)

    def _endpoints(self) -> list[tuple[str, dict[str, str]]]:
        endpoints = [("channel_groups_path", {}), ("templates_path", {}),
                     ("notifications_path", {})]
        endpoints += [("dialogues_path", {"agent_id": a.id})
                      for a in self.settings.agents.values()]
        return endpoints

    def check_api(self) -> None:
        prefix = self.check_prefix()
        if prefix is None:
            return
        root = prefix.format(organisation_id=self.settings.ORGANISATION_ID)
        self.root = root
        groups = self.check_list("channel_groups_path", "type_channel_groups")
        if groups is not None:
            self.check_include(groups)
        templates = self.check_list("templates_path", "type_templates")
        if templates is not None:
            self.check_pagination(templates)
        notifications = self.check_list("notifications_path", "type_notifications")
        if notifications is not None:
            self.check_notification_queries(notifications)
        filter_style = self.found.get("filter_style", self.dialect.filter_style)
        for agent in self.settings.agents.values():
            self.check_list("dialogues_path", "type_dialogues", scope=agent.key,
                            agent_id=agent.id, filter_style=filter_style)

    def check_prefix(self) -> str | None:
        """The organisation prefix: the first under which any list answers."""
        tried: list[tuple[Any, Seen, bool]] = []
        for prefix in self._candidates("organisation_prefix"):
            root = prefix.format(organisation_id=self.settings.ORGANISATION_ID)
            seen = None
            for key, params in self._endpoints():
                for path in self._candidates(key):
                    seen, _ = self._get(root + path.format(**params))
                    if seen.success:
                        tried.append((prefix, seen, True))
                        return self._judge("organisation_prefix", "organisation_prefix",
                                           tried)
                    if seen.status_code not in (403, 404, 405):
                        break  # the path exists; something else is wrong
            tried.append((prefix, seen, False))
        return self._judge("organisation_prefix", "organisation_prefix", tried)

    def check_list(self, key: str, type_key: str, *, scope: str = "",
                   filter_style: str | None = None, **params: str) -> Any:
        """One list endpoint: its path (and, for dialogues, the status
        filter) and the type name of what it lists; its document or None."""
        tried: list[tuple[Any, Seen, bool]] = []
        documents: dict[str, Any] = {}
        query = None
        if filter_style is not None:
            name = Dialect(filter_style=filter_style).filter_parameter("status")
            query = {name: contract.DIALOGUE_OPEN}
        for path in self._candidates(key):
            seen, document = self._get(self.root + path.format(**params), query)
            tried.append((path, seen, seen.success))
            documents[path] = document
            if seen.success:
                break
        path = self._judge(key, key, tried, scope)
        if path is None:
            return None
        document = documents[path]
        seen = tried[-1][1]
        if seen.types:
            self._judge_type(type_key, seen.types, seen, scope)
        return document

    def _judge_type(self, key: str, types: tuple[str, ...], seen: Seen, scope: str = "") -> None:
        configured = getattr(self.dialect, key)
        label = f"{key} [{scope}]" if scope else key
        if types == (configured,):
            self._add(label, OK, f"type {configured}", configured=configured)
        else:
            self._add(label, DIFFERS, f"type {', '.join(types)} in {seen.target}",
                      {key: types[0]}, configured)
            self.found[key] = types[0]

    def check_include(self, document: Any) -> None:
        """``include=`` the channels of the channel groups, by the channels' type name."""
        path = self.root + self.found["channel_groups_path"]
        tried: list[tuple[Any, Seen, bool]] = []
        for name in self._candidates("type_channels"):
            seen, answer = self._get(path, {"include": name})
            included = answer.get("included") if isinstance(answer, dict) else None
            types = tuple(_unique(str(i.get("type")) for i in included or []
                                  if isinstance(i, dict)))
            if seen.success and types:
                seen.problem = f"included {', '.join(types)}"
                tried.append((types[0], seen, True))
                break
            tried.append((name, seen, False))
        self._judge("type_channels", "type_channels", tried)

    def check_pagination(self, unpaged: Any) -> None:
        """The first page's grammar: a page of one item, with ``links.next``
        when there are more, is a grammar the platform reads."""
        path = self.root + self.found["templates_path"]
        total = len(unpaged.get("data") or []) if isinstance(unpaged, dict) else 0
        tried: list[tuple[Any, Seen, bool]] = []
        for style in _unique([self.dialect.pagination, "number", "offset"]):
            params = Dialect(pagination=style).first_page(1)
            seen, _ = self._get(path, params)
            if style == "links":
                works = seen.success
            else:
                works = seen.success and (total < 2 or (seen.count == 1 and "next" in seen.links))
            if seen.success and not works:
                seen.problem = "the page size was not honoured"
            tried.append((style, seen, works))
            if works:
                break
        if not any(works for _, _, works in tried):
            seen, _ = self._get(path)
            tried.append(("links", seen, seen.success))
        self._judge("pagination", "pagination", tried)

    def check_notification_queries(self, unfiltered: Any) -> None:
        """The filter grammar (by id), the idempotency-key filter, one
        notification by id, and the status words of those listed."""
        path = self.root + self.found["notifications_path"]
        listed = [d for d in (unfiltered.get("data") or []) if isinstance(d, dict)] \
            if isinstance(unfiltered, dict) else []
        tried: list[tuple[Any, Seen, bool]] = []
        for style in _unique([self.dialect.filter_style, "plain", "operators"]):
            name = Dialect(filter_style=style).filter_parameter("id", "in")
            seen, _ = self._get(path, {name: "0"})
            works = seen.success and seen.count == 0
            if seen.success and not works:
                seen.problem = "the filter was ignored"
            tried.append((style, seen, works))
            if works:
                break
        style = self._judge("filter_style", "filter_style", tried)
        if style is not None and listed:
            tried = []
            for field_name in self._candidates("idempotency_key_filter"):
                parameter = Dialect(filter_style=style).filter_parameter(field_name)
                seen, _ = self._get(path, {parameter: uuid.uuid4().hex})
                works = seen.success and seen.count == 0
                if seen.success and not works:
                    seen.problem = "the filter was ignored"
                tried.append((field_name, seen, works))
                if works:
                    break
            self._judge("idempotency_key_filter", "idempotency_key_filter", tried)
        if listed:
            notification_id = str(listed[0].get("id"))
            tried = []
            for template in self._candidates("notification_path"):
                seen, _ = self._get(self.root + template.format(
                    notification_id=notification_id))
                tried.append((template, seen, seen.success))
                if seen.success:
                    break
            self._judge("notification_path", "notification_path", tried)
            words = _unique(str((d.get("attributes") or {}).get("status")) for d in listed)
            self.check_status_words(words, f"status words {', '.join(words)} in {path}")

    def check_status_words(self, words: list[str], where: str) -> None:
        unknown = [w for w in words if self.dialect.our_status(w) is None]
        if not unknown:
            self._add("statuses", OK, where)
            return
        for dialect in self._shipped[1:]:
            if all(dialect.our_status(w) for w in words):
                self._add("statuses", DIFFERS, f"{where}: {', '.join(unknown)} unknown",
                          {"statuses": dict(dialect.statuses)})
                self.found["statuses"] = dict(dialect.statuses)
                return
        self._add("statuses", DIFFERS, f"{where}: {', '.join(unknown)} unknown; map each to "
                                       "one of ours in CONTRACT['statuses']")

    # -- the site's side -----------------------------------------------------

    def check_webhooks(self) -> None:
        """Each agent's secrets are set, and its webhook URL answers an
        unsigned delivery from the site itself with 401 (nothing stored)."""
        from django.urls import NoReverseMatch, reverse

        for agent in self.settings.agents.values():
            label = f"webhook [{agent.key}]"
            self._add(f"secrets [{agent.key}]", OK if agent.webhook_secrets else DIFFERS,
                      f"{len(agent.webhook_secrets)} secret(s) set" if agent.webhook_secrets
                      else "no WEBHOOK_SECRETS: every delivery is refused")
            try:
                path = reverse("django_mmc:webhook", kwargs={"agent_key": agent.key})
            except NoReverseMatch:
                self._add(label, NOT_AVAILABLE, "django_mmc.urls is not in the site's URLconf")
                continue
            if not self.site_url:
                self._add(label, NOT_AVAILABLE, f"{path}: give --site-url to check it")
                continue
            url = self.site_url + path
            try:
                response = requests.post(url, data=b"{}", timeout=self.timeout,
                                         allow_redirects=False, headers={
                                             "Content-Type": contract.JSONAPI_MEDIA_TYPE})
            except requests.RequestException as err:
                self._add(label, DIFFERS, f"POST {url}: could not be reached "
                                          f"({type(err).__name__})")
                continue
            challenge = response.headers.get("WWW-Authenticate", "")
            seen = f"POST {url} unsigned: {response.status_code}"
            if response.status_code == 401 and challenge.startswith(
                    self.dialect.signature_header):
                self._add(label, OK, f"{seen}, the signature is asked for")
            else:
                where = response.headers.get("Location")
                self._add(label, DIFFERS, seen + (f", redirected to {where}" if where else ""))

    # -- the test send ----------------------------------------------------------

    def send_test(self, to: str, template_name: str, *, context: Mapping[str, Any] | None = None,
                  timeout: float = 60, interval: float = 1.0) -> Finding:
        """Send one notification (template ``template_name``) to ``to`` and
        follow it to a final status, or until ``timeout`` seconds pass. Uses
        the values found to work where the configured ones did not."""
        found = {**{k: getattr(self.dialect, k) for k in (
            "templates_path", "notifications_path", "notification_path", "type_notifications",
            "type_templates", "type_channel_groups", "filter_style", "pagination")},
            **self.found}
        if self._token is None and not self.check_token():
            return self._add("test send", NOT_AVAILABLE, "no token")
        root = self.root or self.dialect.organisation_prefix.format(
            organisation_id=self.settings.ORGANISATION_ID)
        seen, document = self._get(root + found["templates_path"],
                                   Dialect(pagination=found["pagination"]).first_page(
                                       contract.MAX_PAGE_SIZE))
        templates = [t for t in (document or {}).get("data") or [] if isinstance(t, dict)] \
            if seen.success else []
        match = [t for t in templates if (t.get("attributes") or {}).get("name") == template_name]
        if not match:
            return self._add("test send", NOT_AVAILABLE,
                             f"{seen}; no template named {template_name!r}")
        group = self.settings.DEFAULT_CHANNEL_GROUP
        if group in (None, ""):
            return self._add("test send", NOT_AVAILABLE, "MMC['DEFAULT_CHANNEL_GROUP'] is not "
                                                         "set")
        tried: list[tuple[Any, Seen, bool]] = []
        answer = None
        for type_name in _unique([found["type_notifications"],
                                  *self._candidates("type_notifications")]):
            body = jsonapi.resource_document(type_name, attributes={
                "channelType": self.settings.DEFAULT_CHANNEL_TYPE,
                "context": dict(context or {})},
                relationships={"recipient": (contract.RECIPIENT_TYPE, to),
                               "template": (found["type_templates"], str(match[0]["id"])),
                               "channelGroup": (found["type_channel_groups"], str(group))})
            seen, answer = self._call(
                "POST", self.base_url + root + found["notifications_path"], document=body,
                headers={contract.IDEMPOTENCY_HEADER: uuid.uuid4().hex})
            tried.append((type_name, seen, seen.success))
            if seen.success or seen.error_pointer != "/data/type":
                break  # sent, or refused for another reason than the type name
        if "type_notifications" not in self.found or not seen.success:
            self._judge("type_notifications", "type_notifications", tried)
        if not seen.success:
            return self._add("test send", DIFFERS, seen)
        notification_id = str(((answer or {}).get("data") or {}).get("id"))
        if "notification_path" not in self.found:
            tried = []
            for template in _unique([found["notification_path"],
                                     *self._candidates("notification_path")]):
                seen, _ = self._get(root + template.format(notification_id=notification_id))
                tried.append((template, seen, seen.success))
                if seen.success:
                    break
            if self._judge("notification_path", "notification_path", tried) is None:
                return self._add("test send", DIFFERS, f"notification {notification_id} "
                                                       "was sent but cannot be read back")
        path = root + self.found["notification_path"].format(notification_id=notification_id)
        words: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            word = str((((answer or {}).get("data") or {}).get("attributes") or {})
                       .get("status"))
            if not words or words[-1] != word:
                words.append(word)
            if self._our_status(word) in FINAL_STATUSES or time.monotonic() >= deadline:
                break
            time.sleep(interval)
            seen, answer = self._get(path)
            if not seen.success:
                return self._add("test send", DIFFERS, seen)
        walk = " -> ".join(words)
        if any(self.dialect.our_status(w) is None for w in words):
            self.check_status_words(words, f"notification {notification_id}: {walk}")
        final = self._our_status(words[-1]) in FINAL_STATUSES
        return self._add("test send", OK if final else DIFFERS,
                         f"notification {notification_id}: {walk}"
                         + ("" if final else f" (no final status within {timeout:g} s)"))

    def _our_status(self, word: str) -> str | None:
        """Ours for ``word`` in the site's dialect, or the first that knows it."""
        for dialect in self._shipped:
            if dialect.our_status(word):
                return dialect.our_status(word)
        return None
