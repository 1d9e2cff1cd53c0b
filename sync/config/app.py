"""A loaded configuration: the users, rules and policy built from it, and their calendar sources.

``AppConfig`` is what ``load_config`` (``sync/config/load.py``) returns once every
check has passed. It builds each user's calendar sources through the kind's connector
(``sync/config/calendars.py``); an entry that cannot be set up (a secret missing)
becomes an ``UnbuiltSource`` that fails every sync with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from connectors.calendars.base import (
    CalendarSource,
    Mailbox,
    SyncResult,
    SyncWindow,
    split_shared,
)
from connectors.calendars.organizer import is_own_calendar
from rules.actions import ForwardPolicy
from rules.errors import CalendarError, CalrefError, ConfigError, Problem
from rules.evaluate import EvaluationContext
from rules.model import User
from rules.rulefile import RuleSet
from sync.config.calendars import CONNECTORS
from sync.config.schema import ConfigFile

Model = TypeVar("Model", bound=BaseModel)


@dataclass
class AppConfig:
    """A loaded, validated configuration with the domain objects built from it."""

    path: Path
    file: ConfigFile
    timezone: ZoneInfo
    users: list[User]
    rules: RuleSet
    policy: ForwardPolicy
    _connections: dict[str, BaseModel] = field(default_factory=dict)
    #: user id -> (the user, their calendar entries), built on first use
    _by_id: dict[str, tuple[User, list[dict[str, Any]]]] = field(default_factory=dict)

    def _index(self) -> dict[str, tuple[User, list[dict[str, Any]]]]:
        if len(self._by_id) != len(self.users):
            self._by_id.clear()
            for user, entry in zip(self.users, self.file.users, strict=True):
                self._by_id.setdefault(user.id, (user, entry.calendars))
        return self._by_id

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def org_domains(self) -> tuple[str, ...]:
        return tuple(d.lower() for d in self.file.organization.domains)

    def user(self, user_id: str) -> User:
        found = self._index().get(user_id)
        if found is not None:
            return found[0]
        known = ", ".join(u.id for u in self.users) or "none"
        raise ConfigError([Problem(str(self.path), None, None, f"no user '{user_id}' ({known})")])

    def evaluation_context(self) -> EvaluationContext:
        return EvaluationContext(timezone=self.timezone, policy=self.policy, rules=self.rules)

    def mailbox(self, user: User) -> Mailbox:
        return Mailbox(user.id, user.email, self.org_domains, self.file.timezone)

    def calendar_entries(self, user_id: str) -> list[dict[str, Any]]:
        found = self._index().get(user_id)
        if found is None:
            raise KeyError(user_id)
        return found[1]

    def connection(self, kind: str, model: type[Model]) -> Model:
        """The validated connection block for ``kind`` (empty for a kind that takes none),
        built once and shared by its sources."""
        built = self._connections.get(kind)
        if not isinstance(built, model):
            built = model.model_validate(self.file.connections.get(kind, {}))
            self._connections[kind] = built
        return built

    def sources(self, user_id: str) -> list[CalendarSource]:
        """Build the user's calendar sources (connections are only contacted on sync).

        Raises the first setup problem (a missing secret, say); ``sources_or_failures``
        builds the others and names each that could not be set up.
        """
        built = self.sources_or_failures(user_id)
        for source in built:
            if isinstance(source, UnbuiltSource):
                raise source.error
        return built

    def sources_or_failures(self, user_id: str) -> list[CalendarSource]:
        """Each of the user's calendar sources, or an ``UnbuiltSource`` where setting up failed."""
        user = self.user(user_id)
        mailbox = self.mailbox(user)
        out: list[CalendarSource] = []
        for index, raw in enumerate(self.calendar_entries(user_id)):
            try:
                entry, shared = split_shared(raw)  # `shared: true`: not the user's own calendar
                box = replace(mailbox, own_calendar=is_own_calendar(entry, shared, user.email))
                out.append(self._build_source(entry, box))
            except CalrefError as err:
                out.append(UnbuiltSource(f"{user_id}/calendars[{index}]", err))
        return out

    def _build_source(self, entry: dict[str, Any], mailbox: Mailbox) -> CalendarSource:
        """The source of one (validated) calendar entry, without its ``shared`` key."""
        connector = CONNECTORS[entry["kind"]]
        return connector.build_source(
            self.connection(entry["kind"], connector.ConnectionConfig),
            connector.CalendarConfig.model_validate(entry),
            mailbox,
            limits=self.file.calendar_limits.limits(),
            base_dir=self.base_dir,
        )


@dataclass(frozen=True)
class UnbuiltSource:
    """A calendar entry that could not be set up (a secret missing): a source that always fails.

    Polled like any other source, it is recorded in the store as failing with the
    reason, so ``calref status`` shows the user's calendar as broken.
    """

    id: str
    error: CalrefError

    def sync(self, window: SyncWindow, state: str | None) -> SyncResult:
        raise CalendarError(self.id, f"calendar could not be set up: {self.error}")
