"""One table of exit codes (errors.EXIT_CODES): the code, `--help` and the docs (docs/commands.md) say the same."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sidecar import errors

COMMANDS_PAGE = Path(__file__).parents[2] / "docs" / "commands.md"


def docs_table() -> list[tuple[str, str]]:
    section = COMMANDS_PAGE.read_text().split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    return [(m[1], m[2]) for m in re.finditer(r"^\| (\S+) \| (.+) \|$", section, re.M) if m[1] not in ("code", "---")]


def test_the_docs_table_is_the_code_table() -> None:
    assert docs_table() == list(errors.EXIT_CODES)


def test_help_prints_the_table() -> None:
    out = subprocess.run([sys.executable, "-m", "sidecar", "--help"], capture_output=True, text=True,
                         check=True).stdout
    epilog = out.split("exit codes:", 1)[1]
    for code, meaning in errors.EXIT_CODES:
        assert re.search(rf"^  {re.escape(code)} +{re.escape(meaning.replace('`', ''))}$", epilog, re.M), code


def test_every_error_class_has_a_code_in_the_table() -> None:
    codes = {code for code, _ in errors.EXIT_CODES}
    for cls in errors.SidecarError.__subclasses__():
        if cls is not errors.Interrupted:
            assert str(cls.exit_code) in codes, cls
    assert str(errors.BUG) in codes and str(errors.NOT_HEALTHY) in codes
    assert errors.Interrupted(15).exit_code == 143


def test_the_console_script_exits_with_mains_code_after_writing_everything_and_without_teardown(tmp_path: Path) -> None:
    """`sidecar` ends with os._exit (cli.entry): stdout, a block-buffered pipe here, still reaches
    its reader in full, the code is main's, and the interpreter's teardown (atexit) does not run."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "0001_a.sql").write_text("SELECT 1;\n")
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text('[databases.app]\nurl = "postgresql://u@h/app"\n[[steps]]\ndatabase = "app"\nsql = "m"\n')
    bad.write_text('[databases.app]\nurl = "postgresql://u@h/app"\n[[steps]]\ndatabase = "nope"\nsql = "m"\n')
    env = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    code = ("import atexit, sys; atexit.register(lambda: print('teardown ran')); from sidecar.cli import entry;"
            " sys.argv[1:] = [sys.argv[1], sys.argv[2]]; entry()")
    for plan, expected, says in ((good, 0, "is valid"), (bad, 2, "sidecar.failed")):
        done = subprocess.run([sys.executable, "-c", code, "validate", str(plan)], capture_output=True, text=True,
                              env=env, check=False)
        assert done.returncode == expected, done.stdout + done.stderr
        assert says in done.stdout
        assert "teardown ran" not in done.stdout + done.stderr
