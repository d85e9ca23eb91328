"""The commands parsed without argparse (a container's `run`, the healthcheck's `probe`) mean exactly
what argparse makes of them; anything else is left to argparse."""

from __future__ import annotations

import pytest

from sidecar import cli, probe

PLAIN_RUNS = [["run"], ["run", "--once"], ["run", "plan.toml"], ["run", "plan.toml", "--once"],
              ["run", "--once", "dir/plan.toml"]]


@pytest.mark.parametrize("argv", PLAIN_RUNS)
def test_a_plain_run_is_what_argparse_makes_of_it(argv: list[str]) -> None:
    fast = cli._plain_run(argv)
    assert fast is not None
    assert vars(fast) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["run", "--once", "--once"], ["run", "a.toml", "b.toml"], ["run", "-h"],
                                  ["run", "--health-file", "/tmp/h"], ["run", "--health-file=/tmp/h"],
                                  ["run", "--onc"], ["run", ""], ["status"], ["validate", "plan.toml"], []])
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert cli._plain_run(argv) is None


@pytest.mark.parametrize("argv", [[], ["/h.json"], ["--alive"], ["--wait", "2s"],
                                  ["--wait=500ms", "/h.json", "--alive"]])
def test_a_plain_probe_is_what_argparse_makes_of_it(argv: list[str]) -> None:
    fast = probe.parse_args(argv)
    assert fast is not None
    args = cli.build_parser().parse_args(["probe", *argv])
    assert fast == (str(args.path) if args.path else None, args.wait, args.alive)
