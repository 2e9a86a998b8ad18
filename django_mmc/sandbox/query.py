"""The list query grammar: filters, pages and ``include``.

Every query parameter the sandbox reads is named by the dialect
(:meth:`django_mmc.dialect.Dialect.filter_parameter`, ``pagination``), so
the sandbox answers ``filter[id]=`` or ``filter[id][in]=``, and
``page[number]``/``page[size]`` or ``page[limit]``/``page[offset]``, as the
platform it plays would, and refuses the other form with 400.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, quote

from .. import contract
from ..dialect import DEFAULT_DIALECT, Dialect
from .defaults import DEFAULT_PAGE_SIZE
from .state import Page
from .state.errors import bad_request

PAGE_FAMILY = "page["
PAGE_NUMBER = PAGE_FAMILY + "number]"
PAGE_SIZE = PAGE_FAMILY + "size]"
PAGE_LIMIT = PAGE_FAMILY + "limit]"
PAGE_OFFSET = PAGE_FAMILY + "offset]"
FILTER_FAMILY = "filter["
INCLUDE = "include"


class ListQuery:
    """The query string of one list request, read by the dialect's grammar.

    ``url`` is the request's absolute URL without its query; page links
    keep every other parameter and set the page ones.
    """

    def __init__(self, query: str, url: str, dialect: Dialect = DEFAULT_DIALECT) -> None:
        self.values = parse_qs(query, keep_blank_values=True)
        self.url = url
        self.dialect = dialect
        self._check_filter_grammar()

    def _check_filter_grammar(self) -> None:
        # A platform with operators refuses the two-part form, and the other
        # way round: a client in the wrong dialect hears it at once.
        operators = self.dialect.filter_style == "operators"
        for name in self.values:
            if name.startswith(FILTER_FAMILY) and (name.count("[") == 2) != operators:
                form = "filter[field][operator]" if operators else "filter[field]"
                raise bad_request(f"{name}: the filter format is {form}.", parameter=name)

    def first(self, name: str) -> str | None:
        """The first value of parameter ``name``, or None."""
        return self.values.get(name, [None])[0]

    def include(self) -> str | None:
        return self.first(INCLUDE)

    def filter(self, field: str, allowed: tuple[str, ...] | None = None) -> str | None:
        """The one value a list is filtered by, or None; 400 if not ``allowed``."""
        name = self.dialect.filter_parameter(field, "eq")
        value = self.first(name)
        if value is not None and allowed is not None and value not in allowed:
            raise bad_request(f"{name} is {' or '.join(allowed)}.", parameter=name)
        return value

    def filter_ids(self, field: str = "id") -> list[str] | None:
        """The ids a list is filtered by, or None; 400 beyond ``MAX_FILTER_IDS``."""
        name = self.dialect.filter_parameter(field, "in")
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
        if self.dialect.pagination == "offset":
            return self._offset_page(default_size)
        number = self._whole_number(PAGE_NUMBER, 1, None)
        size = self._whole_number(PAGE_SIZE, default_size, contract.MAX_PAGE_SIZE)
        return Page(number, size, self._linker(
            lambda n: [(PAGE_NUMBER, str(n)), (PAGE_SIZE, str(size))]))

    def _offset_page(self, default_size: int) -> Page:
        for name in (PAGE_NUMBER, PAGE_SIZE):
            if name in self.values:
                raise bad_request(f"{name} is not read here: pages are "
                                  f"{PAGE_LIMIT} and {PAGE_OFFSET}.", parameter=name)
        size = self._whole_number(PAGE_LIMIT, default_size, contract.MAX_PAGE_SIZE)
        offset = self._whole_number(PAGE_OFFSET, 0, None, minimum=0)
        return Page(offset // size + 1, size, self._linker(
            lambda n: [(PAGE_LIMIT, str(size)), (PAGE_OFFSET, str((n - 1) * size))]),
            offset=offset)

    def _linker(self, page_pairs: Callable[[int], list[tuple[str, str]]]
                ) -> Callable[[int], str]:
        # Any other page[...] parameter belongs to another grammar: links drop it.
        kept = [(k, v[0]) for k, v in self.values.items() if not k.startswith(PAGE_FAMILY)]

        def link(page_number: int) -> str:
            pairs = [*kept, *page_pairs(page_number)]
            encoded = "&".join(f"{quote(k, safe='[]')}={quote(v, safe=',')}" for k, v in pairs)
            return f"{self.url}?{encoded}"

        return link

    def _whole_number(self, name: str, default: int, maximum: int | None,
                      minimum: int = 1) -> int:
        raw = self.first(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            limit = f" and at most {maximum}" if maximum else ""
            raise bad_request(f"{name} must be a whole number from {minimum}{limit}.",
                              parameter=name)
        return value
