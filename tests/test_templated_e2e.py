"""Templated `dvc.yaml` files (`vars`, `${...}`, `foreach`, `matrix`) resolved in
repro-hooks, as DVC resolves them, in every project layout; never handed to `dvc status`.

The four failures the issue names, end to end, with DVC itself as the oracle: the hook under the
real pre-commit framework with no DVC anywhere (1), no DVC process or import at all (2: what made
it slower than `dvc status`), `--subdir` projects and a sub-project beside a root project (3),
and outputs matched exactly, never as patterns (4). Then the commit readers (scan, run links)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dvc_helpers import dvc, dvc_status_rc, ours
from tests.helpers import VENV_BIN, cli_here, git, write

PIPELINE = (
    "vars:\n  - config.yaml\nstages:\n  copy:\n    foreach: ${items}\n    do:\n"
    "      cmd: echo ${item} ${scale} > out-${item}.txt\n"
    "      deps: [config.yaml]\n      outs:\n      - out-${item}.txt\n"
)


def _templated_project(where: Path, items: str = "[a, b]") -> None:
    write(where / "config.yaml", f"items: {items}\nscale: 2\n")
    write(where / "dvc.yaml", PIPELINE)
    dvc(where, "repro", "-q")


def _no_dvc_path() -> str:
    """A PATH with git and a shell, and no DVC: the hook environment of a user without DVC."""
    dirs = [os.path.dirname(p) for p in (shutil.which("git"), shutil.which("sh")) if p]
    path = os.pathsep.join(dict.fromkeys(dirs))
    assert shutil.which("dvc", path=path) is None, path
    return path


# ---- 1: require-dvc-files under pre-commit, with no DVC in the hook environment ----------------


def _readme_config(plugin: Path) -> str:
    from tests.test_release import readme_snippet

    snippet = readme_snippet()
    url = re.search(r"repo: (\S+)", snippet)
    rev = re.search(r"rev: (\S+)", snippet)
    assert url is not None and rev is not None
    head = git(plugin, "rev-parse", "HEAD").strip()
    return snippet.replace(url.group(1), str(plugin)).replace(
        f"rev: {rev.group(1)}", f"rev: {head}"
    )


@pytest.mark.e2e
def test_hook_checks_templated_stages_without_dvc(dvc_repo: Path, plugin_snapshot: Path) -> None:
    """Was: exit 2 on every commit ("checking templated DVC stages needs DVC"). The README's
    config through a real `git commit`, PATH holding no DVC: a clean templated pipeline passes,
    a changed output of `copy@a` blocks the commit (as `dvc status` says), `dvc repro` fixes it."""
    _templated_project(dvc_repo)
    (dvc_repo / ".pre-commit-config.yaml").write_text(_readme_config(plugin_snapshot))
    git(dvc_repo, "add", "-A")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "pipeline")
    subprocess.run(
        [str(VENV_BIN / "pre-commit"), "install", "--hook-type", "pre-commit"],
        cwd=dvc_repo,
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PATH": _no_dvc_path()}

    def commit(name: str) -> subprocess.CompletedProcess[str]:
        write(dvc_repo / name, "text\n")
        git(dvc_repo, "add", name)
        return subprocess.run(
            ["git", "commit", "-m", name],
            cwd=dvc_repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    proc = commit("one.txt")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert re.search(r"require exact DVC files for data\.+Passed", out), out
    assert dvc_status_rc(dvc_repo) == 0

    write(dvc_repo / "out-a.txt", "changed\n")
    proc = commit("two.txt")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "out-a.txt: out of stage 'copy@a' (dvc.lock):" in out, out
    assert "needs DVC" not in out and "Traceback" not in out
    assert dvc_status_rc(dvc_repo) == 1  # DVC agrees

    dvc(dvc_repo, "repro", "-q")
    git(dvc_repo, "commit", "-m", "two", env=env)


# ---- 2: no DVC process, no DVC import ----------------------------------------------------------


def test_templated_stages_never_run_or_import_dvc(dvc_repo: Path) -> None:
    """Was: `dvc status --json` for every templated stage (6.2-6.9 s on boilercv where
    `dvc status` takes 2.0 s). Now nothing of DVC is imported, and with no DVC on PATH the
    verdicts stay DVC's: clean, then a changed params value (`scale`) that changes the
    resolved cmd of both generated stages."""
    _templated_project(dvc_repo)
    probe = (
        "import sys\nfrom repro_hooks.cli import main\nrc = main(['check-dvc'])\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dvc', 'dvc_data', 'dvc_objects', 'mlflow'))\nprint(rc, bad)\n"
    )
    env = {**os.environ, "PATH": _no_dvc_path()}

    def run() -> list[str]:
        proc = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=dvc_repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.stdout.strip().splitlines()

    assert run()[-1] == "0 []"
    write(dvc_repo / "config.yaml", "items: [a, b]\nscale: 3\n")
    lines = run()
    assert lines[-1] == "1 []", lines
    assert "dvc.yaml: stage 'copy@a': cmd differs from dvc.lock" in lines
    assert "dvc.yaml: stage 'copy@b': cmd differs from dvc.lock" in lines
    assert dvc_status_rc(dvc_repo) == 1


# ---- 3: --subdir projects, a sub-project beside a root project ---------------------------------


def test_templated_stage_in_a_subdir_project(repo: Path) -> None:
    """Was: `malformed-dvc ... you are not inside of a DVC repository` (dvc status from the git
    root). A `dvc init --subdir` project below a git root with no DVC project."""
    proj = repo / "proj"
    proj.mkdir()
    dvc(proj, "init", "-q", "--subdir")
    _templated_project(proj)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", "pipeline")
    assert ours(repo) == (0, [])
    write(proj / "out-b.txt", "changed\n")
    code, findings = ours(repo)
    assert code == 1
    assert [(f["path"], f["rule"]) for f in findings] == [("proj/out-b.txt", "stale-lock")]
    assert "copy@b" in findings[0]["message"]
    assert dvc_status_rc(proj) == 1


def test_templated_sub_project_beside_a_root_project(dvc_repo: Path) -> None:
    """Was: `malformed-dvc ... is dvc-ignored`. Each project resolves with its own vars files:
    the root's `items` and the sub-project's differ, so stage names (`copy@a` here, `copy@x` and
    `copy@y` there) and outputs come out right only when each reads its own."""
    _templated_project(dvc_repo, "[a]")
    sub = dvc_repo / "sub"
    sub.mkdir()
    dvc(sub, "init", "-q", "--subdir")
    _templated_project(sub, "[x, y]")
    git(dvc_repo, "add", "-A")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "two projects")
    assert ours(dvc_repo) == (0, [])
    assert dvc_status_rc(dvc_repo) == 0 and dvc_status_rc(sub) == 0
    (sub / "out-y.txt").unlink()
    code, findings = ours(dvc_repo)
    assert code == 1
    assert [(f["path"], f["rule"]) for f in findings] == [("sub/out-y.txt", "missing-output")]


def test_subdir_project_reads_its_own_parsing_config(repo: Path) -> None:
    """`[parsing]` of the project's own .dvc/config (here: `bool = store_true`) decides how a
    dict unpacks into a cmd; the verdict is DVC's."""
    proj = repo / "proj"
    proj.mkdir()
    dvc(proj, "init", "-q", "--subdir")
    dvc(proj, "config", "parsing.bool", "store_true")
    write(proj / "params.yaml", "opts:\n  fast: true\n  n: 2\n")
    write(proj / "dvc.yaml", "stages:\n  s:\n    cmd: echo ${opts} > o.txt\n    outs: [o.txt]\n")
    dvc(proj, "repro", "-q")
    assert dvc_status_rc(proj) == 0
    assert ours(repo) == (0, [])


# ---- 4: outputs are exact paths, never patterns ------------------------------------------------


def test_templated_output_claims_no_other_file_in_git(dvc_repo: Path) -> None:
    """Was: `data/notes_v1.md: data-in-git ... also a DVC output` with `git rm --cached` as the
    fix, for an output written `${root}/${item}_${suffix}`. Only the resolved outputs are
    outputs; one of them in git is still reported."""
    write(dvc_repo / "params.yaml", "root: data\nsuffix: v1\n")
    write(
        dvc_repo / "dvc.yaml",
        (
            "stages:\n  make:\n    foreach: [train, test]\n    do:\n"
            "      cmd: mkdir -p ${root} && echo ${item} > ${root}/${item}_${suffix}\n"
            '      outs: ["${root}/${item}_${suffix}"]\n'
        ),
    )
    dvc(dvc_repo, "repro", "-q")
    write(dvc_repo / "data/notes_v1.md", "# notes\n")
    git(dvc_repo, "add", "-A")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "pipeline and notes")
    assert "data/notes_v1.md" in git(dvc_repo, "ls-files")
    assert ours(dvc_repo) == (0, [])
    assert dvc_status_rc(dvc_repo) == 0
    git(dvc_repo, "add", "-f", "data/train_v1")
    code, findings = ours(dvc_repo)
    assert code == 1
    assert [(f["path"], f["rule"], f["message"]) for f in findings] == [
        (
            "data/train_v1",
            "data-in-git",
            "in git and also a DVC output (data/train_v1, dvc.yaml)",
        )
    ]


def test_generated_stages_recording_one_output_are_malformed(dvc_repo: Path) -> None:
    """Two generated stages with the same output: DVC refuses the project (`dvc repro`, `dvc dag`:
    "output 'same.txt' is specified in: make@b, make@a"); so do we."""
    write(
        dvc_repo / "dvc.yaml",
        (
            "stages:\n  make:\n    foreach: [a, b]\n    do:\n      cmd: echo ${item} > same.txt\n"
            "      outs: [same.txt]\n"
        ),
    )
    assert dvc(dvc_repo, "dag", check=False).returncode != 0
    code, findings = ours(dvc_repo)
    assert code == 1
    assert ("dvc.yaml", "malformed-dvc") in [(f["path"], f["rule"]) for f in findings]
    messages = [f["message"] for f in findings if f["rule"] == "malformed-dvc"]
    assert messages == ["output 'same.txt' is also recorded in dvc.yaml:make@a"]


# ---- what DVC refuses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("files", "named"),
    [
        pytest.param(
            {"dvc.yaml": "vars: [missing.yaml]\nstages:\n  s:\n    cmd: echo ${x}\n"},
            "missing.yaml",
            id="missing-vars-file",
        ),
        pytest.param(
            {"params.yaml": "x: [1\n", "dvc.yaml": "stages:\n  s:\n    cmd: echo ${x}\n"},
            "params.yaml",
            id="broken-params",
        ),
        pytest.param(
            {"dvc.yaml": "stages:\n  s:\n    cmd: echo ${nowhere}\n"},
            "nowhere",
            id="undefined-variable",
        ),
    ],
)
def test_what_dvc_refuses_is_malformed_in_one_line(
    dvc_repo: Path, files: dict[str, str], named: str
) -> None:
    for name, text in files.items():
        write(dvc_repo / name, text)
    assert dvc(dvc_repo, "status", check=False).returncode != 0  # DVC refuses it too
    code, findings = ours(dvc_repo)
    assert code == 1
    assert [(f["path"], f["rule"]) for f in findings] == [("dvc.yaml", "malformed-dvc")]
    assert named in findings[0]["message"]


def test_vars_file_through_a_symlink_out_of_the_repository_is_not_read(
    dvc_repo: Path, tmp_path: Path
) -> None:
    write(tmp_path / "secret.yaml", "x: 1\n")
    (dvc_repo / "vars.yaml").symlink_to(tmp_path / "secret.yaml")
    write(dvc_repo / "dvc.yaml", "vars: [vars.yaml]\nstages:\n  s:\n    cmd: echo ${x}\n")
    code, findings = ours(dvc_repo)
    assert code == 1
    assert findings[0]["path"] == "dvc.yaml" and findings[0]["rule"] == "malformed-dvc"
    assert "vars.yaml: a symlink leading outside the repository" in findings[0]["message"]


def test_plain_dvc_yaml_reads_no_vars_file(dvc_repo: Path) -> None:
    """A dvc.yaml that does not template costs nothing extra: its params.yaml is never read as
    vars (a FIFO there would block a reader; only the tracked params keys are read, by stat)."""
    write(dvc_repo / "in.txt", "1\n")
    dvc(dvc_repo, "stage", "add", "-q", "-n", "s", "-d", "in.txt", "-o", "o.txt", "cp in.txt o.txt")
    dvc(dvc_repo, "repro", "-q")
    os.mkfifo(dvc_repo / "params.yaml")
    assert cli_here(dvc_repo, "check-dvc").returncode == 0


# ---- commits: scan, run links ------------------------------------------------------------------


def test_scan_resolves_each_commit_with_its_own_vars_files(dvc_repo: Path) -> None:
    """A pushed dvc.yaml naming a vars file is checked against the same commit's tree: fine
    where the commit has it, malformed where it does not (DVC refuses that checkout)."""
    write(dvc_repo / "config.yaml", "items: [a]\nscale: 1\n")
    write(dvc_repo / "dvc.yaml", PIPELINE)
    git(dvc_repo, "add", "-A")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "good")
    assert cli_here(dvc_repo, "scan", "--range", "HEAD~1..HEAD").returncode == 0
    git(dvc_repo, "rm", "-q", "config.yaml")
    write(dvc_repo / "dvc.yaml", PIPELINE.replace("echo", "echo again"))
    git(dvc_repo, "add", "dvc.yaml")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "vars file gone")
    proc = cli_here(dvc_repo, "scan", "--range", "HEAD~1..HEAD")
    assert proc.returncode == 1, proc.stdout
    assert re.search(r"dvc\.yaml: .*config\.yaml", proc.stdout), proc.stdout


def test_run_links_resolve_an_interpolated_wdir(dvc_repo: Path) -> None:
    """dvc.lock paths are relative to each generated stage's own wdir, which may come from
    vars: the commit's recorded outputs and the working tree's are the real paths."""
    from repro_hooks.git import Git
    from repro_hooks.links.record import committed_outputs
    from repro_hooks.links.stamp import recorded_outputs

    write(dvc_repo / "params.yaml", "dirs: [left, right]\n")
    for d in ("left", "right"):
        write(dvc_repo / d / "in.txt", f"{d}\n")
    write(
        dvc_repo / "dvc.yaml",
        (
            "stages:\n  copy:\n    foreach: ${dirs}\n    do:\n      wdir: ${item}\n"
            "      cmd: cp in.txt out.txt\n      deps: [in.txt]\n      outs: [out.txt]\n"
        ),
    )
    dvc(dvc_repo, "repro", "-q")
    assert dvc_status_rc(dvc_repo) == 0 and ours(dvc_repo) == (0, [])
    git(dvc_repo, "add", "-A")
    git(dvc_repo, "commit", "-q", "--no-verify", "-m", "pipeline")
    outputs, problems = committed_outputs(Git.discover(dvc_repo), "HEAD")
    assert problems == []
    assert [o.path for o in outputs] == ["left/out.txt", "right/out.txt"]
    git_dir = str(dvc_repo / ".git")
    found = recorded_outputs(str(dvc_repo), git_dir, ["dvc.yaml", "dvc.lock"])
    assert sorted(found) == ["left/out.txt", "right/out.txt"]
    # the parse cache knows which vars file the paths came from: `copy@right` leaves dvc.yaml
    write(dvc_repo / "params.yaml", "dirs: [left]\n")
    found = recorded_outputs(str(dvc_repo), git_dir, ["dvc.yaml", "dvc.lock"])
    assert "left/out.txt" in found and "right/out.txt" not in found


def test_scan_reads_vars_files_in_batches(dvc_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The vars files of every pushed templated dvc.yaml come from a fixed number of git
    processes, whatever the number of commits (the real git, counted): 2 commits and 12 cost
    the same `git cat-file` calls."""
    from repro_hooks.git.process import GitProcess

    base = git(dvc_repo, "rev-parse", "HEAD").strip()
    tips = []
    for n in range(12):
        write(dvc_repo / "config.yaml", f"items: [a{n}]\nscale: {n}\n")
        write(dvc_repo / "dvc.yaml", PIPELINE.replace("echo", f"echo {n}"))
        git(dvc_repo, "add", "-A")
        git(dvc_repo, "commit", "-q", "--no-verify", "-m", f"step {n}")
        tips.append(git(dvc_repo, "rev-parse", "HEAD").strip())
    calls: list[tuple[str, ...]] = []
    run = GitProcess.run

    def counted(self: GitProcess, *args: str, **kwargs: object) -> bytes:
        calls.append(args)
        return run(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(GitProcess, "run", counted)
    counts = []
    for tip in (tips[1], tips[-1]):
        calls.clear()
        proc = cli_here(dvc_repo, "scan", "--range", f"{base}..{tip}")
        assert proc.returncode == 0, proc.stdout
        counts.append(len([c for c in calls if c and c[0] == "cat-file"]))
    assert counts[0] == counts[1], counts
