"""docs/RELIABILITY.md names tests that exist: the promise table cannot go stale."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def referenced_tests():
    """(file, function) pairs of every `tests/...py::name` and following `::name` in a row."""
    refs = []
    for line in (REPO / "docs" / "RELIABILITY.md").read_text().splitlines():
        current = None
        for token in re.findall(r"`([^`]+)`", line):
            m = re.fullmatch(r"(tests/[\w/]+\.py)(?:::(\w+))?(?:\[.*\])?", token)
            if m:
                current = m.group(1)
                if m.group(2):
                    refs.append((current, m.group(2)))
            elif current and re.fullmatch(r"::\w+", token):
                refs.append((current, token[2:]))
    return refs


def test_every_named_test_exists():
    refs = referenced_tests()
    assert len(refs) > 50
    missing = [f"{f}::{name}" for f, name in refs
               if not (REPO / f).is_file()
               or not re.search(rf"^def {name}\(", (REPO / f).read_text(), re.M)]
    assert not missing, missing


def test_every_promise_section_has_rows():
    text = (REPO / "docs" / "RELIABILITY.md").read_text()
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    numbered = [s for s in sections if re.match(r"\d\.", s)]
    assert len(numbered) == 9
    for s in numbered[:8]:
        assert "| promise | test |" in s, s.splitlines()[0]
