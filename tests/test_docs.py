"""The documentation stays whole: README.md and docs/*.md link only to files and headings that
exist, and every subcommand and every option the CLI's --help shows is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from tests.helpers import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"(?<!!)\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")  # [text](target)
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def all_docs() -> str:
    """README.md and every docs/*.md page: where the documentation lives."""
    return "\n".join(page.read_text(encoding="utf-8") for page in PAGES)


def _prose(text: str) -> str:
    """The text outside fenced code blocks (where `[x](y)` and `# x` are not markdown)."""
    return re.sub(r"^```.*?^```[^\n]*$", "", text, flags=re.MULTILINE | re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation other than - and _ dropped,
    spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose(page.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"#{1,6} (.+)", line)
        if heading is None:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def _relative_links() -> list[tuple[Path, str]]:
    links = []
    for page in PAGES:
        text = re.sub(r"`[^`\n]*`", "", _prose(page.read_text(encoding="utf-8")))
        for target in LINK.findall(text):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # no scheme: http:, mailto:, ...
                links.append((page, target))
    return links


LINKS = _relative_links()


def test_slug_follows_github() -> None:
    assert slug("`repro-hooks install [--hook NAME]... [REPO]`") == (
        "repro-hooks-install---hook-name-repo"
    )
    assert slug("## Configuration: `[tool.repro-hooks]`"[3:]) == "configuration-toolrepro-hooks"
    assert slug("pending [--drop JOB_ID]") == "pending---drop-job_id"


def test_docs_have_links_to_check() -> None:
    """The link test below must have something to fail on."""
    assert len(LINKS) >= 10
    assert any("#" in target for _, target in LINKS)


@pytest.mark.parametrize(
    ("page", "target"), LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS]
)
def test_relative_link_resolves(page: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    assert resolved.is_file(), f"{page.relative_to(ROOT)}: {target}: no such file"
    assert ROOT in resolved.parents, f"{page.relative_to(ROOT)}: {target}: outside the project"
    if anchor:
        assert anchor in anchors(resolved), f"{page.relative_to(ROOT)}: {target}: no such heading"


def test_readme_links_every_docs_page() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for page, target in LINKS
        if page == README
    }
    assert set(PAGES[1:]) <= linked


def test_readme_stays_short_and_keeps_the_two_setup_commands() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    setup = text[text.index("## Set up") : text.index("## Quick start")]
    commands = re.findall(r"^make \w+", setup, flags=re.MULTILINE)
    assert commands == ["make demo", "make test"]


CTX = click.Context(cli, info_name="repro-hooks")


def _help(command: click.Command) -> str:
    result = CliRunner().invoke(command, ["--help"], prog_name="repro-hooks")
    assert result.exit_code == 0, result.output
    return result.output


def _options(command: click.Command) -> list[str]:
    return sorted(set(OPTION.findall(_help(command).split("\nOptions:\n", 1)[1])))


def _subcommands() -> list[str]:
    names = cli.list_commands(CTX)
    listed = _help(cli).split("\nCommands:\n", 1)[1]
    assert [line.split()[0] for line in listed.splitlines() if line.strip()] == names
    return names


def _command(name: str) -> click.Command:
    command = cli.get_command(CTX, name)
    assert command is not None, name
    return command


SUBCOMMANDS = _subcommands()
OPTIONS = [(name, option) for name in SUBCOMMANDS for option in _options(_command(name))]


def _mentioned(pattern: str) -> bool:
    return re.search(pattern, all_docs()) is not None


def test_every_command_has_options_to_check() -> None:
    """--help shows every long option a command declares (so none escapes the test below)."""
    assert len(SUBCOMMANDS) >= 8
    for name in SUBCOMMANDS:
        command = _command(name)
        declared = {
            opt
            for param in command.get_params(CTX)
            if isinstance(param, click.Option)
            for opt in param.opts + param.secondary_opts
            if opt.startswith("--")
        }
        assert declared == set(_options(command)), name
        assert "--help" in declared


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_subcommand_documented(name: str) -> None:
    assert _mentioned(rf"repro-hooks {re.escape(name)}(?![\w-])"), name


@pytest.mark.parametrize(("name", "option"), OPTIONS, ids=[f"{n} {o}" for n, o in OPTIONS])
def test_option_documented(name: str, option: str) -> None:
    assert _mentioned(rf"(?<![\w-]){re.escape(option)}(?![\w-])"), f"repro-hooks {name} {option}"


def test_top_level_options_documented() -> None:
    for option in _options(cli):
        assert _mentioned(rf"(?<![\w-]){re.escape(option)}(?![\w-])"), option
