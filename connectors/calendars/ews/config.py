"""The EWS connector's config models: the ``connections.ews`` block and a calendar entry.

The block names the Exchange endpoint (``server`` or ``service_endpoint``), the
service account and where its password is read from (never the password itself),
the Exchange version and how the account reaches other mailboxes (impersonation or
delegate access), and the bounds on server-busy retries. Both refuse unknown keys.
See docs/calendars-ews.md.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

VERSIONS = ("2013", "2013_SP1", "2016", "2019")


class EwsConnectionConfig(BaseModel):
    """The organisation-level ``connections.ews`` block: endpoint, service account, limits."""

    model_config = ConfigDict(extra="forbid")

    server: str | None = Field(default=None, description="host name, e.g. mail.example.se")
    service_endpoint: str | None = Field(default=None, description="full EWS URL")
    username: str | None = Field(default=None, description=r"DOMAIN\user or user@domain")
    password_env: str | None = None
    password_file: str | None = None
    auth_type: Literal["NTLM", "GSSAPI"] = "NTLM"
    version: Literal["2013", "2013_SP1", "2016", "2019"] = "2016"
    access_type: Literal["impersonation", "delegate"] = "impersonation"
    throttle_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> EwsConnectionConfig:
        if (self.server is None) == (self.service_endpoint is None):
            raise ValueError("give exactly one of server or service_endpoint")
        if self.service_endpoint is not None and not self.service_endpoint.startswith("https://"):
            raise ValueError("service_endpoint must be an https:// URL")
        if self.server is not None and not re.fullmatch(r"[A-Za-z0-9.-]+(:\d{1,5})?", self.server):
            raise ValueError(
                "server must be a host name such as mail.example.se (no scheme or path)"
            )
        if self.auth_type == "NTLM":
            if not self.username:
                raise ValueError("NTLM needs username")
            if (self.password_env is None) == (self.password_file is None):
                raise ValueError("NTLM needs exactly one of password_env or password_file")
        return self

    @property
    def endpoint(self) -> str:
        return self.service_endpoint or f"https://{self.server}/EWS/Exchange.asmx"


class EwsCalendarConfig(BaseModel):
    """One user's calendar entry ``{kind: ews}``; ``mailbox`` defaults to the user's email."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["ews"] = "ews"
    mailbox: str | None = None
