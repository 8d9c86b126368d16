"""The agent's Markdown as Telegram HTML: escaped, split at Telegram's limit, long code apart.

Telegram's HTML parse mode knows ``<b> <i> <code> <pre> <a>``; everything else is text and must
be escaped (``& < >``). :func:`render` handles the Markdown an agent writes: fenced code blocks,
inline code, ``**bold**``, ``*italic*``/``_italic_`` and ``[links](https://…)``. The result is a
list of messages, each at most :data:`MESSAGE_LIMIT` characters and each valid on its own (a
split never falls inside a tag), and the code blocks longer than :data:`LONG_CODE_CHARS`, which
go to the chat as documents instead.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

MESSAGE_LIMIT = 4096
"""Telegram's limit for one message's text, in characters (after entity parsing; we count the
HTML we send, which is never shorter)."""
LONG_CODE_CHARS = 3000
"""A code block longer than this is sent as a document."""

_FENCE = re.compile(r"^```([\w+.-]*)[^\n]*\n(.*?)(?:^```[ \t]*$|\Z)", re.M | re.S)
_INLINE = re.compile(
    r"`([^`\n]+)`"
    r"|\*\*(?=\S)(.+?)(?<=\S)\*\*"
    r"|(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"
    r"|(?<![\w])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w])"
    r"|\[([^\]\n]+)\]\((https?://[^)\s]+)\)"
)
_EXTENSIONS = {"python": "py", "py": "py", "bash": "sh", "sh": "sh", "json": "json", "js": "js"}


@dataclass(frozen=True, slots=True)
class Document:
    """A long code block, sent as a file."""

    filename: str
    content: str


@dataclass(slots=True)
class Rendered:
    """Messages in Telegram HTML (in order) and documents to send after them."""

    messages: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)


def escape(text: str) -> str:
    """``text`` safe inside Telegram HTML."""
    return html.escape(text, quote=False)


def inline_html(text: str) -> str:
    """One paragraph of Markdown as Telegram HTML."""
    out: list[str] = []
    last = 0
    for match in _INLINE.finditer(text):
        out.append(escape(text[last : match.start()]))
        code, bold, star, under, label, url = match.groups()
        if code is not None:
            out.append(f"<code>{escape(code)}</code>")
        elif bold is not None:
            out.append(f"<b>{escape(bold)}</b>")
        elif star is not None or under is not None:
            out.append(f"<i>{escape(star or under)}</i>")
        else:
            out.append(f'<a href="{html.escape(url, quote=True)}">{escape(label)}</a>')
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` cut into pieces of at most ``limit`` characters, at line ends where possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit)
        if cut <= 0:
            cut = limit
        pieces.append(text[:cut])
        text = text[cut:].lstrip("\n")
    if text:
        pieces.append(text)
    return pieces


def _blocks(markdown: str, documents: list[Document]) -> list[str]:
    """HTML blocks, each at most :data:`MESSAGE_LIMIT` characters."""
    blocks: list[str] = []
    last = 0

    def prose(text: str) -> None:
        for paragraph in re.split(r"\n{2,}", text.strip("\n")):
            if not paragraph.strip():
                continue
            # 4 characters of raw text never become more than ~5 of HTML (&amp;): leave room
            for piece in _pieces(paragraph, MESSAGE_LIMIT // 2):
                blocks.append(inline_html(piece))

    for match in _FENCE.finditer(markdown):
        prose(markdown[last : match.start()])
        lang, code = match.group(1), match.group(2).rstrip("\n")
        if len(code) > LONG_CODE_CHARS:
            name = f"code-{len(documents) + 1}.{_EXTENSIONS.get(lang.lower(), 'txt')}"
            documents.append(Document(name, code + "\n"))
            blocks.append(f"<i>(code in {escape(name)}, sent as a file)</i>")
        else:
            attr = f' class="language-{escape(lang)}"' if lang else ""
            for piece in _pieces(code, MESSAGE_LIMIT // 2 - 40):
                blocks.append(f"<pre><code{attr}>{escape(piece)}</code></pre>")
        last = match.end()
    prose(markdown[last:])
    return blocks


def render(markdown: str) -> Rendered:
    """``markdown`` as Telegram messages (HTML parse mode) and documents."""
    rendered = Rendered()
    current = ""
    for block in _blocks(markdown, rendered.documents):
        joined = f"{current}\n\n{block}" if current else block
        if len(joined) <= MESSAGE_LIMIT:
            current = joined
            continue
        rendered.messages.append(current)
        current = block
    if current:
        rendered.messages.append(current)
    return rendered


def preview(text: str, limit: int = 4000) -> str:
    """Plain text of an answer still streaming: its tail, when it is already too long."""
    text = text.strip() or "…"
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]
