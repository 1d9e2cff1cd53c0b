"""The ``calref`` command line.

Every command reports expected problems (a bad config, rule file or calendar)
as a one-line-per-problem message on stderr and a non-zero exit code; never
a traceback.
"""

from __future__ import annotations

import sys

from sync.cli import early_signals
from sync.cli.early_signals import StartupInterrupted, stop_on_signal_during_startup

if sys.argv[1:2] == ["run"]:  # before the heavy imports: SIGTERM stops ``calref run`` cleanly
    stop_on_signal_during_startup()

import functools
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from rules.errors import CalrefError, ValidationError
from rules.wording import plural

app = typer.Typer(
    name="calref",
    help="Keeps a switchboard's referrals in step with people's calendars.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
rules_app = typer.Typer(help="Show and check rule files.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="The calref config file (YAML).", dir_okay=False)
]


def reports_errors(func: F) -> F:
    """Turn a CalrefError into its message on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CalrefError as err:
            heading = "invalid" if isinstance(err, ValidationError) else "error"
            typer.echo(
                f"calref: {heading}:\n{err}" if "\n" in str(err) else f"calref: {err}", err=True
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@rules_app.command("default")
def rules_default() -> None:
    """Print the built-in default rules (a starting point for your own rule file)."""
    from rules.rulefile import default_rules_text

    typer.echo(default_rules_text(), nl=False)


@rules_app.command("check")
@reports_errors
def rules_check(file: Annotated[Path, typer.Argument(help="The rule file to check.")]) -> None:
    """Exit 0 if FILE is a valid rule file; otherwise print every problem and exit 2."""
    from sync.config import load_rules

    ruleset = load_rules(file)
    typer.echo(f"{file}: ok ({plural(len(ruleset.rules), 'rule')})")


@app.command()
@reports_errors
def preview(
    config: ConfigOption,
    from_: Annotated[
        str, typer.Option("--from", help="Start: a date (local midnight) or date-time.")
    ],
    to: Annotated[str, typer.Option("--to", help="End (exclusive): a date or date-time.")],
    user: Annotated[
        str | None, typer.Option(help="The user's id; all users when left out.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show the referrals and phone actions the calendars give, without changing anything."""
    from sync.cli.preview import parse_moment, preview_json, preview_table, preview_user
    from sync.config import load_config

    cfg = load_config(config)
    start = parse_moment(from_, cfg.timezone, option="--from")
    end = parse_moment(to, cfg.timezone, option="--to")
    users = [cfg.user(user)] if user else cfg.users
    previews = [preview_user(cfg, u, start, end) for u in users]
    if as_json:
        docs = [preview_json(p) for p in previews]
        typer.echo(json.dumps(docs[0] if user else docs, indent=2, ensure_ascii=False))
    else:
        typer.echo("\n\n".join(preview_table(p) for p in previews))
    for warning in (w for p in previews for w in p.warnings):
        typer.echo(f"calref: calendar warning: {warning}", err=True)
    errors = [e for p in previews for e in p.errors]
    for error in errors:
        typer.echo(f"calref: calendar error: {error}", err=True)
    if errors:
        raise typer.Exit(1)


@app.command()
@reports_errors
def explain(
    config: ConfigOption,
    user: Annotated[str, typer.Option(help="The user's id.")],
    event: Annotated[str, typer.Option(help="The event's UID.")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Search from (default: 30 days ago).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Search to (default: 90 days ahead).")
    ] = None,
) -> None:
    """Say which rule matched each occurrence of an event, and why earlier rules did not."""
    from connectors.clock import SystemClock
    from sync.cli.preview import explain_text, parse_moment
    from sync.config import load_config

    cfg = load_config(config)
    now = SystemClock().now()
    start = (
        parse_moment(from_, cfg.timezone, option="--from") if from_ else now - timedelta(days=30)
    )
    end = parse_moment(to, cfg.timezone, option="--to") if to else now + timedelta(days=90)
    typer.echo(explain_text(cfg, cfg.user(user), event, start, end))


@app.command()
@reports_errors
def run(
    config: ConfigOption,
    log_json: Annotated[
        bool, typer.Option("--log-json", help="Log one JSON object per line.")
    ] = False,
) -> None:
    """Run the service in the foreground until SIGTERM or SIGINT.

    Several processes may run on one store: one leads (holds the store's lease),
    the others stand by and take over when it stops or its lease lapses.
    """
    stop_on_signal_during_startup()  # main() did already; again for callers of app()
    try:
        from connectors.clock import SystemClock
        from sync.cli.logs import setup_logging
        from sync.cli.runtime import build_service, open_store
        from sync.cli.shutdown import run_until_stopped
        from sync.config import load_config
        from sync.service.lease import LeaderLease

        setup_logging(as_json=log_json)
        early_signals.check()
        cfg = load_config(config)
        early_signals.check()
        clock = SystemClock()
        store = open_store(cfg)
        early_signals.check()
        service = build_service(cfg, clock, store=store, lease=LeaderLease(store, clock))
        code = run_until_stopped(cfg, service)
    except StartupInterrupted as stopped:
        import logging

        logging.getLogger(__name__).info("stopped during start-up (signal %d)", stopped.signum)
        code = 0
    if code:
        raise typer.Exit(code)


@app.command()
@reports_errors
def check(
    config: ConfigOption,
    connect: Annotated[
        bool,
        typer.Option(help="Also read each calendar once and ask the switchboard for its users."),
    ] = False,
) -> None:
    """Check that a config is ready to run; exit 1 if anything fails. Changes nothing.

    Every problem of the config, the rule file and the store's folder is printed
    at once (exit 2); with ``--connect`` every calendar of every user and the
    switchboard are tried, one ``ok``/``FAIL`` line each.
    """
    from connectors.clock import SystemClock
    from sync.cli.doctor import check_config, check_connections
    from sync.cli.runtime import build_switchboard
    from sync.config import load_config

    cfg = load_config(config, check_store=True)
    findings = check_config(cfg)
    if connect:
        clock = SystemClock()
        findings += check_connections(cfg, clock.now(), lambda: build_switchboard(cfg, clock))
    for finding in findings:
        typer.echo(str(finding))
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


@app.command()
@reports_errors
def status(config: ConfigOption) -> None:
    """Show the leading process, each user's referral, phone, next action and calendar health."""
    from connectors.clock import SystemClock
    from sync.cli.runtime import open_store
    from sync.cli.status import format_status, service_status, status_report
    from sync.config import load_config

    cfg = load_config(config)
    store = open_store(cfg, readonly=True)  # never creates or changes a store
    now = SystemClock().now()
    report = status_report(store, now)
    typer.echo(format_status(report, now, cfg.timezone, service_status(store)))
    store.close()


@app.command()
@reports_errors
def simulator(
    config: ConfigOption,
    port: Annotated[int, typer.Option(help="The port to serve on.")] = 8700,
    host: Annotated[
        str,
        typer.Option(help="The address to serve on; beyond loopback only with a token."),
    ] = "127.0.0.1",
    latency: Annotated[float, typer.Option(help="Seconds of latency added to each call.")] = 0.0,
    token_env: Annotated[
        str | None,
        typer.Option(
            help="Require this environment variable's bearer token "
            "(default: the config's switchboard.token_env or token_file)."
        ),
    ] = None,
) -> None:
    """Serve the switchboard simulator's HTTP API, seeded with the config's users.

    The bearer token is the one calref itself sends (the config's ``switchboard``
    block), so ``calref run`` on the same config is let in and nobody else is.
    Without any token it listens on loopback only.
    """
    from connectors.secrets import read_secret
    from connectors.switchboard.simulator import is_loopback, serve
    from sync.config import load_config

    cfg = load_config(config)
    board = cfg.file.switchboard
    if token_env:
        token = read_secret(env=token_env, what="simulator token")
        source = f"environment variable {token_env}"
    elif board.token_env or board.token_file:
        token = read_secret(env=board.token_env, file=board.token_file, what="switchboard token")
        source = (
            f"environment variable {board.token_env}"
            if board.token_env
            else f"file {board.token_file}"
        )
    else:
        token, source = None, ""
    if token is None and not is_loopback(host):
        raise CalrefError(
            f"simulator: refusing to listen on {host} without a bearer token; set the "
            "config's switchboard.token_env or token_file (or --token-env), or listen on "
            "127.0.0.1"
        )
    shown = f"[{host}]" if ":" in host else host
    needs = (
        f"bearer token required (from {source})"
        if token is not None
        else "no token required: any local process can change phones"
    )
    typer.echo(f"calref simulator listening on http://{shown}:{port}; {needs}")
    serve(cfg.users, host=host, port=port, latency=latency, token=token)


@app.command()
@reports_errors
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the example organisation is written.")
    ] = Path("demo-run"),
) -> None:
    """Run the example organisation on embedded defaults."""
    from sync.cli.demo import run_demo

    run_demo(directory)


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:2] != ["run"]:
        app()
        return
    stop_on_signal_during_startup()
    try:
        app()
        code: int = 0
    except SystemExit as stopped:  # StartupInterrupted too (code 0)
        if isinstance(stopped.code, str):
            print(stopped.code, file=sys.stderr)
        code = stopped.code if isinstance(stopped.code, int) else int(stopped.code is not None)
    # calref run has cleaned up (sync/cli/shutdown.py): end without tearing down the
    # interpreter, which waits on busy calendar threads and frees every object (seconds)
    import logging
    import os

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
