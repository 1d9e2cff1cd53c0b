r"""Log output for ``calref run``: readable lines by default, one JSON object per line on request.

Messages carry text from calendars (subjects, error messages quoting a bad
file), so the text format escapes every control, format and separator
character of the message (``\r``, ``\n``, ANSI escapes, bidi overrides,
U+2028, lone surrogates from undecodable bytes) as ``\xNN``/``\uNNNN``: one
record is always one line, and nothing a calendar says can forge a log line or
drive the terminal. A traceback appended to a record is calref's own and keeps
its lines. JSON lines are safe by construction (``json.dumps`` escapes them).
"""

from __future__ import annotations

import json
import logging
import sys
import unicodedata
from datetime import UTC, datetime

_UNSAFE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def escape_text(text: str) -> str:
    """``text`` with every control, format or separator character escaped (one safe line)."""
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char == "\t" or unicodedata.category(char) not in _UNSAFE:
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) < 0x10000:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


class SafeFormatter(logging.Formatter):
    """The text format, with the message escaped by ``escape_text``."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        message = record.message
        record.message = escape_text(message)
        try:
            return super().formatMessage(record)
        finally:
            record.message = message


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, and the error if any."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(*, as_json: bool = False, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that log request URLs (which may carry tokens) stay at warning level.
    for noisy in ("httpx", "httpcore", "googleapiclient", "urllib3", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
