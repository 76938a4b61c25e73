"""A model's index.md as safe HTML: markdown-it-py renders it, nh3 (Ammonia) sanitizes the result.

Raw HTML in the markdown is allowed through the renderer and then cleaned: only a fixed set of
tags and attributes survive, no script or style content, no event handlers, links only to
http(s), mailto, fragments or the model's own files, images only from https or the model's
own files (rewritten to the catalog's download route, which redirects to a short-lived URL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

import nh3
from markdown_it import MarkdownIt

_TAGS = set(nh3.ALLOWED_TAGS) - {"area", "map"}
_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "th": {"colspan", "rowspan", "scope", "align"},
    "td": {"colspan", "rowspan", "align"},
    "ol": {"start"},
    "abbr": {"title"},
}
_LINK_SCHEMES = {"http", "https", "mailto"}
# Control characters and whitespace that browsers ignore inside a scheme ("java\tscript:").
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]")

_renderer = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")


def _scheme(url: str) -> str | None:
    compact = _IGNORED_IN_URL.sub("", unquote(url))
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*):", compact)
    return match.group(1).lower() if match else None


def _own_file(url: str, files: frozenset[str]) -> str | None:
    """The model file a relative URL names ("weights/a.png", "./a.png"), if it names one."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or parts.query:
        return None
    path = unquote(parts.path).removeprefix("./")
    return path if path in files else None


def _filter(files: frozenset[str], file_url: Callable[[str], str]) -> Callable[[str, str, str], str | None]:
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            own = _own_file(value, files)
            if own is not None:
                return file_url(own)
            return value if _scheme(value) == "https" and urlsplit(value.strip()).netloc else None
        if tag == "a" and attribute == "href":
            own = _own_file(value, files)
            if own is not None:
                return file_url(own)
            scheme = _scheme(value)
            if scheme is None:  # relative: a fragment or a path under the catalog
                return value if not value.strip().startswith("//") else None
            return value if scheme in _LINK_SCHEMES else None
        return value

    return keep


def render_index(markdown: str, files: frozenset[str], file_url: Callable[[str], str]) -> str:
    """Sanitized HTML of a model's index page; `file_url(name)` is where a file of it is served."""
    html = _renderer.render(markdown)
    return nh3.clean(
        html,
        tags=_TAGS,
        clean_content_tags={"script", "style", "template", "noscript", "textarea", "iframe", "object"},
        attributes=_ATTRIBUTES,
        attribute_filter=_filter(files, file_url),
        url_schemes=_LINK_SCHEMES,
        link_rel="noopener noreferrer nofollow ugc",
        strip_comments=True,
    )


def file_route(name: str, version: str, owner: str) -> Callable[[str], str]:
    """The catalog's download URL of one file of a model."""

    def url(target: str) -> str:
        return f"/api/catalog/model/{name}/{version}/{owner}/files/{quote(target)}"

    return url
