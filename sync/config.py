"""The configuration file: users, profiles, calendars, rules and where things run.

YAML, validated with pydantic; every problem is reported at once with the
file, line and column (``ConfigError``). Paths inside the file are relative to
the file's folder. Secrets are never in the file: blocks name an environment
variable (``*_env``) or a file (``*_file``) instead.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from connectors.calendars.base import (
    SHARED_KEY,
    CalendarSource,
    Mailbox,
    SyncResult,
    SyncWindow,
    split_shared,
)
from connectors.calendars.limits import CalendarLimitsConfig
from connectors.calendars.organizer import is_own_calendar, normalize_domain
from rules.actions import ForwardPolicy, normalize_number
from rules.dialling import (
    DEFAULT_ALLOWED_PREFIXES,
    DEFAULT_DENIED_PREFIXES,
    DEFAULT_EXTENSIONS,
    canonical_prefix,
    parse_extension_range,
)
from rules.errors import (
    CalendarError,
    CalrefError,
    ConfigError,
    InvalidActionError,
    Problem,
    RuleFileError,
    ValidationError,
)
from rules.evaluate import EvaluationContext
from rules.model import Profile, User
from rules.rulefile import RuleSet, default_rules, load_rules
from rules.yamlfile import decode_text, format_path, load_yaml, problems_from_pydantic
from sync.config_checks import Report, http_url, in_order, report_invalid, report_store

CALENDAR_KINDS = ("ics", "graph", "ews", "google", "caldav")


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


@dataclass
class AppConfig:
    """A loaded, validated configuration with the domain objects built from it."""

    path: Path
    file: ConfigFile
    timezone: ZoneInfo
    users: list[User]
    rules: RuleSet
    policy: ForwardPolicy
    _connections: dict[str, Any] = field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def org_domains(self) -> tuple[str, ...]:
        return tuple(d.lower() for d in self.file.organization.domains)

    def user(self, user_id: str) -> User:
        for user in self.users:
            if user.id == user_id:
                return user
        known = ", ".join(u.id for u in self.users) or "none"
        raise ConfigError([Problem(str(self.path), None, None, f"no user '{user_id}' ({known})")])

    def evaluation_context(self) -> EvaluationContext:
        return EvaluationContext(timezone=self.timezone, policy=self.policy, rules=self.rules)

    def mailbox(self, user: User) -> Mailbox:
        return Mailbox(user.id, user.email, self.org_domains, self.file.timezone)

    def calendar_entries(self, user_id: str) -> list[dict[str, Any]]:
        return next(u.calendars for u in self.file.users if u.id == user_id)

    def connection(self, kind: str, model: type[BaseModel]) -> Any:
        """The validated connection block for ``kind``, built once and shared by its sources."""
        if kind not in self._connections:
            self._connections[kind] = model.model_validate(self.file.connections[kind])
        return self._connections[kind]

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
                out.append(_SOURCE_BUILDERS[entry["kind"]](self, entry, box))
            except CalrefError as err:
                out.append(UnbuiltSource(f"{user_id}/calendars[{index}]", err))
        return out


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


def load_config(path: str | Path, *, check_store: bool = False) -> AppConfig:
    """Read and validate the config file; raise ConfigError listing every problem.

    With ``check_store`` (``calref check``) a SQLite store's file and folder must
    also be writable; nothing is created.
    """
    path = Path(path)
    name = str(path)
    try:
        doc = load_yaml(decode_text(path.read_bytes(), name), name)
    except OSError as err:
        raise ConfigError([Problem(name, None, None, f"cannot read: {err.strerror}")]) from None
    except ValidationError as err:
        raise ConfigError(err.problems) from None
    if not isinstance(doc.data, dict | None):
        raise ConfigError([Problem(name, 1, 1, "a config file is a mapping of keys to values")])
    problems: list[Problem] = []

    def problem(where: tuple[str | int, ...], message: str, *, at_value: bool = False) -> None:
        line, column = doc.locate_value(where) if at_value else doc.locate(where)
        problems.append(Problem(name, line, column, message))

    data = doc.data if doc.data is not None else {}
    try:
        file = ConfigFile.model_validate(data)
    except pydantic.ValidationError as err:
        # the blocks the schema leaves open, and the rule file, are still checked: all at once
        problems += problems_from_pydantic(err, doc, name)
        _check_raw_blocks(data, problem)
        if isinstance(data.get("store"), str):
            report_store(data["store"], path.parent, check_store, problem)
        rules_name = data.get("rules")
        if isinstance(rules_name, str) and rules_name:
            _load_rules(path.parent, rules_name, problem, problems)
        raise ConfigError(in_order(problems, name)) from None

    try:
        tz = ZoneInfo(file.timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        problem(("timezone",), f"unknown time zone {file.timezone!r}")
        tz = ZoneInfo("UTC")
    policy = file.forwarding.policy()
    _check_connections(file.connections, problem)
    users = _build_users(file, policy, problem)
    if file.switchboard.kind == "http" and not file.switchboard.url:
        problem(("switchboard",), "a switchboard of kind http needs a url")
    _check_push(file, problem)
    report_store(file.store, path.parent, check_store, problem)
    rules = _load_rules(path.parent, file.rules, problem, problems) if file.rules else None
    if problems:
        raise ConfigError(in_order(problems, name))
    rules = rules or default_rules()
    if rules.forward_problems(policy):  # rule forward numbers pass the dialling policy
        raise RuleFileError(rules.forward_problems(policy))
    return AppConfig(path=path, file=file, timezone=tz, users=users, rules=rules, policy=policy)


def _load_rules(
    base_dir: Path, rules: str, problem: Report, problems: list[Problem]
) -> RuleSet | None:
    """The rule file named by ``rules:``; None with its problems added when it is invalid."""
    try:
        return load_rules(base_dir / rules)
    except ValidationError as err:
        problems += err.problems
    except (OSError, ValueError) as err:  # e.g. a NUL byte in the rules: path
        problem(("rules",), f"rules: cannot read the rule file: {err}", at_value=True)
    return None


def _check_raw_blocks(data: dict[str, Any], problem: Report) -> None:
    """The connection blocks and calendar entries of a config the schema refused elsewhere."""
    connections = data.get("connections")
    given: Collection[str] = ()
    if isinstance(connections, dict) and all(isinstance(v, dict) for v in connections.values()):
        _check_connections(connections, problem)
        given = connections
    users = data.get("users")
    for i, user in enumerate(users if isinstance(users, list) else ()):
        calendars = user.get("calendars") if isinstance(user, dict) else None
        for k, entry in enumerate(calendars if isinstance(calendars, list) else ()):
            if isinstance(entry, dict) and all(isinstance(key, str) for key in entry):
                _check_calendar_entry(given, entry, ("users", i, "calendars", k), problem)


def _build_users(
    file: ConfigFile,
    policy: ForwardPolicy,
    problem: Report,
) -> list[User]:
    users: list[User] = []
    seen: set[str] = set()
    for i, uc in enumerate(file.users):
        where: tuple[str | int, ...] = ("users", i)
        if uc.id in seen:
            problem((*where, "id"), f"user id '{uc.id}' is used twice")
        seen.add(uc.id)
        profile_ids: set[str] = set()
        tags: set[str] = set()
        for j, pc in enumerate(uc.profiles):
            if pc.id in profile_ids:
                problem((*where, "profiles", j, "id"), f"profile id '{pc.id}' is used twice")
            profile_ids.add(pc.id)
            for tag in pc.tags:
                if tag.lower() in tags:
                    problem((*where, "profiles", j, "tags"), f"tag '{tag}' names two profiles")
                tags.add(tag.lower())
            if pc.number is not None:
                try:
                    normalize_number(pc.number, policy)
                except InvalidActionError as err:
                    problem((*where, "profiles", j, "number"), str(err))
        for k, entry in enumerate(uc.calendars):
            _check_calendar_entry(file.connections, entry, (*where, "calendars", k), problem)
        profiles = tuple(
            Profile(id=p.id, name=p.name, number=p.number, tags=tuple(t.lower() for t in p.tags))
            for p in uc.profiles
        )
        users.append(User(uc.id, uc.name, uc.email, uc.extension, profiles))
    return users


def _check_push(file: ConfigFile, problem: Callable[[tuple[str | int, ...], str], None]) -> None:
    """Graph calendars with push need the clientState secret named."""
    push = file.push
    if push is None or push.client_state_env or push.client_state_file:
        return
    if any(entry.get("kind") == "graph" for user in file.users for entry in user.calendars):
        problem(
            ("push",),
            "push with graph calendars needs client_state_env or client_state_file "
            "(the secret Microsoft Graph echoes in each notification)",
        )


@dataclass(frozen=True)
class _Connector:
    """Where a calendar kind's connection block, calendar entry and factory live."""

    module: str
    connection: str
    calendar: str


_CONNECTORS = {
    "graph": _Connector("connectors.calendars.graph", "ConnectionConfig", "CalendarConfig"),
    "ews": _Connector("connectors.calendars.ews", "ConnectionConfig", "CalendarConfig"),
    "google": _Connector("connectors.calendars.google", "ConnectionConfig", "CalendarConfig"),
    "caldav": _Connector("connectors.calendars.caldav", "ConnectionConfig", "CalendarConfig"),
}


def _connector_models(kind: str) -> tuple[Any, type[BaseModel], type[BaseModel]]:
    spec = _CONNECTORS[kind]
    module = importlib.import_module(spec.module)
    return module, getattr(module, spec.connection), getattr(module, spec.calendar)


def _check_connections(connections: dict[str, Any], problem: Report) -> None:
    """Validate each ``connections:`` block once, used or not."""
    for kind, block in connections.items():
        if kind not in _CONNECTORS:
            problem(
                ("connections", kind),
                f"connections.{kind}: unknown connection {kind!r} "
                f"(expected one of {', '.join(_CONNECTORS)})",
            )
            continue
        _, connection_model, _ = _connector_models(kind)
        report_invalid(connection_model, block, ("connections", kind), problem)


def _check_calendar_entry(
    connections: Collection[str],
    entry: dict[str, Any],
    where: tuple[str | int, ...],
    problem: Report,
) -> None:
    """Validate one calendar entry where it stands (``connections``: the blocks given)."""
    try:
        entry, _ = split_shared(entry)  # every kind accepts `shared:`; the kinds never see it
    except ValueError as err:
        problem((*where, SHARED_KEY), str(err))
        return
    kind = entry.get("kind")
    if kind not in CALENDAR_KINDS:
        problem(
            (*where, "kind"),
            f"unknown calendar kind {kind!r} (expected one of {', '.join(CALENDAR_KINDS)})",
        )
        return
    if kind == "ics":
        from connectors.calendars.ics.build import ics_entry_problems

        for loc, message in ics_entry_problems(entry):
            unknown = message.startswith("unknown key")
            place = (*where, *loc)
            problem(place, f"{format_path(place)}: {message}", at_value=bool(loc) and not unknown)
        return
    _, _, calendar_model = _connector_models(kind)
    report_invalid(calendar_model, entry, where, problem)
    if kind not in connections:
        problem(
            (*where, "kind"), f"calendar kind '{kind}' needs a 'connections: {{{kind}: ...}}' block"
        )


def _ics_source(app: AppConfig, entry: dict[str, Any], mailbox: Mailbox) -> CalendarSource:
    from connectors.calendars.ics.build import build_ics_source

    return build_ics_source(entry, mailbox, app.base_dir, app.file.calendar_limits.limits())


def _connector_source(app: AppConfig, entry: dict[str, Any], mailbox: Mailbox) -> CalendarSource:
    kind = entry["kind"]
    module, connection_model, calendar_model = _connector_models(kind)
    connection = app.connection(kind, connection_model)
    bounds = {"limits": app.file.calendar_limits.limits()} if kind == "caldav" else {}
    source: CalendarSource = module.build_source(
        connection, calendar_model.model_validate(entry), mailbox, **bounds
    )
    return source


_SOURCE_BUILDERS: dict[str, Callable[[AppConfig, dict[str, Any], Mailbox], CalendarSource]] = {
    "ics": _ics_source,
    **{kind: _connector_source for kind in _CONNECTORS},
}
