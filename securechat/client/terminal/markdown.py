"""Message bodies as styled terminal lines: the CommonMark subset the page renders.

The page (securechat/web/markdown.js, the vendored markdown-it) and this module (its
Python port, markdown-it-py) enable the same rules on the same "zero" preset with raw
HTML off, so a body reads alike in both clients: ``**bold**``, ``*italic*``,
``~~struck~~``, ```code```, fenced code blocks, ``>`` quotes, bullet and numbered
lists, and links. A terminal cannot hide a URL behind a word, so a link shows its text
and then its URL (``docs <https://…>``), and only ``http:``, ``https:`` and ``mailto:``
URLs are shown as links at all, as on the page; a bare URL is text already (the page
also makes it clickable; the terminal does that itself). Headings, tables, images and
indented code stay as typed, as on the page.

The body is escaped (securechat.client.escaping) before it is parsed, so a control
character is shown as ``\\x1b`` rather than normalised away by the parser, and every
piece of text is escaped again on the way out (escaping is idempotent): nothing the
sender typed reaches the terminal unescaped, whatever the parser makes of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.token import Token
from prompt_toolkit.formatted_text import StyleAndTextTuples

from securechat.client.escaping import escape

__all__ = ["LINK_SCHEMES", "RULES", "body_lines"]

#: markdown.js's RULES, less ``linkify`` (bare URLs are left as the text they are).
RULES = (
    "backticks", "emphasis", "strikethrough", "link", "autolink", "newline", "escape",
    "fence", "blockquote", "list",
)  # fmt: skip
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
_INLINE = {"strong_open": "bold", "em_open": "italic", "s_open": "strike"}
_CODE_INDENT = "  "

_parser = MarkdownIt("zero", {"html": False, "breaks": True}).enable(list(RULES))


def body_lines(body: str, style: str = "") -> list[StyleAndTextTuples]:
    """``body`` as lines of style fragments, each in ``style`` plus its own markup.

    A plain body gives its own lines back unchanged (escaped); the caller joins them.
    """
    writer = _Writer(style)
    for token in _parser.parse(escape(body, keep_newlines=True)):
        writer.block(token)
    return writer.lines or [[]]


class _Writer:
    """Turns the block token stream into lines, with quote and list prefixes."""

    def __init__(self, style: str) -> None:
        self.base = style
        self.lines: list[StyleAndTextTuples] = []
        self.prefixes: list[str] = []  # "> " per quote, an indent per list item
        self.marker: str | None = None  # a list item's "• " or "2. ", for its first line
        self.numbers: list[int | None] = []  # per open list: the next number, None if bullets
        self.open_line = False  # whether text may continue the last line

    def block(self, token: Token) -> None:
        kind = token.type
        if kind == "inline":
            self._inline(token.children or [])
        elif kind == "fence":
            for line in token.content.removesuffix("\n").split("\n"):
                self.open_line = False
                self._start_line()
                self._text(f"{_CODE_INDENT}{line}", "class:md.code")
        elif kind == "blockquote_open":
            self.prefixes.append("> ")
        elif kind in ("bullet_list_open", "ordered_list_open"):
            start = token.attrGet("start")
            self.numbers.append(None if kind == "bullet_list_open" else int(start or 1))
        elif kind == "list_item_open":
            number = self.numbers[-1] if self.numbers else None
            self.marker = "• " if number is None else f"{number}. "
            if number is not None:
                self.numbers[-1] = number + 1
            self.prefixes.append(" " * len(self.marker))
        elif kind in ("blockquote_close", "list_item_close"):
            self.prefixes.pop()
        elif kind in ("bullet_list_close", "ordered_list_close"):
            self.numbers.pop()
        elif kind == "paragraph_open":
            self.open_line = False  # a paragraph starts on its own line

    def _inline(self, tokens: Sequence[Token]) -> None:
        self._start_line()
        styles: list[str] = []
        links: list[tuple[str | None, list[str]]] = []  # per open link: URL, text so far
        for token in tokens:
            kind = token.type
            if kind in ("softbreak", "hardbreak"):
                self.open_line = False
                self._start_line()
            elif kind == "code_inline":
                self._text(token.content, "class:md.code", *styles)
            elif kind in _INLINE:
                styles.append(_INLINE[kind])
            elif kind == "link_open":
                href = _shown_href(str(token.attrGet("href") or ""))
                links.append((href, []))
                styles.append("class:md.link" if href else "")
            elif kind == "link_close" and links:
                styles.pop()
                href, text = links.pop()
                if href is not None and href.removeprefix("mailto:") != "".join(text):
                    self._text(f" <{href}>", "class:md.url")
            elif token.nesting == -1 and styles:
                styles.pop()
            elif token.content:
                self._text(token.content, *styles)
                if links:
                    links[-1][1].append(token.content)

    def _start_line(self) -> None:
        if self.open_line:
            return
        prefix = "".join(self.prefixes)
        if self.marker is not None:
            prefix = prefix[: len(prefix) - len(self.marker)] + self.marker
            self.marker = None
        style = "class:md.quote" if ">" in prefix else ""
        self.lines.append([(style, prefix)] if prefix else [])
        self.open_line = True

    def _text(self, text: str, *styles: str) -> None:
        if not text:
            return
        style = " ".join(part for part in (self.base, *styles) if part)
        self.lines[-1].append((style, escape(text)))


def _shown_href(href: str) -> str | None:
    """The URL to show after a link's text: only an absolute http, https or mailto one."""
    try:
        parts = urlsplit(href)
    except ValueError:
        return None
    ok = parts.scheme.lower() in LINK_SCHEMES and (parts.netloc or parts.scheme == "mailto")
    return href if ok else None
