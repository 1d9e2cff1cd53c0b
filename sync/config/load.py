"""Loading the config file: read, validate every block, report every problem at once.

YAML, validated with pydantic (``sync/config/schema.py``); every problem is reported
at once with the file, line and column (``ConfigError``), in the order they stand,
the rule file's after the config file's. Paths inside the file are relative to the
file's folder. Secrets are never in the file: blocks name an environment variable
(``*_env``) or a file (``*_file``) instead. Calendar entries and connection blocks are
checked by their kind's connector (``sync/config/calendars.py``); the rule file is
read by ``sync/config/rule_file.py``.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pydantic

from rules.actions import ForwardPolicy, normalize_number
from rules.errors import (
    ConfigError,
    InvalidActionError,
    Problem,
    RuleFileError,
    ValidationError,
)
from rules.model import Profile, User
from rules.rulefile import RuleSet, default_rules
from rules.yamlfile import decode_text, load_yaml, problems_from_pydantic
from sync.config.app import AppConfig
from sync.config.calendars import check_calendar_entry, check_connections
from sync.config.checks import Report, in_order, report_store
from sync.config.rule_file import load_rules
from sync.config.schema import ConfigFile


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
    check_connections(file.connections, problem)
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
        check_connections(connections, problem)
        given = connections
    users = data.get("users")
    for i, user in enumerate(users if isinstance(users, list) else ()):
        calendars = user.get("calendars") if isinstance(user, dict) else None
        for k, entry in enumerate(calendars if isinstance(calendars, list) else ()):
            if isinstance(entry, dict) and all(isinstance(key, str) for key in entry):
                check_calendar_entry(given, entry, ("users", i, "calendars", k), problem)


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
            check_calendar_entry(file.connections, entry, (*where, "calendars", k), problem)
        profiles = tuple(
            Profile(id=p.id, name=p.name, number=p.number, tags=tuple(t.lower() for t in p.tags))
            for p in uc.profiles
        )
        users.append(User(uc.id, uc.name, uc.email, uc.extension, profiles))
    return users


def _check_push(file: ConfigFile, problem: Report) -> None:
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
