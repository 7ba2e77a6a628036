"""Telegram's formatting rules as the sandbox applies them (plain text + UTF-16 entities)."""

from __future__ import annotations

import pytest

from sandbox.formatting import (
    FormatError,
    detect_entities,
    parse_html,
    parse_markdown,
    parse_markdown_v2,
    utf16_len,
)


def test_html_becomes_plain_text_with_entities():
    text, entities = parse_html(
        '😀 <b>vet <i>schuin</i></b> <a href="https://school.nl/?a=1&amp;b=2">link</a> &lt;3'
    )
    assert text == "😀 vet schuin link <3"
    assert entities == [
        {"type": "bold", "offset": 3, "length": 10},
        {"type": "italic", "offset": 7, "length": 6},
        {"type": "text_link", "offset": 14, "length": 4, "url": "https://school.nl/?a=1&b=2"},
    ]
    assert utf16_len("😀") == 2


def test_html_pre_with_language_is_one_entity():
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>')
    assert text == "x = 1"
    assert entities == [{"type": "pre", "offset": 0, "length": 5, "language": "python"}]


@pytest.mark.parametrize(
    ("markup", "reason"),
    [
        ("a<br>b", 'Unsupported start tag "br"'),
        ("<b>open", "Can't find end tag"),
        ("<b><i>x</b></i>", "Unmatched end tag"),
        ("x </b>", "Unexpected end tag"),
        ("1 < 2", 'Unsupported start tag ""'),
    ],
)
def test_html_errors(markup: str, reason: str):
    with pytest.raises(FormatError, match=reason):
        parse_html(markup)


def test_markdown_v2():
    text, entities = parse_markdown_v2("*vet* _schuin_ __onder__ ||geheim|| `co\\`de` 1\\.5")
    assert text == "vet schuin onder geheim co`de 1.5"
    assert [e["type"] for e in entities] == ["bold", "italic", "underline", "spoiler", "code"]
    text, entities = parse_markdown_v2("[site](https://x.nl/a\\)b)")
    assert text == "site" and entities[0]["url"] == "https://x.nl/a)b"
    with pytest.raises(FormatError, match=r"Character '\.' is reserved"):
        parse_markdown_v2("Klaar.")
    with pytest.raises(FormatError, match="Can't find end of Bold entity"):
        parse_markdown_v2("*vet")


def test_legacy_markdown_and_command_detection():
    assert parse_markdown("*a* _b_ 1.5!") == (
        "a b 1.5!",
        [{"type": "bold", "offset": 0, "length": 1}, {"type": "italic", "offset": 2, "length": 1}],
    )
    assert detect_entities("/start ABC") == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert detect_entities("hallo /start") == []
