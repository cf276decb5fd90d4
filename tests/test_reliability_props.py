"""Property-based fault tests: structured hostile DVC files, display paths, command-line paths,
hook stdin and globs. (Sizes, repo_path and raw-bytes parser input are covered in
tests/test_sizes_globs_config.py and tests/test_dvcfiles.py.)"""

from __future__ import annotations

import os
import posixpath
import tempfile
from pathlib import Path
from typing import Any

import click
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from repro_hooks.commands._common import FilesCommand
from repro_hooks.dvc.files import DvcFileError, parse_dvc_file, parse_dvc_lock, parse_dvc_yaml
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.history.refs import parse_pre_push_lines, parse_pre_receive_lines
from repro_hooks.large_files.check import _relative_to_root
from repro_hooks.policy.globs import glob_match, validate_glob
from repro_hooks.report import display_path

PATHY = st.sampled_from(
    ["x", "a/b.csv", "../up", "/abs", "C:\\w", "./x", "a/../../b", "s3://b/k", "", "a\0b", "."]
)
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=8), PATHY)
KEYS = st.sampled_from(
    [
        "outs",
        "deps",
        "path",
        "md5",
        "hash",
        "size",
        "nfiles",
        "cache",
        "push",
        "remote",
        "wdir",
        "stages",
        "cmd",
        "params",
        "frozen",
        "schema",
        "metrics",
        "plots",
        "foreach",
        "x",
    ]
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=25,
)


def _safe(path: str) -> bool:
    return (
        bool(path)
        and not path.startswith("/")
        and posixpath.normpath(path) == path
        and path != ".."
        and not path.startswith("../")
        and "\0" not in path
    )


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6), st.sampled_from(["a.dvc", "d/x.dvc"]))
def test_structured_dvc_file_is_parsed_safely_or_refused(doc: dict[str, Any], name: str) -> None:
    content = yaml.safe_dump(doc).encode()
    try:
        parsed = parse_dvc_file(content, name)
    except DvcFileError as exc:
        error = str(exc)
    else:
        assert all(_safe(o.path) for o in [*parsed.outs, *parsed.deps])
        return
    assert error.startswith(f"{name}: ")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6), st.sampled_from(["dvc.yaml", "d/dvc.yaml"]))
def test_structured_dvc_yaml_is_parsed_safely_or_refused(doc: dict[str, Any], name: str) -> None:
    content = yaml.safe_dump(doc).encode()
    try:
        stages = parse_dvc_yaml(content, name)
    except DvcFileError:
        return
    for stage in stages.values():
        assert _safe(stage.wdir) or stage.wdir == "."
        assert all(_safe(o.path) for o in stage.outs)
        assert all(_safe(p) for p in stage.params)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6), st.sampled_from(["dvc.lock", "d/dvc.lock"]))
def test_structured_dvc_lock_is_parsed_safely_or_refused(doc: dict[str, Any], name: str) -> None:
    content = yaml.safe_dump(doc).encode()
    try:
        stages = parse_dvc_lock(content, name)
    except DvcFileError:
        return
    for stage in stages.values():
        assert all(_safe(o.path) for o in [*stage.outs, *stage.deps])


@given(st.binary(max_size=60))
def test_display_path_is_one_printable_line(raw: bytes) -> None:
    shown = display_path(raw)
    assert shown.isprintable()
    assert "\n" not in shown and "\r" not in shown


NAME = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\0"), min_size=1, max_size=12
).filter(lambda n: n not in (".", "..") and len(n.encode()) < 200)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAME.map(lambda n: "-" + n), min_size=1, max_size=4, unique=True), st.booleans())
def test_existing_names_starting_with_dash_are_always_paths(names: list[str], flag: bool) -> None:
    @click.command(cls=FilesCommand)
    @click.argument("paths", nargs=-1)
    @click.option("--max-size")
    @click.option("--fix", is_flag=True)
    def cmd(paths: tuple[str, ...], max_size: str | None, fix: bool) -> None:
        click.echo(repr((sorted(paths), max_size, fix)))

    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for name in names:
                Path(name).write_bytes(b"")
            args = ["--max-size", "1MB", *(["--fix"] if flag else []), *names]
            result = CliRunner().invoke(cmd, args)
        finally:
            os.chdir(cwd)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == repr((sorted(names), "1MB", flag))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["a", "..", ".", "b c", "", "-x", "é"]), max_size=6))
def test_command_line_paths_never_leave_the_repository(parts: list[str]) -> None:
    root = Path("/repo/root")
    git = Git(root / ".git", root)
    text = "/".join(parts) or "."
    for cwd in (root / "sub", root):  # from a subdirectory, and the root's fast path
        error = ""
        try:
            rel = _relative_to_root(git, text, cwd, cwd == root)
        except ReproHooksError as exc:
            error = str(exc)
        if error:
            assert "outside the repository" in error
        else:
            assert not rel.startswith(b"../") and rel != b".." and not rel.startswith(b"/")


@given(st.text(max_size=120))
def test_hook_stdin_is_parsed_or_refused(text: str) -> None:
    for parse in (parse_pre_push_lines, parse_pre_receive_lines):
        try:
            parse(text)
        except ReproHooksError:
            pass


@given(st.text(max_size=10), st.text(max_size=20))
def test_a_valid_glob_never_fails_to_match(pattern: str, path: str) -> None:
    try:
        validate_glob(pattern)
    except ValueError:
        return
    assert glob_match(pattern, path) in (True, False)
