"""The organisation API's URL map: which view serves which path and method.

:func:`build_routes` is the one place that reads the dialect's paths
(``organisation_prefix``, ``notifications_path``, ...) and pairs each path
with its views, so a platform that names its paths differently needs a
different :class:`~django_mmc.dialect.Dialect`, not edits here. The same table resolves a request,
answers ``405`` with ``Allow``, and builds the ``Location`` of a created
object.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .. import contract
from ..dialect import DEFAULT_DIALECT, Dialect
from . import api
from .state import ApiError

View = Callable[[api.ApiCall], api.Answer]


def compile_path(template: str, *, open_end: bool = False) -> re.Pattern[str]:
    """A regex for a path template such as ``/dialogue-agents/{agent_id}/dialogues``.

    Each ``{name}`` matches one path segment as a named group. With
    ``open_end`` the rest of the path is captured as ``rest``.
    """
    pattern = re.escape(template)
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", pattern)
    if open_end:
        pattern += r"(?P<rest>/.*)?"
    return re.compile(pattern + r"\Z")


@dataclass(frozen=True)
class Route:
    """One path template and the view for each method it allows."""

    name: str
    template: str
    views: Mapping[str, View]
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", compile_path(self.template))

    @property
    def allowed(self) -> str:
        """The ``Allow`` header's value."""
        return ", ".join(self.views)

    def path(self, **params: str) -> str:
        """This route's path with ``params`` filled in (extra ones are ignored)."""
        return self.template.format(**params)


class Routes:
    """The organisation prefix and the routes below it, looked up in order."""

    def __init__(self, organisation_prefix: str, routes: Iterable[Route]) -> None:
        self.organisation_prefix = organisation_prefix
        self._organisation = compile_path(organisation_prefix, open_end=True)
        self._routes = list(routes)
        self._by_name = {route.name: route for route in self._routes}

    def __getitem__(self, name: str) -> Route:
        return self._by_name[name]

    def __iter__(self) -> Any:
        return iter(self._routes)

    def organisation_url(self, base_url: str, organisation_id: str) -> str:
        """The root every organisation-scoped path is joined to."""
        return base_url.rstrip("/") + self.organisation_prefix.format(
            organisation_id=organisation_id
        )

    def resolve(self, path: str, organisation_id: str) -> tuple[Route, dict[str, str]]:
        """The route and path parameters of a request path, or 404."""
        found = self._organisation.match(path)
        if found is None or unquote(found["organisation_id"]) != organisation_id:
            raise ApiError(404, contract.ERROR_NOT_FOUND, f"No such organisation or path: {path}.")
        rest = found["rest"] or "/"
        for route in self._routes:
            match = route.pattern.match(rest)
            if match is not None:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
        raise ApiError(404, contract.ERROR_NOT_FOUND, f"No such path: {path}.")


def build_routes(wire: Dialect = DEFAULT_DIALECT) -> Routes:
    """The organisation API's routes, from the paths of the dialect ``wire``."""
    message = wire.messages_path + "/{message_id}"
    file = wire.files_path + "/{file_id}"
    table = [
        ("channel_groups", wire.channel_groups_path, {"GET": api.list_channel_groups}),
        ("templates", wire.templates_path, {"GET": api.list_templates}),
        (
            "notifications",
            wire.notifications_path,
            {"GET": api.list_notifications, "POST": api.create_notification},
        ),
        ("notification", wire.notification_path, {"GET": api.get_notification}),
        (
            "dialogues",
            wire.dialogues_path,
            {"GET": api.list_dialogues, "POST": api.create_dialogue},
        ),
        ("dialogue", wire.dialogue_path, {"GET": api.get_dialogue, "PATCH": api.update_dialogue}),
        ("messages", wire.messages_path, {"GET": api.list_messages, "POST": api.create_message}),
        ("message", message, {"GET": api.get_message}),
        ("files", wire.files_path, {"POST": api.upload_file}),
        ("file", file, {"GET": api.get_file}),
    ]
    return Routes(wire.organisation_prefix, (Route(*row) for row in table))
