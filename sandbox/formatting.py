"""Telegram text formatting: turn HTML / MarkdownV2 / Markdown into plain text plus entities.

Telegram measures text limits after entity parsing and in UTF-16 code units, and rejects
malformed markup with ``Bad Request: can't parse entities: ...``. Reproducing both here is
what lets the sandbox catch the classic production bugs: unescaped user input inside an
HTML message, ``<br>`` tags, and messages that only exceed 4096 once emoji are counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


class FormatError(ValueError):
    """Markup Telegram would refuse; the message is the part after "can't parse entities: "."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


@dataclass
class _Open:
    tag: str
    kind: str
    start: int
    source_index: int
    extra: dict[str, Any] = field(default_factory=dict)


class _Builder:
    """Accumulates plain text while tracking its length in UTF-16 units for entity offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.entities: list[dict[str, Any]] = []

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def entity(self, kind: str, start: int, extra: dict[str, Any] | None = None) -> None:
        length = self.length - start
        if length <= 0:
            return
        item: dict[str, Any] = {"type": kind, "offset": start, "length": length}
        if extra:
            item.update(extra)
        self.entities.append(item)

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        ordered = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), ordered


_HTML_TAGS: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
_ATTR = re.compile(r"""\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});")


def _unescape_html(value: str) -> str:
    def repl(match: re.Match[str]) -> str:
        return _decode_entity(match.group(1)) or match.group(0)

    return _ENTITY.sub(repl, value)


def _decode_entity(body: str) -> str | None:
    if body.startswith(("#x", "#X")):
        code = int(body[2:], 16)
    elif body.startswith("#"):
        code = int(body[1:])
    else:
        return _NAMED_ENTITIES.get(body)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code)


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    stack: list[_Open] = []
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "&":
            match = _ENTITY.match(text, i)
            decoded = _decode_entity(match.group(1)) if match else None
            if match and decoded is not None:
                out.add(decoded)
                i = match.end()
            else:
                # Telegram passes a bare ampersand through unchanged.
                out.add("&")
                i += 1
            continue
        if char != "<":
            j = i
            while j < n and text[j] not in "<&":
                j += 1
            out.add(text[i:j])
            i = j
            continue
        offset = _byte_offset(text, i)
        if text.startswith("</", i):
            close = text.find(">", i)
            if close == -1:
                raise FormatError(f"Unclosed end tag at byte offset {offset}")
            name = text[i + 2 : close].strip().lower()
            if not stack:
                raise FormatError(f"Unexpected end tag at byte offset {offset}")
            top = stack.pop()
            if top.tag != name:
                raise FormatError(
                    f'Unmatched end tag at byte offset {offset}, expected "</{top.tag}>", '
                    f'found "</{name}>"'
                )
            _close_html(out, top, stack)
            i = close + 1
            continue
        name_match = _TAG_NAME.match(text, i + 1)
        if not name_match:
            raise FormatError(f'Unsupported start tag "" at byte offset {offset}')
        name = name_match.group(0).lower()
        attrs, end = _parse_attributes(text, name_match.end(), offset)
        kind = _HTML_TAGS.get(name)
        if kind is None or (name == "span" and attrs.get("class") != "tg-spoiler"):
            raise FormatError(f'Unsupported start tag "{name}" at byte offset {offset}')
        extra: dict[str, Any] = {}
        if name == "a":
            href = attrs.get("href", "")
            if not href:
                raise FormatError(f'Can\'t find end tag corresponding to start tag "{name}"')
            user_match = re.fullmatch(r"tg://user\?id=(\d+)", href)
            if user_match:
                kind = "text_mention"
                extra["user"] = {"id": int(user_match.group(1)), "is_bot": False, "first_name": ""}
            else:
                extra["url"] = href
        elif name == "tg-emoji":
            extra["custom_emoji_id"] = attrs.get("emoji-id", "")
        elif name == "blockquote" and "expandable" in attrs:
            kind = "expandable_blockquote"
        elif name == "code":
            language = attrs.get("class", "")
            if language.startswith("language-"):
                extra["language"] = language[len("language-") :]
        stack.append(_Open(name, kind, out.length, i, extra))
        i = end
    if stack:
        raise FormatError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    return out.result()


def _parse_attributes(text: str, pos: int, offset: int) -> tuple[dict[str, str], int]:
    attrs: dict[str, str] = {}
    n = len(text)
    while pos < n:
        if text[pos] == ">":
            return attrs, pos + 1
        if text.startswith("/>", pos):
            return attrs, pos + 2
        match = _ATTR.match(text, pos)
        if not match or match.end() == pos:
            if text[pos].isspace():
                pos += 1
                continue
            raise FormatError(
                f"Expected equal sign in declaration of an attribute at byte offset {offset}"
            )
        value = match.group(2) or ""
        if value[:1] in {'"', "'"}:
            value = value[1:-1]
        attrs[match.group(1).lower()] = _unescape_html(value)
        pos = match.end()
    raise FormatError(f"Unclosed start tag at byte offset {offset}")


def _close_html(out: _Builder, top: _Open, stack: list[_Open]) -> None:
    if top.tag == "code" and stack and stack[-1].tag == "pre":
        # <pre><code class="language-x"> is one pre entity with a language, not two.
        if "language" in top.extra:
            stack[-1].extra["language"] = top.extra["language"]
        return
    extra = {k: v for k, v in top.extra.items() if not (top.kind == "code" and k == "language")}
    out.entity(top.kind, top.start, extra)


_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
}


def parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    out = _Builder()
    stack: list[_Open] = []
    quote_start: int | None = None
    i = 0
    n = len(text)
    at_line_start = True
    while i < n:
        char = text[i]
        if at_line_start:
            at_line_start = False
            if char == ">":
                if quote_start is None:
                    quote_start = out.length
                i += 1
                continue
            if quote_start is not None:
                # The quote ended on the previous line; its trailing newline is not part of it.
                out.length -= 1
                out.entity("blockquote", quote_start)
                out.length += 1
                quote_start = None
        if char == "\n":
            out.add("\n")
            at_line_start = True
            i += 1
            continue
        if char == "\\":
            if i + 1 < n and 0 < ord(text[i + 1]) <= 126:
                out.add(text[i + 1])
                i += 2
                continue
            raise FormatError(
                "Character '\\' is reserved and must be escaped with the preceding '\\'"
            )
        if char == "`":
            i = _md_code(text, i, out, v2=True)
            continue
        marker = None
        if text.startswith("||", i):
            marker, kind = "||", "spoiler"
        elif text.startswith("__", i):
            marker, kind = "__", "underline"
        elif char == "_":
            marker, kind = "_", "italic"
        elif char == "*":
            marker, kind = "*", "bold"
        elif char == "~":
            marker, kind = "~", "strikethrough"
        if marker is not None:
            open_index = next((k for k, o in enumerate(stack) if o.tag == marker), None)
            if open_index is None:
                stack.append(_Open(marker, kind, out.length, i))
            elif open_index == len(stack) - 1:
                top = stack.pop()
                out.entity(top.kind, top.start)
            else:
                inner = stack[-1]
                raise FormatError(
                    f"Can't find end of {_MDV2_NAMES[inner.kind]} entity at byte offset "
                    f"{_byte_offset(text, inner.source_index)}"
                )
            i += len(marker)
            continue
        if char == "[":
            stack.append(_Open("[", "text_link", out.length, i))
            i += 1
            continue
        if char == "]" and stack and stack[-1].tag == "[":
            top = stack.pop()
            if not text.startswith("(", i + 1):
                raise FormatError(
                    f"Can't find end of TextUrl entity at byte offset "
                    f"{_byte_offset(text, top.source_index)}"
                )
            url, i = _md_link_target(text, i + 2, top.source_index)
            out.entity("text_link", top.start, {"url": url})
            continue
        if char in _MDV2_RESERVED:
            raise FormatError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        j = i + 1
        while j < n and text[j] not in _MDV2_RESERVED and text[j] not in "\\\n|":
            j += 1
        out.add(text[i:j])
        i = j
    if stack:
        top = stack[-1]
        raise FormatError(
            f"Can't find end of {_MDV2_NAMES[top.kind]} entity at byte offset "
            f"{_byte_offset(text, top.source_index)}"
        )
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    return out.result()


def _md_link_target(text: str, pos: int, source_index: int) -> tuple[str, int]:
    chars: list[str] = []
    n = len(text)
    while pos < n:
        char = text[pos]
        if char == "\\" and pos + 1 < n:
            chars.append(text[pos + 1])
            pos += 2
            continue
        if char == ")":
            return "".join(chars), pos + 1
        chars.append(char)
        pos += 1
    raise FormatError(f"Can't find end of a URL at byte offset {_byte_offset(text, source_index)}")


def _md_code(text: str, i: int, out: _Builder, *, v2: bool) -> int:
    n = len(text)
    start_offset = _byte_offset(text, i)
    if text.startswith("```", i):
        j = i + 3
        newline = text.find("\n", j)
        closing = text.find("```", j)
        language = ""
        if newline != -1 and (closing == -1 or newline < closing):
            language = text[j:newline].strip()
            if language and " " not in language:
                j = newline + 1
            else:
                language = ""
        start = out.length
        j = _md_literal(text, j, out, "```", v2=v2, start_offset=start_offset)
        out.entity("pre", start, {"language": language} if language else None)
        return j
    start = out.length
    j = _md_literal(text, i + 1, out, "`", v2=v2, start_offset=start_offset)
    out.entity("code", start)
    return j if j <= n else n


def _md_literal(
    text: str, pos: int, out: _Builder, end: str, *, v2: bool, start_offset: int
) -> int:
    n = len(text)
    chars: list[str] = []
    while pos < n:
        if v2 and text[pos] == "\\" and pos + 1 < n:
            chars.append(text[pos + 1])
            pos += 2
            continue
        if text.startswith(end, pos):
            out.add("".join(chars))
            return pos + len(end)
        chars.append(text[pos])
        pos += 1
    kind = "Pre" if end == "```" else "Code"
    raise FormatError(f"Can't find end of {kind} entity at byte offset {start_offset}")


def parse_markdown(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Legacy Markdown: ``*bold*``, ``_italic_``, backticks and ``[text](url)``; no nesting."""
    out = _Builder()
    i = 0
    n = len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if char == "`":
            i = _md_code(text, i, out, v2=False)
            continue
        if char in "*_":
            close = text.find(char, i + 1)
            if close == -1:
                raise FormatError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            start = out.length
            out.add(text[i + 1 : close])
            out.entity("bold" if char == "*" else "italic", start)
            i = close + 1
            continue
        if char == "[":
            close = text.find("](", i + 1)
            end = text.find(")", close + 2) if close != -1 else -1
            if close == -1 or end == -1:
                raise FormatError(
                    f"Can't find end of the entity starting at byte offset {_byte_offset(text, i)}"
                )
            start = out.length
            out.add(text[i + 1 : close])
            out.entity("text_link", start, {"url": text[close + 2 : end]})
            i = end + 1
            continue
        j = i + 1
        while j < n and text[j] not in "\\`*_[":
            j += 1
        out.add(text[i:j])
        i = j
    return out.result()


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Return (plain text, entities) for ``text`` under ``parse_mode`` (case-insensitive)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown(text)
    if mode:
        raise FormatError(f"Unsupported parse_mode {parse_mode!r}")
    return text, []


_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Entities a Telegram client attaches to typed text; only a leading bot command matters."""
    match = _COMMAND.match(text)
    if not match:
        return []
    return [{"type": "bot_command", "offset": 0, "length": utf16_len(match.group(0))}]
