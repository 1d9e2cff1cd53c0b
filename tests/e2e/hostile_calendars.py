"""Hostile and broken calendars for the 200-user end-to-end test, one builder per class.

Each builder returns the bytes of an ICS file that once stalled, crashed or
froze calref (issue 7). ``FATAL`` calendars must make their source fail with a
message naming the bound or the problem; ``SURVIVABLE`` ones hold one broken
event beside a good meeting, and the good meeting must still be carried out.
Feeds that never answer or never finish are served by ``HostileFeeds``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

CRLF = "\r\n"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def _calendar(*events: str, tail: str = "") -> bytes:
    body = CRLF.join(
        ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//calref tests//hostile//EN", *events]
    )
    return (body + CRLF + "END:VCALENDAR" + CRLF + tail).encode("utf-8")


def _event(uid: str, start: datetime, end: datetime, summary: str, *extra: str) -> str:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTAMP:{_stamp(start)}",
        f"DTSTART:{_stamp(start)}",
        f"DTEND:{_stamp(end)}",
        f"SUMMARY:{summary}",
        *extra,
        "END:VEVENT",
    ]
    return CRLF.join(lines)


def good_meeting(uid: str, start: datetime, end: datetime) -> str:
    """The meeting every user has: it closes the phone while it runs."""
    return _event(uid, start, end, "Planning #close")


def minutely_since_1900(start: datetime, end: datetime) -> bytes:
    bad = CRLF.join(
        [
            "BEGIN:VEVENT",
            "UID:minutely-1900",
            "DTSTAMP:19000101T000000Z",
            "DTSTART:19000101T000000Z",
            "DTEND:19000101T000100Z",
            "RRULE:FREQ=MINUTELY",
            "SUMMARY:Every minute since 1900",
            "END:VEVENT",
        ]
    )
    return _calendar(bad, good_meeting("good", start, end))


def secondly(start: datetime, end: datetime) -> bytes:
    first = start - timedelta(days=400)
    bad = _event("secondly", first, first + timedelta(seconds=1), "Tick", "RRULE:FREQ=SECONDLY")
    return _calendar(bad, good_meeting("good", start, end))


def huge_count(start: datetime, end: datetime) -> bytes:
    first = start - timedelta(days=2)
    bad = _event(
        "huge-count",
        first,
        first + timedelta(seconds=30),
        "Often",
        "RRULE:FREQ=MINUTELY;COUNT=2000000000",
    )
    return _calendar(bad, good_meeting("good", start, end))


def thousands_of_rdates(start: datetime, end: datetime) -> bytes:
    dates = [_stamp(start + timedelta(minutes=i)) for i in range(20_000)]
    rdate_lines = [f"RDATE:{','.join(dates[i : i + 200])}" for i in range(0, len(dates), 200)]
    bad = _event("rdates", start, start + timedelta(seconds=30), "Many", *rdate_lines)
    return _calendar(bad, good_meeting("good", start, end))


def interval_zero(start: datetime, end: datetime) -> bytes:
    bad = _event("interval-0", start, end, "Never moves", "RRULE:FREQ=DAILY;INTERVAL=0")
    return _calendar(bad, good_meeting("good", start, end))


def folded_description(start: datetime, end: datetime) -> bytes:
    """A 4 MB DESCRIPTION folded every 74 characters (once quadratic to parse)."""
    text = "x" * 4_000_000
    folded = CRLF.join([text[:60], *(" " + text[i : i + 74] for i in range(60, len(text), 74))])
    bad = _event("folded", start, end, "Long", "DESCRIPTION:" + folded)
    return _calendar(bad, good_meeting("good", start, end))


def deeply_nested(start: datetime, end: datetime) -> bytes:
    depth = 5_000
    opening = CRLF.join(["BEGIN:VEVENT"] * depth)
    closing = CRLF.join(["END:VEVENT"] * depth)
    return _calendar(opening, closing, good_meeting("good", start, end))


def binary_garbage(start: datetime, end: datetime) -> bytes:
    return bytes(range(256)) * 4096


def duplicate_dtstart(start: datetime, end: datetime) -> bytes:
    bad = CRLF.join(
        [
            "BEGIN:VEVENT",
            "UID:two-starts",
            f"DTSTAMP:{_stamp(start)}",
            f"DTSTART:{_stamp(start)}",
            f"DTSTART:{_stamp(start + timedelta(hours=1))}",
            f"DTEND:{_stamp(end)}",
            f"DTEND:{_stamp(end + timedelta(hours=1))}",
            "SUMMARY:Two starts",
            "END:VEVENT",
        ]
    )
    return _calendar(bad, good_meeting("good", start, end))


def broken_dtstart(start: datetime, end: datetime) -> bytes:
    bad = CRLF.join(
        [
            "BEGIN:VEVENT",
            "UID:broken-start",
            f"DTSTAMP:{_stamp(start)}",
            "DTSTART:not-a-date\x1b[31m",
            f"DTEND:{_stamp(end)}",
            "SUMMARY:Broken",
            "END:VEVENT",
        ]
    )
    return _calendar(bad, good_meeting("good", start, end))


def two_tzids(start: datetime, end: datetime) -> bytes:
    zone = CRLF.join(
        [
            "BEGIN:VTIMEZONE",
            "TZID:Custom A",
            "TZID:Custom B",
            "BEGIN:STANDARD",
            "DTSTART:16010101T030000",
            "TZOFFSETFROM:+0200",
            "TZOFFSETTO:+0100",
            "END:STANDARD",
            "END:VTIMEZONE",
        ]
    )
    return _calendar(zone, good_meeting("good", start, end))


def text_after_end(start: datetime, end: datetime) -> bytes:
    return _calendar(good_meeting("good", start, end), tail="<!-- served by feedgen 1.0 -->\r\n")


Builder = Callable[[datetime, datetime], bytes]

#: the source as a whole fails over a bound or a broken file: nothing of it is planned,
#: and the status names the bound or the problem (the second element)
FATAL: dict[str, tuple[Builder, str]] = {
    "minutely_since_1900": (minutely_since_1900, "max_rule_steps"),
    "secondly": (secondly, "max_rule_steps"),
    "huge_count": (huge_count, "max_occurrences_per_event"),
    "thousands_of_rdates": (thousands_of_rdates, "max_rdates"),
    "binary_garbage": (binary_garbage, "not an iCalendar file"),
}

#: one broken or costly part is skipped or read within bounds; the good meeting beside it
#: is carried out
SURVIVABLE: dict[str, Builder] = {
    "interval_zero": interval_zero,
    "deeply_nested": deeply_nested,
    "folded_description": folded_description,
    "duplicate_dtstart": duplicate_dtstart,
    "broken_dtstart": broken_dtstart,
    "two_tzids": two_tzids,
    "text_after_end": text_after_end,
}


class HostileFeeds:
    """Two feeds on one local port: ``/hung`` never answers, ``/trickle`` never finishes."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.requests: list[str] = []
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def wait_for_request(self, timeout: float) -> None:
        """Return once a request came in; fail the test after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.requests:
            assert time.monotonic() < deadline, "calref never asked the hostile feeds"
            time.sleep(0.02)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self._conns.append(conn)
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            request = conn.recv(4096).decode("latin-1")
            self.requests.append(request.split(" ", 2)[1] if " " in request else "?")
            if " /trickle" not in request:
                self._stop.wait()  # hung: never a byte
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n\r\n")
            conn.sendall(b"BEGIN:VCALENDAR\r\n")
            while not self._stop.wait(0.3):
                conn.sendall(b"X")
        except OSError:
            return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self.sock.close()


def ordinary(start: datetime, end: datetime) -> bytes:
    """The calendar of everybody else: the one good meeting."""
    return _calendar(good_meeting("good", start, end))
