"""The README's application section shows the example's real code, not a sketch that
can drift from it: every Python block there is a verbatim part of examples/fastapi."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def _section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Using it from an application")
    # Up to the stream consumer's loop, which is the library's own usage, not the app's.
    return text[start : text.index("### Following the event stream", start)]


def test_every_python_block_of_the_application_section_is_in_the_example() -> None:
    blocks = re.findall(r"```python\n(.*?)```", _section(), flags=re.S)
    assert len(blocks) >= 4
    sources = [p.read_text() for p in (ROOT / "examples" / "fastapi").rglob("*.py")]
    missing = [block for block in blocks if not any(block in source for source in sources)]
    assert missing == []


def test_the_section_no_longer_takes_the_domain_model_as_a_request_body() -> None:
    assert "body: NewUser" not in _section()
