"""The models list: filters, search, sort and pages, on top of the service's key-ordered pages.

Search (words in name or description) and sorting by last update are done here, over the
service's pages, because the service lists only in key order with exact-match filters. The
page token holds the service's continuation and the last key shown, so the next page resumes
exactly after it: every model is listed once, and models registered meanwhile shift nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

from registry.web.core import DATA_TYPES, MODEL_TYPES, ModelFilter, ModelPage, Row, model_filter

PAGE_SIZE = 20
SEARCH_STEP = 200  # rows asked of the service at a time while searching
SEARCH_BUDGET = 1_000  # rows looked at per view while searching, before offering to go on
SORT_BUDGET = 2_000  # rows sorted by last update at most (the service has no such order)
SORTS = ("name", "updated")

Fetch = Callable[[ModelFilter, int, str | None], ModelPage]


@dataclass(frozen=True)
class Query:
    """What the models page was asked for: all of it lives in the URL."""

    q: str = ""
    type: str = ""
    input_type: str = ""
    output_type: str = ""
    language: str = ""
    owner: str = ""
    trainable: str = ""
    sort: str = "name"
    page: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        def text(key: str) -> str:
            return (params.get(key) or "").strip()[: 4096 if key == "page" else 200]

        query = cls(
            q=text("q"),
            type=text("type"),
            input_type=text("input_type"),
            output_type=text("output_type"),
            language=text("language"),
            owner=text("owner"),
            trainable=text("trainable"),
            sort=text("sort"),
            page=text("page"),
        )
        errors: dict[str, str] = {}
        for key, allowed in (
            ("type", MODEL_TYPES),
            ("input_type", DATA_TYPES),
            ("output_type", DATA_TYPES),
            ("trainable", ("true", "false")),
            ("sort", SORTS),
        ):
            value = getattr(query, key)
            if value and value not in allowed:
                errors[key] = f"must be one of {', '.join(allowed)}"
        return replace(query, sort=query.sort or "name", errors=errors)

    @property
    def filters(self) -> ModelFilter:
        return model_filter(
            owner=self.owner or None,
            type=self.type or None,
            trainable=None if not self.trainable else self.trainable == "true",
            input_type=self.input_type or None,
            output_type=self.output_type or None,
            language=self.language or None,
        )

    @property
    def words(self) -> list[str]:
        return self.q.lower().split()

    def matches(self, row: Row) -> bool:
        text = f"{row.name} {row.description}".lower()
        return all(word in text for word in self.words)

    def url(self, **changes: str) -> str:
        """This query's URL with some parameters changed (a new filter starts at page one)."""
        values = {key: getattr(self, key) for key in _FIELDS} | {"page": ""} | changes
        if values.get("sort") == "name":
            values["sort"] = ""
        query = urlencode({k: v for k, v in values.items() if v})
        return "/api/catalog/models" + (f"?{query}" if query else "")


_FIELDS = ("q", "type", "input_type", "output_type", "language", "owner", "trainable", "sort", "page")


@dataclass(frozen=True)
class Listing:
    rows: list[Row]
    next_page: str | None  # token of the next page
    scanned: int  # rows looked at for this view
    partial: bool = False  # searching stopped at its budget: the next page searches on
    truncated: bool = False  # sorting by update looked at SORT_BUDGET rows only


class BadToken(ValueError):
    pass


def _encode(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(token: str) -> dict[str, object]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise BadToken("the page link is not one this catalog made") from None
    if not isinstance(data, dict):
        raise BadToken("the page link is not one this catalog made")
    return data


def browse(fetch: Fetch, query: Query) -> Listing:
    """One page of the models the caller may see that match the query."""
    if query.sort == "updated":
        return _by_update(fetch, query)
    return _by_name(fetch, query)


def _by_name(fetch: Fetch, query: Query) -> Listing:
    state = _decode(query.page) if query.page else {}
    continuation = state.get("c") if isinstance(state.get("c"), str) else None
    last = str(state.get("k") or "")
    step = SEARCH_STEP if query.words else PAGE_SIZE
    rows: list[Row] = []
    scanned = 0
    while True:
        page = fetch(query.filters, step, continuation)  # type: ignore[arg-type]
        for position, row in enumerate(page.rows):
            if row.sort_key <= last:
                continue  # shown on the page before: this service page is read again
            scanned += 1
            if not query.matches(row):
                continue
            rows.append(row)
            if len(rows) == PAGE_SIZE:
                if position < len(page.rows) - 1:
                    return Listing(rows, _encode({"c": continuation, "k": row.sort_key}), scanned)
                following = _encode({"c": page.continuation}) if page.continuation else None
                return Listing(rows, following, scanned)
        if page.continuation is None:
            return Listing(rows, None, scanned)
        continuation, last = page.continuation, ""
        if scanned >= SEARCH_BUDGET:
            return Listing(rows, _encode({"c": continuation}), scanned, partial=True)


def _by_update(fetch: Fetch, query: Query) -> Listing:
    state = _decode(query.page) if query.page else {}
    offset = state.get("o", 0)
    if not isinstance(offset, int) or offset < 0:
        raise BadToken("the page link is not one this catalog made")
    matches: list[Row] = []
    continuation: str | None = None
    scanned = 0
    truncated = False
    while True:
        page = fetch(query.filters, min(1_000, SORT_BUDGET - scanned), continuation)
        scanned += len(page.rows)
        matches += [row for row in page.rows if query.matches(row)]
        continuation = page.continuation
        if continuation is None:
            break
        if scanned >= SORT_BUDGET:
            truncated = True
            break
    matches.sort(key=lambda row: (-row.updated_at.timestamp(), row.sort_key))
    shown = matches[offset : offset + PAGE_SIZE]
    following = _encode({"o": offset + PAGE_SIZE}) if offset + PAGE_SIZE < len(matches) else None
    return Listing(shown, following, scanned, truncated=truncated)
