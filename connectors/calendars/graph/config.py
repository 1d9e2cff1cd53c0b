"""The Graph connector's config models: the ``connections.graph`` block and a calendar entry.

Both refuse unknown keys; secrets are never in the file, only where to read them
(``*_env``/``*_file``). The sign-in and Graph hosts must belong to one national cloud
(``connectors/calendars/graph/clouds.py``). See docs/calendars-graph.md.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.calendars.graph.clouds import check_cloud_pair


class GraphConnectionConfig(BaseModel):
    """The ``connections: {graph: ...}`` block: one app registration in one tenant.

    Exactly one credential: a client secret (``client_secret_env`` or
    ``client_secret_file``) or a certificate (``certificate_key_env`` or
    ``certificate_key_file`` holding the PEM private key, plus its
    ``certificate_thumbprint``).
    """

    model_config = ConfigDict(extra="forbid")

    tenant_id: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    certificate_key_env: str | None = None
    certificate_key_file: str | None = None
    certificate_thumbprint: str | None = None
    authority_host: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    page_size: int = Field(default=50, ge=1, le=1000)
    max_retries: int = Field(default=4, ge=0, le=10)
    max_retry_wait_seconds: float = Field(default=120.0, gt=0)
    max_in_flight_per_mailbox: int = Field(default=4, ge=1, le=4)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("authority_host", "graph_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if not parts.hostname or parts.scheme != "https":
            raise ValueError("must be an https:// URL")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> GraphConnectionConfig:
        secret = bool(self.client_secret_env or self.client_secret_file)
        cert = bool(self.certificate_key_env or self.certificate_key_file)
        if secret == cert:
            raise ValueError(
                "give exactly one credential: client_secret_env/client_secret_file, or "
                "certificate_key_env/certificate_key_file with certificate_thumbprint"
            )
        if cert and not self.certificate_thumbprint:
            raise ValueError("a certificate credential needs certificate_thumbprint")
        check_cloud_pair(self.authority_host, self.graph_url)
        return self


class GraphCalendarConfig(BaseModel):
    """A user's ``calendars: [{kind: graph, ...}]`` entry (the primary calendar)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["graph"] = "graph"
    mailbox: str | None = Field(
        default=None, description="mailbox address (UPN); defaults to the user's email"
    )
