"""Who organised an event: the user themself, the organisation, or someone outside it.

Every calendar connector (ICS files and feeds, CalDAV, Microsoft Graph, EWS,
Google) classifies its events' organizers with ``classify_organizer``, so the
same address is treated the same way whichever platform it arrived through.
Tags of external organizers can never forward a phone or switch a profile, so
this is deliberately strict: an address counts as internal only when it parses
as exactly one well-formed address (``local@domain``, optionally
``mailto:``-prefixed or in a ``Display Name <...>`` form) whose domain equals,
or is a subdomain of, one of the organisation's configured domains. Everything
else is external: two ``@``, quoted local parts, comments, whitespace or
control characters, look-alike or suffix-only domains (``evilexample.se``,
``example.se.evil.com``), domains that are not valid IDNA.

A missing or empty organizer (no ORGANIZER, ``ORGANIZER:``,
``ORGANIZER:mailto:``) is the user's own appointment on the user's own calendar
(Outlook and ICS exports carry no organizer on appointments a person made
themself) and external on a shared or subscribed calendar
(``Mailbox.own_calendar``, which ``is_own_calendar`` decides for a config entry).
The user's own address is the user on any calendar.
See docs/organisation.md.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from email.errors import HeaderParseError
from email.headerregistry import AddressHeader, HeaderRegistry
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

import idna

from connectors.calendars.base import Mailbox
from rules.model import OrganizerKind

# RFC 5322 atext, less "%" and "!" (the obsolete source-routing forms
# "user%host@relay" and "host!user@relay" name another mailbox than the domain says).
_ATEXT = frozenset(string.ascii_letters + string.digits + "#$&'*+/=?^_`{|}~-")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_MAILTO = re.compile(r"mailto:", re.IGNORECASE)
_HEADERS = HeaderRegistry()


def classify_organizer(organizer: str | None, mailbox: Mailbox) -> OrganizerKind:
    """The organizer's kind for an event on ``mailbox``'s calendar.

    ``organizer`` is the platform's raw value (an ICS CAL-ADDRESS such as
    ``mailto:a@example.se``, or a plain address). Missing or empty: self on the
    user's own calendar, external on a shared one. The user's own address:
    self. A well-formed address on a configured organisation domain (or a
    subdomain of one): internal. Anything else: external.
    """
    text = "" if organizer is None else str(organizer)
    if is_blank(text):
        return OrganizerKind.SELF if mailbox.own_calendar else OrganizerKind.EXTERNAL
    address = parse_address(text)
    if address is None:
        return OrganizerKind.EXTERNAL
    if address == parse_address(mailbox.email):
        return OrganizerKind.SELF
    if in_domains(address.rpartition("@")[2], mailbox.org_domains):
        return OrganizerKind.INTERNAL
    return OrganizerKind.EXTERNAL


def is_blank(text: str) -> bool:
    """No address at all: empty, blanks, or a bare ``mailto:``."""
    value = text.strip()
    if _MAILTO.match(value):
        value = value[len("mailto:") :].strip()
    return value == ""


def in_domains(domain: str, configured: tuple[str, ...]) -> bool:
    """``domain`` (already normalised) equals or is a subdomain of a configured domain."""
    for name in configured:
        org = normalize_domain(name)
        if org is not None and (domain == org or domain.endswith("." + org)):
            return True
    return False


MAX_LENGTH = 512
"""Longer organizer values are not one address (RFC 5321: 254 characters, plus a display name)."""


def parse_address(text: str) -> str | None:
    """``local@domain`` lowercased with the domain in IDNA ASCII form, or None when not one
    well-formed address.

    Accepts ``a@example.se``, ``mailto:a@example.se`` (any case; percent-decoded as an
    RFC 6068 URI, no ``?`` header fields), ``A <a@example.se>`` and ``"A" <mailto:a@...>``
    (the display name checked with the standard library's RFC 5322 parser).
    """
    return None if len(text) > MAX_LENGTH else _parse(text)


@lru_cache(maxsize=4096)
def _parse(text: str) -> str | None:
    value = text.strip(" ")
    if not value or any(_control(ch) for ch in value):
        return None
    if value.endswith(">"):
        return _display_form(value)
    return _uri_or_addr_spec(value)


@lru_cache(maxsize=256)
def normalize_domain(name: str) -> str | None:
    """A domain lowercased, without one trailing dot, in IDNA ASCII form; None if invalid."""
    value = name.strip(" ").lower()
    if value.endswith("."):
        value = value[:-1]
    if not value or len(value) > 253 or any(_control(ch) or ch.isspace() for ch in value):
        return None
    labels = value.split(".")  # only ASCII full stops separate labels (not U+3002 and kin)
    try:
        # IDNA 2008 without UTS 46 mapping: full-width and other look-alike forms are refused
        labels = [label if label.isascii() else idna.alabel(label).decode() for label in labels]
        for label in labels:
            if label.startswith("xn--"):
                idna.ulabel(label)  # a punycode label must decode to a valid U-label
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ".".join(labels)


def _control(ch: str) -> bool:
    """Control, format (e.g. zero-width), line and paragraph separator characters."""
    return unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn")


def _uri_or_addr_spec(value: str) -> str | None:
    if _MAILTO.match(value):
        uri = value[len("mailto:") :]
        if "?" in uri or "#" in uri:
            return None  # RFC 6068 header fields or a fragment: not a bare address
        try:
            value = unquote(uri, errors="strict")
        except UnicodeDecodeError:
            return None
        if any(_control(ch) for ch in value):
            return None
    return _addr_spec(value)


def _display_form(value: str) -> str | None:
    """``Display Name <addr>``: exactly one mailbox, no comments, no parser defects."""
    opening = value.rfind("<")
    if opening < 0 or "(" in value or ")" in value:
        return None
    inner = value[opening + 1 : -1]
    if "<" in inner or ">" in inner:
        return None
    address = _uri_or_addr_spec(inner)
    if address is None:
        return None
    display = value[:opening]
    try:
        header = _HEADERS("to", f"{display}<{address}>")
    except (HeaderParseError, IndexError, ValueError):
        return None
    if header.defects or not isinstance(header, AddressHeader) or len(header.addresses) != 1:
        return None
    return address


def _addr_spec(value: str) -> str | None:
    """A dot-atom local part (no quoting, no comments), exactly one ``@``, a valid domain."""
    if value.count("@") != 1:
        return None
    local, _, domain = value.partition("@")
    if not local or len(local) > 64:
        return None
    if any(not atom or not all(_local_char(ch) for ch in atom) for atom in local.split(".")):
        return None
    ascii_domain = normalize_domain(domain) if domain.strip(" ") == domain else None
    if ascii_domain is None:
        return None
    return f"{local.lower()}@{ascii_domain}"


def _local_char(ch: str) -> bool:
    """RFC 5322 atext (less routing characters), or a non-ASCII letter or digit (RFC 6531)."""
    return ch in _ATEXT or (not ch.isascii() and ch.isalnum())


def is_own_calendar(entry: Mapping[str, Any], shared: bool, email: str) -> bool:
    """Whether a calendar entry (without its ``shared`` key) is the user's own: not marked
    ``shared: true`` and not reading another person's mailbox (Graph's and EWS' ``mailbox:``)."""
    other = entry.get("mailbox")
    if isinstance(other, str) and other and parse_address(other) != parse_address(email):
        return False
    return not shared
