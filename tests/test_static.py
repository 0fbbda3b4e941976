"""Kura's own style sheets are well formed: every block closed (a brace lost in a merge
nests every later rule inside the one left open, and the browser applies them nowhere)."""

import re
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parent.parent / "static"
OWN_CSS = sorted(path for path in STATIC.rglob("*.css") if "vendor" not in path.parts)


@pytest.mark.parametrize("path", OWN_CSS, ids=lambda path: path.name)
def test_every_block_of_the_style_sheet_is_closed(path):
    text = re.sub(
        r"/\*.*?\*/", lambda m: "\n" * m.group().count("\n"), path.read_text("utf-8"), flags=re.S
    )
    depth = 0
    for number, line in enumerate(text.splitlines(), start=1):
        # A rule written at the margin is a top-level rule (nested ones are indented).
        if line[:1] not in ("", " ", "}") and "{" in line:
            assert depth == 0, f"{path.name}:{number}: {line!r} is inside a block left open"
        depth += line.count("{") - line.count("}")
        assert depth >= 0, f"{path.name}:{number}: a block is closed twice"
    assert depth == 0, f"{path.name}: {depth} block(s) never closed"
