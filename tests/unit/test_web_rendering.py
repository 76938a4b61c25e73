"""index.md to HTML: markdown-it-py renders, nh3 sanitizes; what survives and what never does."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from registry.web.rendering import file_route, render_index

FILES = frozenset({"index.md", "img/diagram.png", "weights.bin"})


def render(markdown: str) -> str:
    return render_index(markdown, FILES, file_route("m", "1.0", "alice"))


class Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, as a browser's tokenizer would see them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {name: value or "" for name, value in attrs}))


def test_markdown_renders_headings_emphasis_tables_and_code() -> None:
    html = render("# Title\n\nSome **bold** text.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```\n")
    assert "<h1>Title</h1>" in html
    assert "<strong>bold</strong>" in html
    assert "<td>1</td>" in html
    assert "<pre><code>code\n</code></pre>" in html


@pytest.mark.parametrize(
    "payload",
    [
        "<script>window.x=1</script>",
        '<img src="x" onerror="window.x=1">',
        '<svg onload="window.x=1"><circle/></svg>',
        "<svg><script>window.x=1</script></svg>",
        '<iframe src="javascript:window.x=1"></iframe>',
        '<iframe srcdoc="<script>window.x=1</script>"></iframe>',
        '<object data="javascript:window.x=1"></object>',
        '<details open ontoggle="window.x=1">d</details>',
        '<a href="javascript:window.x=1">a</a>',
        '<a href="  jav&#x09;ascript:window.x=1">a</a>',
        '<a href="JaVaScRiPt:window.x=1">a</a>',
        '<a href="data:text/html,<script>window.x=1</script>">a</a>',
        "[a](javascript:window.x=1)",
        "![a](javascript:window.x=1)",
        '<form action="javascript:window.x=1"><button>b</button></form>',
        "<style>@import 'javascript:window.x=1';</style>",
        '<meta http-equiv="refresh" content="0;url=javascript:window.x=1">',
        '<div style="background:url(javascript:window.x=1)">d</div>',
        '<p title="</p><img src=x onerror=window.x=1>">p</p>',
    ],
)
def test_no_payload_keeps_a_script_handler_or_script_url(payload: str) -> None:
    html = render(f"before\n\n{payload}\n\nafter")
    elements = Elements(html).found
    tags = {tag for tag, _ in elements}
    assert not tags & {"script", "iframe", "object", "embed", "svg", "form", "style", "meta", "button"}, html
    for _tag, attributes in elements:
        assert not [name for name in attributes if name.startswith("on")], html
        assert "style" not in attributes, html
        for value in attributes.values():
            compact = re.sub(r"[\x00-\x20]", "", value).lower()
            assert not compact.startswith(("javascript:", "data:")), html
    assert "after" in html


def test_images_come_only_from_the_models_own_files_or_https() -> None:
    html = render(
        "![own](img/diagram.png) ![dot](./img/diagram.png) ![remote](https://example.org/a.png)"
        " ![plain](http://example.org/a.png) ![other](img/not-a-file.png) ![data](data:image/png;base64,AA)"
        ' <img src="//example.org/protocol-relative.png" alt="rel">'
    )
    sources = re.findall(r'<img src="([^"]*)"', html)
    assert sources == [
        "/api/catalog/model/m/1.0/alice/files/img/diagram.png",
        "/api/catalog/model/m/1.0/alice/files/img/diagram.png",
        "https://example.org/a.png",
    ]
    assert html.count("<img") == 7  # the others stay, without a source


def test_links_keep_http_https_mailto_fragments_and_point_model_files_at_their_download() -> None:
    html = render(
        "[s](https://example.org/) [p](http://example.org/) [m](mailto:a@example.org) [f](#usage)"
        " [w](weights.bin) [r](//evil.example/x)"
    )
    hrefs = re.findall(r'<a href="([^"]*)"', html)
    assert hrefs == [
        "https://example.org/",
        "http://example.org/",
        "mailto:a@example.org",
        "#usage",
        "/api/catalog/model/m/1.0/alice/files/weights.bin",
    ]
    assert 'rel="noopener noreferrer nofollow ugc"' in html
