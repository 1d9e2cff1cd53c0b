"""The Google connector's config models: the ``connections.google`` block and a calendar entry.

The block names where the service account's JSON key is read from (a file or an
environment variable, never the key itself) and the bounds on paging and retries;
an entry names the calendar (``primary`` by default). Both refuse unknown keys.
See docs/calendars-google.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class GoogleConnectionConfig(BaseModel):
    """The organisation-level ``connections.google`` block: the service account and limits."""

    model_config = ConfigDict(extra="forbid")

    service_account_file: str | None = Field(
        default=None, description="path of the service account JSON key file"
    )
    service_account_env: str | None = Field(
        default=None, description="environment variable holding the service account JSON key"
    )
    page_size: int = Field(default=250, ge=1, le=2500)
    library_retries: int = Field(default=1, ge=0, le=10)
    throttle_retries: int = Field(default=3, ge=0, le=10)
    max_retry_wait: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> GoogleConnectionConfig:
        if (self.service_account_file is None) == (self.service_account_env is None):
            raise ValueError("give exactly one of service_account_file or service_account_env")
        return self


class GoogleCalendarConfig(BaseModel):
    """One user's calendar entry ``{kind: google, calendar_id: primary}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["google"] = "google"
    calendar_id: str = Field(default="primary", min_length=1)
