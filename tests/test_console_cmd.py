"""`gate console`'s choices before Textual starts: the language for the terminal it is on."""
from __future__ import annotations

from tui.console_cmd import choose_lang


def test_chinese_by_default_english_on_the_bare_linux_vt():
    assert choose_lang(None, {"TERM": "xterm-256color"}) == "zh"
    assert choose_lang(None, {}) == "zh"
    assert choose_lang(None, {"TERM": "linux"}) == "en"  # the VT's font has no Chinese glyphs
    assert choose_lang(None, {"TERM": "fbterm"}) == "zh"  # fbterm draws them with a CJK font
    assert choose_lang("zh", {"TERM": "linux"}) == "zh"  # asked for: a CJK console font is set up
    assert choose_lang(None, {"TERM": "linux", "GATE_LANG": "zh"}) == "zh"
    assert choose_lang(None, {"GATE_LANG": "en"}) == "en"
