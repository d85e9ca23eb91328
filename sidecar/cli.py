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

EXIT_CODES = """exit codes:
  0  done (run --once), healthy (status, probe), or stopped by SIGTERM/SIGINT while serving
  1  not healthy (status, probe)
  2  invalid plan or settings; no database was touched
  3  a database did not answer in time, refused us, a connection was lost, or the plan lock stayed taken
  4  a migration or command step failed (it was rolled back), or an applied file was edited or deleted
  5  the steps ran but verification failed
  70  a bug in sidecar (the log says so)
  128+N  interrupted by signal N during the plan (143 for SIGTERM)
"""


def build_parser() -> argparse.ArgumentParser:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="sidecar", description="Run an ordered migration plan across PostgreSQL databases,"
        " verify it, and report healthy.", epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"sidecar {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    plan_default = os.environ.get("SIDECAR_PLAN", "sidecar.toml")

    def add_plan(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("plan", nargs="?", type=Path, default=Path(plan_default),
                         help=f"the plan file (default: $SIDECAR_PLAN or sidecar.toml; now {plan_default})")

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
    probe = commands.add_parser("probe", help="healthcheck: exit 0 only if the health file is"
                                " healthy and fresh")
    probe.add_argument("path", nargs="?", type=Path, default=None,
                       help="health file (default: $SIDECAR_HEALTH_FILE or /run/sidecar/health.json)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["probe"] and len(argv) <= 2 and not any(a.startswith("-") for a in argv[1:]):
        from . import probe  # the healthcheck's fast path: no argparse, no pathlib

        return probe.run(argv[1] if len(argv) == 2 else None)
    args = build_parser().parse_args(argv)
    if args.command == "probe":
        from . import probe

        return probe.run(str(args.path) if args.path else None)
    return _with_errors_reported(args)


def _with_errors_reported(args: argparse.Namespace) -> int:
    from . import log, redact
    from .errors import Interrupted, PlanError, SidecarError

    log_format = os.environ.get("LOG_FORMAT", "console")
    # status --json owns stdout; its log lines (check commands' output) go to stderr.
    stream = sys.stderr if args.command == "status" else sys.stdout
    log.configure(log_format if log_format in log.FORMATS else "console",
                  os.environ.get("LOG_LEVEL", "info"), stream)
    logger = log.get_logger()
    try:
        return _dispatch(args)
    except SidecarError as exc:
        hold = _failure_hold() if args.command == "run" and not args.once and not isinstance(exc, Interrupted) else 0
        held = {"holding_s": hold} if hold else {}
        if isinstance(exc, PlanError) and len(exc.problems) > 1:
            for problem in exc.problems:
                logger.error("plan.problem", reason=problem)
            logger.error("sidecar.failed", error=f"invalid plan: {len(exc.problems)} problems above",
                         hint=exc.hint, exit_code=exc.exit_code, **held)
        else:
            logger.error("sidecar.failed", error=exc.message, hint=exc.hint, exit_code=exc.exit_code, **held)
        if hold:
            from . import health, service

            service.hold_after_failure(args.health_file or health.default_path(), exc.message, hold)
        return exc.exit_code
    except Exception as exc:  # a bug: say so plainly, still without a password
        import traceback

        logger.error("sidecar.crashed", error=redact.redact(f"{type(exc).__name__}: {exc}"),
                     traceback=redact.redact(traceback.format_exc()),
                     hint="this is a bug in sidecar; please report it with this log")
        return 70


def _duration_setting(name: str, default: str) -> float:
    """A duration from the environment; PlanError (exit 2) when it is not one."""
    from .errors import PlanError
    from .values import parse_duration

    value = os.environ.get(name) or default
    try:
        return parse_duration(value)
    except ValueError:
        raise PlanError([f"{name}={value!r}: expected a duration like \"90s\" or \"500ms\""]) from None


def _failure_hold() -> float:
    """Seconds to stay alive after a failure: $SIDECAR_FAILURE_HOLD (validated before the run).

    docker-compose 1.29 counts a `service_healthy` dependency that has exited as
    healthy (it only inspects running containers), so a migrator that fails and
    exits at once can let the backend start. Held longer than start_period +
    retries x interval, Docker marks it unhealthy and Compose 1.29 stops there.
    """
    from .errors import PlanError

    try:
        return _duration_setting("SIDECAR_FAILURE_HOLD", "0s")
    except PlanError:
        return 0.0


def _dispatch(args: argparse.Namespace) -> int:
    from .plan import load_plan

    plan = load_plan(args.plan)
    if args.command in ("run", "status"):
        from . import db

        _duration_setting("SIDECAR_FAILURE_HOLD", "0s")
        db.LIVENESS_INTERVAL = max(0.1, _duration_setting("SIDECAR_LIVENESS_INTERVAL", "10s"))
    if args.command == "validate":
        steps = ", ".join(s.name for s in plan.steps)
        print(f"{args.plan}: plan {plan.name!r} is valid: {len(plan.databases)} databases,"
              f" {len(plan.steps)} steps ({steps}), digest {plan.digest}")
        return 0
    if args.command == "status":
        from . import status

        report = status.collect(plan)
        print(status.render_json(plan, report) if args.json else status.render_table(plan, report))
        return 0 if all(d.healthy for d in report) else 1
    from . import health, service

    service.run(plan, args.health_file or health.default_path(), once=args.once)
    return 0
