"""Command line: parse arguments, configure logging, map errors to exit codes.

Imports of psycopg2 and structlog stay inside the commands that need them:
`sidecar probe` is a healthcheck run every second or two and must stay cheap.
"""

from __future__ import annotations

import os
import sys

from . import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the probe's fast path)
if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from .errors import SidecarError
    from .model import Plan
    from .session import Session
    from .settings import Settings



def exit_codes_help() -> str:
    """The exit-code table (errors.EXIT_CODES) as plain text, for --help."""
    from .errors import EXIT_CODES

    width = max(len(code) for code, _ in EXIT_CODES)
    return "exit codes:\n" + "".join(f"  {code.ljust(width)}  {meaning.replace('`', '')}\n"
                                      for code, meaning in EXIT_CODES)


def build_parser() -> argparse.ArgumentParser:
    import argparse
    from pathlib import Path

    from .errors import WORK_PENDING

    parser = argparse.ArgumentParser(
        prog="sidecar", description="Run an ordered migration plan across PostgreSQL databases,"
        " verify it, and report healthy.", epilog=exit_codes_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sidecar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add_plan(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("plan", nargs="?", type=Path, default=None,
                         help="the plan file (default: $SIDECAR_PLAN or sidecar.toml)")

    run = commands.add_parser("run", help="migrate, verify, report healthy and keep serving")
    add_plan(run)
    run.add_argument("--once", action="store_true",
                     help="exit 0 once ready (Compose service_completed_successfully, init containers, CI)")
    run.add_argument("--health-file", type=Path, default=None,
                     help="where to write the health file (default: $SIDECAR_HEALTH_FILE or"
                          " /run/sidecar/health.json)")
    validate = commands.add_parser("validate", help="check the plan; touches no database")
    add_plan(validate)
    status = commands.add_parser("status", help="report every database: reachable, tables,"
                                 " applied, pending, verification")
    add_plan(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    preview = commands.add_parser("plan", help="show what a run would do, in order; read-only, takes no lock"
                                  f" (exit 0: nothing to do, {WORK_PENDING}: work pending; 2, 4, 5: a run would"
                                  " stop there, as the exit codes below say)")
    add_plan(preview)
    preview.add_argument("--json", action="store_true", help="machine-readable output")
    preview.add_argument("--locks", action="store_true", help="also show what every pending SQL statement will"
                         " lock, rewrite or read in full, on tables of what size, for about how long (docs/locks.md)")
    commands.add_parser("schema", help="print the plan's JSON Schema, for editors to check and complete"
                        " sidecar.toml (Taplo, Even Better TOML: `#:schema` line)")
    probe = commands.add_parser("probe", help="healthcheck: exit 0 only if the health file is"
                                " healthy and fresh")
    probe.add_argument("path", nargs="?", type=Path, default=None,
                       help="health file (default: $SIDECAR_HEALTH_FILE or /run/sidecar/health.json)")
    probe.add_argument("--wait", type=duration, default=0.0, metavar="DURATION",
                       help="while the plan is still running (the file says starting, or is not there yet),"
                            " keep reading it this long, e.g. 2s; keep it under the healthcheck's timeout")
    probe.add_argument("--alive", action="store_true",
                       help="liveness: exit 0 while the sidecar keeps its file fresh, healthy or not"
                            " (a database outage must not restart it)")
    return parser


def duration(text: str) -> float:  # argparse names the type in its errors: "invalid duration value"
    from .probe import parse_wait

    return parse_wait(text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["probe"]:
        from . import probe  # the healthcheck's fast path: no argparse, no pathlib

        simple = probe.parse_args(argv[1:])
        if simple is not None:
            return probe.run(*simple)
    args = _plain_run(argv) or build_parser().parse_args(argv)
    if args.command == "probe":
        from . import probe

        return probe.run(str(args.path) if args.path else None, args.wait, args.alive)
    if args.command == "schema":  # no plan, no settings: the same text whatever the environment
        from .schema import json_text

        sys.stdout.write(json_text())
        return 0
    return _with_errors_reported(args)


def entry() -> None:
    """The console script: `main`, then exit without the interpreter's teardown.

    A finished command has closed its connections, children and files; tearing down the modules
    it loaded (psycopg2, structlog with asyncio) is work no restart needs, and it takes tens of
    milliseconds (bench/STARTUP.md). django_child.leave does the same for Django. Output that
    cannot be written is dropped, never the command (output.py).
    """
    from . import output

    output.guard()
    code = main()
    output.flush()
    os._exit(code)


def _plain_run(argv: list[str]) -> argparse.Namespace | None:
    """`run [--once] [PLAN]`, what a container starts with, parsed without argparse: its first parser
    costs milliseconds on every restart (gettext looking for translations). None for anything else,
    which argparse parses (and explains)."""
    from types import SimpleNamespace
    from typing import cast

    if argv[:1] != ["run"] or argv.count("--once") > 1:
        return None
    rest = [arg for arg in argv[1:] if arg != "--once"]
    if len(rest) > 1 or (rest and (not rest[0] or rest[0].startswith("-"))):
        return None
    from pathlib import Path

    return cast("argparse.Namespace", SimpleNamespace(command="run", plan=Path(rest[0]) if rest else None,
                                                      once="--once" in argv, health_file=None))


def _with_errors_reported(args: argparse.Namespace) -> int:
    from . import log, redact
    from .errors import BUG, Interrupted, PlanError, SidecarError
    from .settings import from_environment, health_file

    # status and plan own stdout; their log lines (check commands' output) go to stderr.
    stream = sys.stderr if args.command in ("status", "plan") else sys.stdout
    try:
        settings = from_environment(os.environ)
    except PlanError as exc:  # reported with the default log settings, since ours are what is wrong
        log.configure("console", "info", stream)
        _no_health_file_left(args, health_file(os.environ))
        return _report_failure(exc)
    log.configure(settings.log_format, settings.log_level, stream)
    try:
        return _dispatch(args, settings)
    except SidecarError as exc:
        holds = args.command == "run" and not args.once and not isinstance(exc, Interrupted)
        hold = settings.failure_hold if holds else 0.0
        _no_health_file_left(args, settings.health_file)
        code = _report_failure(exc, hold)
        if hold:
            from . import service

            service.hold_after_failure(args.health_file or settings.health_file, exc.message, hold)
        return code
    except Exception as exc:  # a bug: say so plainly, still without a password
        import traceback

        _no_health_file_left(args, settings.health_file)
        log.get_logger().error("sidecar.crashed", error=redact.redact(f"{type(exc).__name__}: {exc}"),
                               traceback=redact.redact(traceback.format_exc()),
                               hint="this is a bug in sidecar; please report it with this log")
        return BUG


def _no_health_file_left(args: argparse.Namespace, default: Path) -> None:
    """A `run` that fails leaves no health file, however early it fails.

    An invalid plan or settings stop the run before it replaces an earlier run's
    file, which may say `healthy` and still be fresh: without this, the probe
    would pass on a run that never happened. A run that fails later has removed
    its own file already (progress.Progress); SIDECAR_FAILURE_HOLD then writes
    `failed` (service.hold_after_failure).
    """
    import contextlib

    from . import health

    if args.command == "run":
        with contextlib.suppress(OSError):  # a folder we cannot write: nothing more we can do
            health.remove(args.health_file or default)


def _report_failure(exc: SidecarError, hold: float = 0.0) -> int:
    """The run's last line, `sidecar.failed`: what went wrong, where, and what to do; its exit code."""
    from . import log
    from .errors import PlanError

    logger = log.get_logger()
    held = {"holding_s": hold} if hold else {}
    where = {"database": exc.database} if exc.database else {}
    if exc.sqlstate:
        where["sqlstate"] = exc.sqlstate  # the server's error code (sqlstate.py classified it)
    if isinstance(exc, PlanError) and len(exc.problems) > 1:
        for problem in exc.problems:
            logger.error("plan.problem", reason=problem)
        logger.error("sidecar.failed", error=f"invalid plan: {len(exc.problems)} problems above",
                     hint=exc.hint, exit_code=exc.exit_code, **held)
    else:
        logger.error("sidecar.failed", error=exc.message, hint=exc.hint, exit_code=exc.exit_code, **where, **held)
    return exc.exit_code


# The module each command needs once the plan is ready: imported while a Django or Alembic child loads.
_NEXT_MODULE = {"run": "service", "status": "status", "plan": "preview"}


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from importlib import import_module

    from . import frameworks
    from .plan import load_plan

    following = _NEXT_MODULE.get(args.command)
    meanwhile = (lambda: import_module(f"{__package__}.{following}")) if following else (lambda: None)
    plan = load_plan(args.plan or settings.plan)
    with frameworks.prepared(plan, meanwhile) as (plan, children):  # touches no database
        return _dispatch_prepared(args, settings, plan, children)


def _dispatch_prepared(args: argparse.Namespace, settings: Settings, plan: Plan,
                       children: dict[str, Session]) -> int:
    from . import db
    from .redact import redact

    if plan.lint is not None and args.command in ("run", "validate"):
        from . import lint

        lint.check(plan)  # before any database is touched
    if args.command == "validate":
        steps = ", ".join(s.name for s in plan.steps)
        print(redact(f"{plan.path}: plan {plan.name!r} is valid: {len(plan.databases)} databases,"
                     f" {len(plan.steps)} steps ({steps}), digest {plan.digest}"))
        from . import kinds

        for step in plan.steps:  # e.g. which Django alias is which database: what the plan was checked for
            if line := kinds.of(step).describe(step):
                print(redact(f"  {line}"))
        return 0
    with db.session(liveness_interval=settings.liveness_interval, peer_timeout=settings.peer_timeout):
        if args.command == "status":
            from . import status
            from .errors import NOT_HEALTHY

            report = status.collect(plan, settings.health_file)
            print(redact(status.render_json(plan, report) if args.json else status.render_table(plan, report)))
            return 0 if report.healthy else NOT_HEALTHY
        if args.command == "plan":
            from . import preview
            from .errors import WORK_PENDING, StepError, VerificationError

            found = preview.collect(plan, locks=args.locks)
            print(redact(preview.render_json(plan, found, args.locks) if args.json
                         else preview.render_text(plan, found, args.locks)))
            if found.stops:
                stop = StepError("; ".join(found.stops), hint=f"a run would stop there (exit {found.stop_exit}), as"
                                 " the preview above says; run `sidecar plan` again once that is fixed: what a run"
                                 " does next can change with it (files another tool recorded are adopted)")
                stop.exit_code = found.stop_exit  # the run's own code for it: 2 for the [locks] policy
                raise stop
            if found.failing:
                raise VerificationError("; ".join(found.failing), hint="a run would apply nothing and fail"
                                        " verification (exit 5), as `sidecar status` says")
            return WORK_PENDING if found.pending else 0
        from . import service

        service.run(plan, args.health_file or settings.health_file, once=args.once, children=children)
        return 0
