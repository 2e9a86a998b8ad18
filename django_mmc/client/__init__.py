"""The MMC REST client: django_mmc's one door to the platform.

:func:`get_client` returns the process's client: one pooled HTTP session, the
site's shared token and the site-wide rate limit. Tasks, management commands
and the admin call it; models never build HTTP requests.

Calls return the plain objects of :mod:`.resources` and raise the exceptions
of :mod:`django_mmc.exceptions`. The client does not retry by itself, except
once after a 401 with a fresh token: whether and when to retry is the
caller's decision (the Celery tasks make it), and every create carries the
caller's ``Idempotency-Key`` so a retry can never become a second message.

The bearer token goes to the platform's origin (the scheme, host and port of
``MMC['BASE_URL']``) and nowhere else: a link from the platform that points
anywhere else is refused before any request is made.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter

from .. import __version__, contract
from ..conf import SETTING_NAME, MMCSettings, mmc_settings
from ..exceptions import (
    MMCAPIError,
    MMCAuthError,
    MMCConflictError,
    MMCNotFoundError,
    MMCPermanentError,
    MMCRateLimitedError,
    MMCTransientError,
    MMCValidationError,
)
from . import jsonapi
from .auth import TokenManager, authorization_header
from .ratelimit import RateLimiter
from .resources import (
    ChannelGroupResource,
    DialogueResource,
    FileResource,
    MessageResource,
    NotificationResource,
    TemplateResource,
)

__all__ = ["MMCClient", "get_client", "reset_client"]

logger = logging.getLogger("django_mmc.client")

USER_AGENT = f"django-messagemycustomer/{__version__} python-requests/{requests.__version__}"
_MAX_PAGES = 10_000
#: The error code of a link from the platform that points away from it.
UNTRUSTED_LINK = "UNTRUSTED_LINK"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin(url: str) -> tuple[str, str, int | None] | None:
    """``(scheme, host, port)`` of an absolute ``http(s)`` URL, the port
    filled in when it is the scheme's default; ``None`` for anything else,
    including a URL with a user name or password in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def shown_origin(url: str) -> str:
    """The scheme, host and port of ``url`` for an error message (never a
    user name, password, path or query)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "an unreadable URL"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    return f"{parts.scheme or '?'}://{parts.hostname or '?'}{port}"[:200]


def create_session(base_url: str | None = None, pool_size: int = 32) -> requests.Session:
    """The pooled HTTP session of one process. Override ``MMCClient.create_session``
    to add proxies or certificates.

    The environment's proxy and CA-bundle variables (``HTTPS_PROXY``,
    ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``...) are read once, here: requests
    would otherwise scan the whole environment again on every request."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    if base_url:
        session.proxies.update(requests.utils.get_environ_proxies(base_url))
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    session.trust_env = False
    return session


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def error_from_response(response: requests.Response, method: str, path: str) -> MMCAPIError:
    """Map a non-2xx answer to the exception class of the contract's table."""
    status = response.status_code
    try:
        document = response.json()
    except ValueError:
        document = None
    errors = jsonapi.error_objects(document)
    first = errors[0] if errors else {}
    source = first.get("source") if isinstance(first.get("source"), dict) else {}
    kwargs: dict[str, Any] = {
        "status_code": status,
        "code": first.get("code"),
        "title": first.get("title"),
        "detail": first.get("detail"),
        "pointer": source.get("pointer"),
        "meta": first.get("meta") if isinstance(first.get("meta"), dict) else None,
        "errors": errors,
        "method": method,
        "path": path,
        "response": response,
    }
    if not first:
        kwargs["detail"] = response.reason or f"HTTP {status}"
    if status == 429:
        return MMCRateLimitedError(
            retry_after=parse_retry_after(response.headers.get("Retry-After")), **kwargs
        )
    if status >= 500:
        return MMCTransientError(
            retry_after=parse_retry_after(response.headers.get("Retry-After")), **kwargs
        )
    if status == 401:
        return MMCAuthError(**kwargs)
    if status == 404:
        return MMCNotFoundError(**kwargs)
    if status == 409:
        return MMCConflictError(**kwargs)
    if status == 422:
        return MMCValidationError(**kwargs)
    return MMCPermanentError(**kwargs)


class MMCClient:
    """Talks to the platform for one site. Thread-safe; one per process."""

    def __init__(self, settings: MMCSettings | None = None) -> None:
        self.settings = settings or mmc_settings
        self.settings.require("CLIENT_ID", "CLIENT_SECRET", "ORGANISATION_ID")
        #: The platform's dialect (``MMC['CONTRACT']``): every path, query
        #: form and type name below comes from it.
        self.dialect = self.settings.dialect
        self.base_url = self.dialect.organisation_url(
            self.settings.BASE_URL, str(self.settings.ORGANISATION_ID)
        )
        #: Where the bearer token may go: the origin of ``BASE_URL``.
        self.origin = url_origin(self.base_url)
        self.timeout = self.settings.timeout
        self.session = self.create_session()
        self.tokens = TokenManager(
            token_url=self.settings.token_url,
            client_id=str(self.settings.CLIENT_ID),
            client_secret=str(self.settings.CLIENT_SECRET),
            scope=self.settings.SCOPE,
            timeout=self.timeout,
            margin=float(self.settings.TOKEN_REFRESH_MARGIN),
            cache_alias=self.settings.CACHE_ALIAS,
        )
        self.rate_limiter = RateLimiter(self.settings.RATE_LIMIT, self.settings.CACHE_ALIAS)
        #: Requests sent by this client (for tests and metrics).
        self.request_count = 0
        #: Whether the platform refused to list notifications by id; polling
        #: then asks for them one by one.
        self.bulk_poll_refused = False

    def __repr__(self) -> str:
        return f"<MMCClient {self.base_url}>"

    def create_session(self) -> requests.Session:
        return create_session(self.base_url)

    def close(self) -> None:
        self.session.close()

    # -- transport ------------------------------------------------------

    def absolute_url(self, path: str) -> str:
        """The URL of ``path``: relative to the organisation, or an absolute
        URL at the platform's origin. Any other absolute URL is refused
        (:class:`MMCPermanentError`, code ``UNTRUSTED_LINK``), before a
        request, so the token never goes there."""
        if not urlsplit(path).scheme:
            return self.base_url + path
        if self.origin is None or url_origin(path) != self.origin:
            raise MMCPermanentError(
                f"A link from the platform points to {shown_origin(path)}, not to the "
                f"platform at {shown_origin(self.base_url)}; it was not followed.",
                code=UNTRUSTED_LINK,
            )
        return path

    @sensitive_variables("token", "headers")
    def request(
        self,
        method: str,
        path: str,
        *,
        document: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> Any:
        """Send one API request and return the decoded JSON:API document
        (``None`` for an empty body). ``path`` is relative to the
        organisation, or an absolute URL at the platform's origin
        (pagination links; see :meth:`absolute_url`).

        Marked ``sensitive_variables``, and the token and its header are
        :class:`~.auth.SecretText`: Django's error pages and e-mails show
        neither, in this frame or in those of requests and urllib3 below it."""
        url = self.absolute_url(path)
        headers = {"Accept": contract.JSONAPI_MEDIA_TYPE}
        body: bytes | None = None
        if document is not None:
            headers["Content-Type"] = contract.JSONAPI_MEDIA_TYPE
            body = json.dumps(document, separators=(",", ":")).encode()
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > contract.IDEMPOTENCY_KEY_MAX_LENGTH:
                raise ValueError("An Idempotency-Key must be 1 to 255 characters long.")
            headers[contract.IDEMPOTENCY_HEADER] = idempotency_key
        display_path = url[len(self.base_url):] if url.startswith(self.base_url) else path
        for attempt in (1, 2):
            token = self.tokens.get_token()
            headers["Authorization"] = authorization_header(token)
            self.rate_limiter.acquire()
            self.request_count += 1
            try:
                response = self.session.request(
                    method, url, data=body, params=params, files=files,
                    headers=headers, timeout=self.timeout,
                )
            except requests.Timeout:
                raise MMCTransientError(
                    "The platform did not answer in time.", method=method, path=display_path
                ) from None
            except requests.ConnectionError:
                raise MMCTransientError(
                    "The platform could not be reached.", method=method, path=display_path
                ) from None
            except (requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError):
                # The connection broke mid-answer: as transient as a timeout.
                raise MMCTransientError(
                    "The platform's answer was cut off.", method=method, path=display_path
                ) from None
            if response.status_code == 401 and attempt == 1:
                # Drop the token we sent (only that one) and try once more.
                self.tokens.invalidate(token)
                response.close()
                continue
            break
        if response.status_code >= 400:
            raise error_from_response(response, method, display_path)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise MMCTransientError(
                "The platform sent an answer that is not JSON.",
                status_code=response.status_code, method=method, path=display_path,
            ) from None

    def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """Yield ``(document, resource objects)`` for every page of a list,
        following ``links.next`` until it is absent or null. The first page
        is asked for in the dialect's pagination grammar; a list that does
        not paginate (no ``links.next``) is one page.

        A relative link is read against the page it came in. A link to any
        other origin than the platform's raises :class:`MMCPermanentError`
        (code ``UNTRUSTED_LINK``) and is never requested."""
        query = {**self.dialect.first_page(contract.MAX_PAGE_SIZE), **(params or {})}
        url: str | None = self.absolute_url(path)
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            if url is None:
                return
            document = self.request("GET", url, params=query)
            yield document, jsonapi.primary_data(document) or []
            link = jsonapi.next_link(document)
            url = self.absolute_url(urljoin(url, link)) if link else None
            query = None  # the link carries the query
            if url in seen:  # a platform bug must not loop forever
                return
            if url:
                seen.add(url)

    # -- directory ------------------------------------------------------

    def list_channel_groups(self) -> list[ChannelGroupResource]:
        """Every channel group with its channels."""
        groups: list[ChannelGroupResource] = []
        dialect = self.dialect
        include = {"include": dialect.type_channels}
        for document, _ in self.paginate(dialect.channel_groups_path, include):
            groups.extend(jsonapi.parse_channel_groups(document))
        return groups

    def list_templates(self) -> list[TemplateResource]:
        """Every template of the organisation."""
        return [
            jsonapi.parse_template(obj)
            for _, page in self.paginate(self.dialect.templates_path)
            for obj in page
        ]

    # -- notifications --------------------------------------------------

    def create_notification(
        self,
        *,
        recipient: str | None,
        template_id: str,
        channel_group_id: str,
        channel_type: str,
        context: Mapping[str, Any] | None,
        idempotency_key: str,
        customer_id: str | None = None,
    ) -> NotificationResource:
        """Send a notification to ``recipient`` (an E.164 number) or, without
        one, to the platform's ``customer_id``. A repeat with the same
        ``idempotency_key`` returns the first result instead of sending again."""
        dialect = self.dialect
        document = jsonapi.resource_document(
            dialect.type_notifications,
            attributes={"channelType": channel_type, "context": dict(context or {})},
            relationships={
                "recipient": dialect.recipient_linkage(recipient, customer_id),
                "template": (dialect.type_templates, template_id),
                "channelGroup": (dialect.type_channel_groups, channel_group_id),
            },
        )
        answer = self.request(
            "POST", dialect.notifications_path, document=document,
            idempotency_key=idempotency_key,
        )
        return jsonapi.parse_notification(jsonapi.primary_data(answer))

    def get_notification(self, notification_id: str) -> NotificationResource:
        path = self.dialect.notification_path.format(notification_id=notification_id)
        return jsonapi.parse_notification(jsonapi.primary_data(self.request("GET", path)))

    def get_notifications(self, ids: Iterable[str]) -> list[NotificationResource]:
        """The notifications with these ids, ``MAX_FILTER_IDS`` per request.
        Ids the platform does not know are simply absent from the result.

        A platform that refuses to list by id (400 or 404) is asked for each
        notification on its own from then on, through the same rate limit;
        the log says so once per process."""
        ids = [str(i) for i in ids]
        found: list[NotificationResource] = []
        for start in range(0, len(ids), contract.MAX_FILTER_IDS):
            chunk = ids[start:start + contract.MAX_FILTER_IDS]
            if not self.bulk_poll_refused:
                try:
                    found.extend(self._list_notifications(chunk))
                    continue
                except (MMCNotFoundError, MMCPermanentError) as err:
                    if err.status_code not in (400, 404):
                        raise
                    self.bulk_poll_refused = True
                    logger.warning(
                        "django_mmc: the platform refused to list notifications by id "
                        "(%s %s); status polling now asks for each one on its own",
                        err.status_code, err.code or "")
            for notification_id in chunk:
                try:
                    found.append(self.get_notification(notification_id))
                except MMCNotFoundError:
                    pass
        return found

    def _list_notifications(self, ids: list[str]) -> list[NotificationResource]:
        dialect = self.dialect
        answer = self.request("GET", dialect.notifications_path,
                              params={dialect.filter_parameter("id", "in"): ",".join(ids)})
        return [jsonapi.parse_notification(o) for o in jsonapi.primary_data(answer) or []]

    def find_notification(self, idempotency_key: str) -> NotificationResource | None:
        """The notification the platform created for ``idempotency_key``, or
        ``None`` when it has none: asks, never creates."""
        dialect = self.dialect
        answer = self.request(
            "GET", dialect.notifications_path,
            params={dialect.filter_parameter(dialect.idempotency_key_filter): str(idempotency_key)})
        found = [jsonapi.parse_notification(o) for o in jsonapi.primary_data(answer) or []]
        return found[0] if found else None

    # -- dialogues ------------------------------------------------------

    def create_dialogue(
        self,
        agent_id: str,
        *,
        recipient: str | None,
        channel_group_id: str,
        channel_type: str,
        idempotency_key: str,
        template_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        customer_id: str | None = None,
    ) -> DialogueResource:
        """Open a dialogue with ``recipient`` (an E.164 number) or, without
        one, the platform's ``customer_id``; with its opening template
        (``template_id`` and ``context``) when given: only for a dialect whose
        ``opening_template`` is ``"create"``. Raises :class:`MMCConflictError`
        (``DIALOGUE_ACTIVE``) naming the dialogue and agent that hold the
        recipient."""
        dialect = self.dialect
        attributes: dict[str, Any] = {"channelType": channel_type}
        relationships = {
            "recipient": dialect.recipient_linkage(recipient, customer_id),
            "channelGroup": (dialect.type_channel_groups, channel_group_id),
        }
        if template_id is not None:
            attributes["context"] = dict(context or {})
            relationships["template"] = (dialect.type_templates, template_id)
        document = jsonapi.resource_document(
            dialect.type_dialogues, attributes=attributes, relationships=relationships)
        answer = self.request(
            "POST", dialect.dialogues_path.format(agent_id=agent_id), document=document,
            idempotency_key=idempotency_key,
        )
        return jsonapi.parse_dialogue(jsonapi.primary_data(answer))

    def get_dialogue(self, agent_id: str, dialogue_id: str) -> DialogueResource:
        path = self.dialect.dialogue_path.format(agent_id=agent_id, dialogue_id=dialogue_id)
        return jsonapi.parse_dialogue(jsonapi.primary_data(self.request("GET", path)))

    def list_dialogues(self, agent_id: str, *, status: str | None = None) -> list[DialogueResource]:
        dialect = self.dialect
        params = {dialect.filter_parameter("status"): status} if status else None
        return [
            jsonapi.parse_dialogue(obj)
            for _, page in self.paginate(dialect.dialogues_path.format(agent_id=agent_id), params)
            for obj in page
        ]

    def close_dialogue(self, agent_id: str, dialogue_id: str) -> DialogueResource:
        """Close a dialogue. Closing a closed dialogue succeeds again."""
        dialect = self.dialect
        document = jsonapi.resource_document(
            dialect.type_dialogues, attributes={"status": contract.DIALOGUE_CLOSED},
            resource_id=dialogue_id,
        )
        path = dialect.dialogue_path.format(agent_id=agent_id, dialogue_id=dialogue_id)
        return jsonapi.parse_dialogue(
            jsonapi.primary_data(self.request("PATCH", path, document=document))
        )

    def send_message(
        self,
        agent_id: str,
        dialogue_id: str,
        *,
        text: str | None = None,
        template_id: str | None = None,
        context: Mapping[str, Any] | None = None,
        file_ids: Iterable[str] = (),
        channel_type: str | None = None,
        idempotency_key: str,
    ) -> MessageResource:
        """Send a dialogue message: free text, or a template with its context."""
        dialect = self.dialect
        attributes: dict[str, Any] = {}
        relationships: dict[str, Any] = {}
        if text is not None:
            attributes["text"] = text
        if template_id is not None:
            attributes["context"] = dict(context or {})
            relationships["template"] = (dialect.type_templates, template_id)
        if channel_type:
            attributes["channelType"] = channel_type
        file_ids = list(file_ids)
        if file_ids:
            relationships["files"] = [(dialect.type_files, f) for f in file_ids]
        document = jsonapi.resource_document(
            dialect.type_messages, attributes=attributes, relationships=relationships
        )
        path = dialect.messages_path.format(agent_id=agent_id, dialogue_id=dialogue_id)
        answer = self.request("POST", path, document=document, idempotency_key=idempotency_key)
        return jsonapi.parse_message(jsonapi.primary_data(answer))

    def list_messages(self, agent_id: str, dialogue_id: str) -> list[MessageResource]:
        path = self.dialect.messages_path.format(agent_id=agent_id, dialogue_id=dialogue_id)
        return [jsonapi.parse_message(obj) for _, page in self.paginate(path) for obj in page]

    # -- files ----------------------------------------------------------

    def upload_file(
        self, name: str, content: bytes, content_type: str, *, idempotency_key: str
    ) -> FileResource:
        """Upload a file for use in a message's ``files``."""
        if len(content) > contract.MAX_FILE_SIZE:
            raise MMCPermanentError(
                f"The file is {len(content)} bytes; the platform accepts at most "
                f"{contract.MAX_FILE_SIZE}.", code=contract.ERROR_PAYLOAD_TOO_LARGE,
            )
        answer = self.request(
            "POST", self.dialect.files_path, files={"file": (name, content, content_type)},
            idempotency_key=idempotency_key,
        )
        return jsonapi.parse_file(jsonapi.primary_data(answer))


_clients: dict[int, MMCClient] = {}
_clients_lock = threading.Lock()


def get_client() -> MMCClient:
    """The client of this process (one per process: Celery's prefork children
    each build their own after the fork, never sharing sockets)."""
    pid = os.getpid()
    client = _clients.get(pid)
    if client is None:
        with _clients_lock:
            client = _clients.get(pid)
            if client is None:
                client = MMCClient()
                _clients.clear()  # a forked child drops its parent's client
                _clients[pid] = client
    return client


def reset_client() -> None:
    """Forget the process's client (after the ``MMC`` setting changed), and
    which unknown status words it has logged."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()
    jsonapi.forget_unknown_status_words()


@receiver(setting_changed)
def _reset_on_change(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        reset_client()
