"""The list query grammar: filters, pages and ``include``.

Every query parameter name the sandbox reads is spelled here and only here,
so another grammar (``filter[id][in]=``, ``page[limit]``/``page[offset]``)
is one replacement of :class:`ListQuery`.
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from .. import contract
from .defaults import DEFAULT_PAGE_SIZE
from .state import Page
from .state.errors import bad_request

PAGE_FAMILY = "page["
PAGE_NUMBER = PAGE_FAMILY + "number]"
PAGE_SIZE = PAGE_FAMILY + "size]"
INCLUDE = "include"


def filter_parameter(field: str) -> str:
    """The query parameter that filters a list by ``field``."""
    return f"filter[{field}]"


class ListQuery:
    """The query string of one list request, read by the contract's grammar.

    ``url`` is the request's absolute URL without its query; page links
    keep every other parameter and set the page ones.
    """

    def __init__(self, query: str, url: str) -> None:
        self.values = parse_qs(query, keep_blank_values=True)
        self.url = url

    def first(self, name: str) -> str | None:
        """The first value of parameter ``name``, or None."""
        return self.values.get(name, [None])[0]

    def include(self) -> str | None:
        return self.first(INCLUDE)

    def filter(self, field: str, allowed: tuple[str, ...] | None = None) -> str | None:
        """The one value a list is filtered by, or None; 400 if not ``allowed``."""
        name = filter_parameter(field)
        value = self.first(name)
        if value is not None and allowed is not None and value not in allowed:
            raise bad_request(f"{name} is {' or '.join(allowed)}.", parameter=name)
        return value

    def filter_ids(self, field: str = "id") -> list[str] | None:
        """The ids a list is filtered by, or None; 400 beyond ``MAX_FILTER_IDS``."""
        name = filter_parameter(field)
        raw = self.first(name)
        if raw is None:
            return None
        ids = [item.strip() for item in raw.split(",") if item.strip()]
        if len(ids) > contract.MAX_FILTER_IDS:
            raise bad_request(
                f"{name} takes at most {contract.MAX_FILTER_IDS} ids.", parameter=name
            )
        return ids

    def page(self, default_size: int = DEFAULT_PAGE_SIZE) -> Page:
        """The requested page, with links that keep the other parameters."""
        number = self._whole_number(PAGE_NUMBER, 1, None)
        size = self._whole_number(PAGE_SIZE, default_size, contract.MAX_PAGE_SIZE)
        # Any other page[...] parameter belongs to another grammar: links drop it.
        kept = [(k, v[0]) for k, v in self.values.items() if not k.startswith(PAGE_FAMILY)]

        def link(page_number: int) -> str:
            pairs = [*kept, (PAGE_NUMBER, str(page_number)), (PAGE_SIZE, str(size))]
            encoded = "&".join(f"{quote(k, safe='[]')}={quote(v, safe=',')}" for k, v in pairs)
            return f"{self.url}?{encoded}"

        return Page(number, size, link)

    def _whole_number(self, name: str, default: int, maximum: int | None) -> int:
        raw = self.first(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1 or (maximum is not None and value > maximum):
            limit = f" and at most {maximum}" if maximum else ""
            raise bad_request(f"{name} must be a whole number from 1{limit}.", parameter=name)
        return value
