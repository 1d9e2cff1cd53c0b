"""Log lines escape what calendars say (issue 7, item 8): one record is one line, no terminal
escapes, no forged lines; the JSON format stays valid JSON with the text intact."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from sync.cli.logs import JsonFormatter, SafeFormatter, escape_text

HOSTILE = [
    "line\r\n2026-01-01 00:00:00,000 ERROR   calref: forged",
    "\x1b[2J\x1b[31mred\x07",
    "bidi \u202egnp.exe",
    "sep\u2028arator\u2029",
    "nul\x00 del\x7f c1\x85",
    "bad bytes \udcff\udcfe",
    "zero\u200bwidth and \ufeffbom",
]


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(SafeFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test.logs")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize("text", HOSTILE)
def test_a_hostile_subject_stays_on_one_printable_line(
    captured: tuple[logging.Logger, io.StringIO], text: str
) -> None:
    logger, stream = captured
    logger.warning("source %s failed: %s", "cal", text)
    out = stream.getvalue()
    assert out.count("\n") == 1 and out.endswith("\n")
    line = out[:-1]
    assert line.isprintable(), repr(line)
    assert line.startswith("WARNING test.logs: source cal failed: ")


def test_escapes_are_readable_and_ordinary_text_is_kept() -> None:
    assert escape_text("Möte \t i Göteborg 日本") == "Möte \t i Göteborg 日本"
    assert escape_text("a\r\nb") == "a\\x0d\\x0ab"
    assert escape_text("\x1b[31m") == "\\x1b[31m"
    assert escape_text("\u202e") == "\\u202e"
    assert escape_text("\udcff") == "\\udcff"


def test_our_own_traceback_keeps_its_lines(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("bad\nsubject")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "ERROR test.logs: bad\\x0asubject"
    assert lines[1] == "Traceback (most recent call last):"


def test_the_json_format_is_one_valid_line_with_the_text_intact() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "%s", (HOSTILE[0],), None)
    out = JsonFormatter().format(record)
    assert "\n" not in out and "\r" not in out
    assert json.loads(out)["message"] == HOSTILE[0]
