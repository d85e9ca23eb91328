"""The documentation holds: the site builds strictly, every plan example validates, every shell
example runs or says why it cannot, and the README's quick start is the docs page's, file by file.

Markers, an HTML comment on the line before a code block (invisible on the site and on GitHub):

- a TOML block with no marker is a whole plan, validated with `sidecar validate` in a folder that
  holds the folders its steps name (and the page's other `file:` blocks, when it is one);
- `<!-- docs-test: fragment -->`: a TOML block validated as part of a small plan;
- `<!-- docs-test: steps of FILE -->`: a TOML block validated as the steps of the plan FILE (its text
  before its first `[[steps]]`), in a copy of FILE's folder;
- every shell block carries one: `run` (run here, in the repository, must exit 0), `e2e TEST` (the
  end-to-end test TEST runs it from the page) or `not run: REASON`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
QUICKSTART = DOCS / "quickstart.md"
PAGES = sorted(DOCS.glob("*.md"))
SHELLS = ("sh", "bash", "shell", "console")
MARKER = re.compile(r"^<!-- docs-test: (.+?) -->$")
FILE_LINE = re.compile(r"^(?:#|--) file: (\S+)$")
# The venv's Python runs sidecar; its folder has the tools the examples name (squawk, mkdocs).
BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block of a Markdown file."""

    page: Path
    line: int
    lang: str
    text: str
    marker: str | None

    @property
    def path(self) -> str | None:
        """The file the block is, when its first line says so (`# file: X` or `-- file: X`)."""
        match = FILE_LINE.match(self.text.split("\n", 1)[0])
        return match[1] if match else None

    @property
    def id(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("```"):
            marker = MARKER.match(lines[index - 1]) if index else None
            end = lines.index("```", index + 1)
            found.append(Block(page, index + 1, line[3:].split(" ", 1)[0],
                               "\n".join(lines[index + 1:end]) + "\n", marker[1] if marker else None))
            index = end
        index += 1
    return found


ALL = [block for page in PAGES for block in blocks(page)]
TOML = [block for block in ALL if block.lang == "toml"]
SHELL = [block for block in ALL if block.lang in SHELLS]


def mkdocs() -> list[str]:
    """mkdocs from this interpreter's environment, else from the project's .venv (make test-lowest runs these
    tests in an environment without the docs extra)."""
    for python in (Path(sys.executable), ROOT / ".venv/bin/python"):
        if python.exists() and subprocess.run([python, "-c", "import mkdocs, material"], capture_output=True,
                                              check=False).returncode == 0:
            return [str(python), "-m", "mkdocs"]
    require(False, "mkdocs is not installed: run `make venv` (the docs extra)")
    raise AssertionError  # not reached: require skips or fails


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*mkdocs(), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"}, check=False)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site/quickstart/index.html").exists()


def test_a_broken_link_or_a_page_left_out_of_nav_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path)
    with (tmp_path / "docs/logs.md").open("a") as page:
        page.write("\n[a](plan.md#no-such-heading) and [b](no-such-page.md)\n")
    (tmp_path / "docs/stray.md").write_text("# Not in nav\n")
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0
    for complaint in ("does not contain an anchor '#no-such-heading'", "no-such-page.md", "stray.md"):
        assert complaint in done.stderr, done.stderr


def test_every_page_is_in_nav_and_every_nav_entry_is_a_page() -> None:
    """The strict build checks the first half; this says which page when it fails, without a build."""
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def leaves(entries: list[object]) -> list[str]:
        out: list[str] = []
        for entry in entries:
            for value in (entry.values() if isinstance(entry, dict) else [entry]):
                out.extend(leaves(value) if isinstance(value, list) else [str(value)])
        return out

    assert sorted(leaves(nav)) == sorted(page.name for page in PAGES)


def test_the_plan_reference_keeps_the_markers_for_the_generated_key_tables() -> None:
    text = (DOCS / "plan.md").read_text()
    assert text.count("<!-- plan-keys:begin -->") == 1 and text.count("<!-- plan-keys:end -->") == 1
    assert text.index("<!-- plan-keys:begin -->") < text.index("<!-- plan-keys:end -->")


# --- plans ------------------------------------------------------------------------------------------------


def placeholders(text: str) -> dict[str, str]:
    """A value for every ${VAR} without a default: a URL for *URL; PYTHON is always the test's Python."""
    names = set(re.findall(r"\$\{(\w+)\}", text))
    values = {name: "postgresql://docs@localhost:5432/docs" if name.endswith("URL") else "docs-placeholder"
              for name in names}
    return {**values, "PYTHON": sys.executable}


def validate(plan: Path) -> subprocess.CompletedProcess[str]:
    text = plan.read_text()
    listed = [f for group in re.findall(r"^sql = \[(.+?)\]", text, re.M) for f in re.findall(r'"(.+?)"', group)]
    for folder in [*re.findall(r'^sql = "(.+?)"', text, re.M), *listed]:
        if folder.endswith((".conf", ".toml")):  # a Flyway configuration, its default location beside it
            (plan.parent / folder).touch()
            (plan.parent / "src/main/resources/db/migration").mkdir(parents=True, exist_ok=True)
        else:
            (plan.parent / folder).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **placeholders(text), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run([sys.executable, "-m", "sidecar", "validate", str(plan)], cwd=plan.parent, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


SMALL_PLAN = 'name = "docs"\n'
SMALL_DATABASE = '[databases.default]\nurl = "postgresql://docs@localhost:5432/docs"\n'
SMALL_STEP = '[[steps]]\ndatabase = "default"\nsql = "migrations"\n'  # a plan needs one


@pytest.mark.parametrize("block", TOML, ids=lambda b: b.id)
def test_every_plan_example_validates(block: Block, tmp_path: Path) -> None:
    if block.marker is None:  # a whole plan, with the page's other files beside it
        for other in blocks(block.page):
            if other.path and other is not block:
                (tmp_path / other.path).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / other.path).write_text(other.text)
        plan = tmp_path / (block.path or "sidecar.toml")
        plan.parent.mkdir(parents=True, exist_ok=True)
        plan.write_text(block.text)
    elif block.marker == "fragment":
        plan = tmp_path / "sidecar.toml"
        plan.write_text(SMALL_PLAN + ("" if "[databases.default]" in block.text else SMALL_DATABASE)
                        + ("" if "[[steps]]" in block.text else SMALL_STEP) + block.text)
    elif block.marker.startswith("steps of "):
        source = ROOT / block.marker.removeprefix("steps of ")
        shutil.copytree(source.parent, tmp_path / "project")
        head = re.split(r"^\[\[steps\]\]$", source.read_text(), maxsplit=1, flags=re.M)[0]
        plan = tmp_path / "project" / "docs-example.toml"
        plan.write_text(head + block.text)
    else:
        raise AssertionError(f"{block.id}: unknown marker {block.marker!r} on a TOML block")
    done = validate(plan)
    assert done.returncode == 0, f"{block.id}:\n{plan.read_text()}\n{done.stdout}{done.stderr}"
    assert "is valid" in done.stdout, done.stdout


def test_the_plan_examples_include_whole_plans_and_fragments() -> None:
    """The parametrized test above must not pass by finding nothing."""
    kinds = {block.marker.split(" ")[0] if block.marker else "plan" for block in TOML}
    assert kinds == {"plan", "fragment", "steps"}, kinds


# --- shell examples ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_every_shell_example_runs_or_says_why_not(block: Block, tmp_path: Path) -> None:
    assert block.marker, (f"{block.id}: mark the block <!-- docs-test: run -->, <!-- docs-test: e2e TEST --> or"
                          " <!-- docs-test: not run: REASON -->")
    if block.marker == "run":
        env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for entry in ROOT.iterdir():  # the repository's files, read where the docs name them; what it writes stays here
            (tmp_path / entry.name).symlink_to(entry)
        done = subprocess.run(["bash", "-euo", "pipefail", "-c", block.text], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"{block.id}:\n{block.text}\n{done.stdout}{done.stderr}"
    elif block.marker.startswith("e2e "):
        test = ROOT / block.marker.removeprefix("e2e ")
        assert test.is_file(), block.marker
        assert f"docs/{block.page.name}" in test.read_text(), f"{test.name} does not read docs/{block.page.name}"
    else:
        assert re.fullmatch(r"not run: \S.{10,}", block.marker), f"{block.id}: not run, and why? {block.marker!r}"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang == "yaml"], ids=lambda b: b.id)
def test_every_yaml_example_parses(block: Block) -> None:
    assert isinstance(yaml.safe_load(block.text), dict), block.id


# --- the README -------------------------------------------------------------------------------------------


def readme_section(title: str) -> str:
    return README.read_text().split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_quick_start_is_the_docs_page_file_by_file() -> None:
    readme = blocks(README)
    section = readme_section("Quick start")
    shown = {b.path: b.text for b in readme if b.path and b.text in section}
    page = {b.path: b.text for b in blocks(QUICKSTART) if b.path}
    assert shown == page


def test_every_shell_block_of_the_readme_is_one_of_the_docs() -> None:
    """So it is run, or marked as not run, where the docs' blocks are."""
    in_docs = {block.text for block in SHELL}
    readme = [block for block in blocks(README) if block.lang in SHELLS]
    assert readme and all(block.text in in_docs for block in readme), [b.id for b in readme if b.text not in in_docs]


def slug(heading: str) -> str:
    """Python-Markdown's toc slugify, which mkdocs uses for anchors."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def test_every_link_in_the_readme_leads_to_a_file_and_heading_that_exist() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README.read_text())
    assert links
    for link in links:
        target, _, anchor = link.partition("#")
        assert (ROOT / target).exists(), link
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / target).read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, link


def test_the_readme_stays_short() -> None:
    """Issue 25: a new user read 1,368 lines before their stack ran; the rest lives in docs/."""
    assert len(README.read_text().splitlines()) <= 250
