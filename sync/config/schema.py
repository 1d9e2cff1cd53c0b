"""The config file's schema: one pydantic model per block, unknown keys refused.

``ConfigFile`` is the whole file: ``timezone``, ``organization`` (the organisation's
mail domains), ``rules`` (the rule file's path), ``forwarding`` (the dialling policy),
``store``, ``switchboard``, ``sync`` (polling), ``connections`` and the users'
``calendars`` (left open here: each calendar kind's own models check them, see
``sync/config/calendars.py``), ``push`` and ``calendar_limits``. Checks across
blocks are in ``sync/config/load.py``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from connectors.calendars.limits import CalendarLimitsConfig
from connectors.calendars.organizer import normalize_domain
from rules.actions import ForwardPolicy
from rules.dialling import (
    DEFAULT_ALLOWED_PREFIXES,
    DEFAULT_DENIED_PREFIXES,
    DEFAULT_EXTENSIONS,
    canonical_prefix,
    parse_extension_range,
)
from sync.config.checks import http_url


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileConfig(_Strict):
    id: str = Field(min_length=1)
    name: str
    number: str | None = None
    tags: list[str] = []


class UserConfig(_Strict):
    id: str = Field(min_length=1)
    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    extension: str = Field(pattern=r"^\d{1,8}$")
    profiles: list[ProfileConfig] = []
    calendars: list[dict[str, Any]] = []


class OrganizationConfig(_Strict):
    domains: list[str] = []

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, value: list[str]) -> list[str]:
        bad = ", ".join(repr(d) for d in value if normalize_domain(d) is None)
        if bad:
            raise ValueError(f"not a domain name: {bad} (write e.g. example.se)")
        return value


def _prefix(value: str) -> str:
    canonical_prefix(value)
    return value


def _extension_range(value: str) -> str:
    parse_extension_range(value)
    return value


_Prefix = Annotated[str, AfterValidator(_prefix)]
_ExtensionRange = Annotated[str, AfterValidator(_extension_range)]


class ForwardingConfig(_Strict):
    """The dialling policy (docs/forwarding.md); its checks live in ``rules.dialling``."""

    trunk_prefix: str = Field(default="0", pattern=r"^[0-9]{0,3}$")
    country_code: str = Field(default="46", pattern=r"^[0-9]{1,3}$")
    international_prefix: str = Field(default="00", pattern=r"^[0-9]{1,3}$")
    allow_international: bool = False
    denied_prefixes: list[_Prefix] = list(DEFAULT_DENIED_PREFIXES)
    allowed_prefixes: list[_Prefix] = list(DEFAULT_ALLOWED_PREFIXES)
    extensions: list[_ExtensionRange] = list(DEFAULT_EXTENSIONS)

    @model_validator(mode="after")
    def _consistent(self) -> ForwardingConfig:
        self.policy()  # ValueError if the settings contradict each other
        return self

    def policy(self) -> ForwardPolicy:
        """The ``ForwardPolicy`` these settings describe."""
        return ForwardPolicy(
            trunk_prefix=self.trunk_prefix,
            country_code=self.country_code,
            international_prefix=self.international_prefix,
            allow_international=self.allow_international,
            denied_prefixes=tuple(self.denied_prefixes),
            allowed_prefixes=tuple(self.allowed_prefixes),
            extensions=tuple(self.extensions),
        )


class SwitchboardConfig(_Strict):
    kind: Literal["simulator", "http"] = "simulator"
    url: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    client_name: str = "calref"
    timeout_seconds: float = 10.0
    concurrency: int = Field(default=16, ge=1, le=512)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


class SyncConfig(_Strict):
    poll_seconds: float = Field(default=60, gt=0)
    horizon_days: int = Field(default=14, ge=1, le=366)


class PushConfig(_Strict):
    """The optional ``push:`` block: calendar change notifications received by ``calref run``.

    The listener serves plain HTTP on ``listen_host:listen_port``; ``public_url``
    is the HTTPS address (a reverse proxy with TLS) at which Microsoft and Google
    reach that listener's root. ``client_state_env``/``client_state_file`` name
    the secret Graph echoes in every notification (needed for graph calendars).
    """

    listen_host: str = Field(default="127.0.0.1", min_length=1)
    listen_port: int = Field(default=8800, ge=0, le=65535)
    public_url: str
    client_state_env: str | None = None
    client_state_file: str | None = None
    safety_poll_seconds: float = Field(default=3600, gt=0)
    maintenance_seconds: float = Field(default=600, gt=0)

    @field_validator("public_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not re.fullmatch(r"https://[^\s/?#]+(/[^\s?#]*)?", value):
            raise ValueError(
                "must be an https:// URL without query or fragment (Microsoft and Google "
                "only deliver to HTTPS; put a reverse proxy with TLS in front of the listener)"
            )
        return value

    @model_validator(mode="after")
    def _one_client_state(self) -> PushConfig:
        if self.client_state_env and self.client_state_file:
            raise ValueError("give at most one of client_state_env or client_state_file")
        return self

    def url(self, path: str) -> str:
        """The public HTTPS address of the listener's ``path`` (which starts with a slash)."""
        return self.public_url.rstrip("/") + path


class ConfigFile(_Strict):
    timezone: str = "Europe/Stockholm"
    organization: OrganizationConfig = OrganizationConfig()
    rules: str | None = None
    forwarding: ForwardingConfig = ForwardingConfig()
    store: str = "sqlite:///calref.db"
    switchboard: SwitchboardConfig = SwitchboardConfig()
    sync: SyncConfig = SyncConfig()
    connections: dict[str, dict[str, Any]] = {}
    push: PushConfig | None = None
    calendar_limits: CalendarLimitsConfig = CalendarLimitsConfig()  # docs/calendar-limits.md
    users: list[UserConfig] = []
