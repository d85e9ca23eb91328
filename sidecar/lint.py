"""[lint]: squawk, the PostgreSQL migration linter, over the plan's SQL files before anything runs.

Each step's files go to squawk in one call per kind: transactional files with
`--assume-in-transaction` (sidecar wraps each in one), no-transaction files
without it. Rules that the step's guard already satisfies are not asked for:
with a lock_timeout, require-lock-timeout; with a statement_timeout,
require-statement-timeout (the runner owns the timeouts, squawk#678).
Findings of squawk's error level (a syntax error) or of a rule in `fail_on`
stop the run as a plan error (exit 2), before any database is touched; the
others are logged as warnings.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import PlanError
from .kinds.sql import SqlStep
from .log import get_logger
from .model import Lint, Plan

log = get_logger()
TIMEOUT = 120.0  # seconds squawk may take over one step's files


@dataclass(frozen=True, slots=True)
class Finding:
    file: str  # relative to the plan's folder
    line: int  # 1-based
    rule: str
    message: str
    stops: bool  # an error, or a rule in fail_on


def check(plan: Plan) -> None:
    """Lint every SQL file of the plan; log warnings; PlanError naming each finding that stops the run."""
    assert plan.lint is not None
    findings = [f for step in plan.sql_steps() for f in _lint_step(plan, plan.lint, step)]
    for f in findings:
        if not f.stops:
            log.warning("lint.finding", file=f.file, line=f.line, rule=f.rule, reason=f.message)
    stopping = [f"{f.file}, line {f.line}: {f.rule}: {f.message}" for f in findings if f.stops]
    if stopping:
        raise PlanError(stopping, hint="fix these files, or list the rule in lint.exclude"
                                       " (a rule in lint.fail_on stops the run; others only warn)")
    files = sum(len(step.migrations) for step in plan.sql_steps())
    log.info("lint.passed", files=files, warnings=len(findings))


def _config_exclusions(plan: Plan) -> set[str]:
    """`excluded_rules` of a .squawk.toml in the plan's folder: squawk reads the file itself, but
    the --exclude we pass would replace that list instead of adding to it."""
    config = plan.path.parent / ".squawk.toml"
    try:
        rules = tomllib.loads(config.read_text(encoding="utf-8")).get("excluded_rules", [])
    except FileNotFoundError:
        return set()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PlanError([f"{config}: cannot read it: {exc}"]) from exc
    if not isinstance(rules, list) or not all(isinstance(rule, str) for rule in rules):
        raise PlanError([f"{config}: excluded_rules: expected a list of rule names"])
    return set(rules)


def _lint_step(plan: Plan, lint: Lint, step: SqlStep) -> list[Finding]:
    exclude = set(lint.exclude) | _config_exclusions(plan)
    if step.guard.lock_timeout:
        exclude.add("require-lock-timeout")
    if step.guard.statement_timeout:
        exclude.add("require-statement-timeout")
    findings = []
    for transactional in (True, False):
        files = [str(m.path) for m in step.migrations if m.transactional == transactional]
        if files:
            options = ["--assume-in-transaction"] if transactional else []
            options += [f"--exclude={','.join(sorted(exclude))}"] if exclude else []
            findings += _squawk(plan, lint, options, files)
    return findings


def _squawk(plan: Plan, lint: Lint, options: list[str], files: list[str]) -> list[Finding]:
    # From the plan's folder, so a .squawk.toml there applies.
    argv = [lint.squawk, "--reporter", "json", *options, *files]
    try:
        done = subprocess.run(argv, cwd=plan.path.parent, capture_output=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PlanError([f"{plan.path}: lint.squawk: {lint.squawk} could not lint the files: {exc}"]) from exc
    try:
        if done.returncode not in (0, 1):
            raise ValueError(f"exit {done.returncode}")
        report = json.loads(done.stdout)
        return [_finding(plan, item, lint) for item in report]
    except (ValueError, KeyError, TypeError) as exc:
        said = " ".join(done.stderr.decode(errors="replace").split())[:300] or str(exc)
        raise PlanError([f"{plan.path}: lint: squawk did not lint the files ({said})"],
                        hint="check lint.squawk, lint.fail_on and lint.exclude (rule names as squawk"
                             " lists them), and any .squawk.toml beside the plan") from exc


def _finding(plan: Plan, item: dict[str, object], lint: Lint) -> Finding:
    path, folder = Path(str(item["file"])), plan.path.parent.resolve()
    shown = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
    rule = str(item["rule_name"])
    message = str(item["message"]) + (f" ({item['help']})" if item.get("help") else "")
    return Finding(shown, int(str(item["line"])) + 1, rule, message,  # squawk counts lines from 0
                   stops=item["level"] == "Error" or rule in lint.fail_on)
