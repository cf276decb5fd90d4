"""The CI jobs users copy (docs/ci/), run as a CI runner runs them.

A pull request that sets its own policy (`exclude = ["**"]` in pyproject.toml) and adds a 2 MiB
`model.pt` and a `train.csv` turned the documented jobs green (here it also adds a hook of its
own that checks the base out again, so a gate running after the change's hooks scans nothing): the gating steps read the
change's own policy, and the step that reads the base's (`scan --range BASE..HEAD`) tolerated
its exit 1. Each template runs here on a clone holding the base and the change, as the CI
would: its `run:` / `script:` steps in order, with the CI's environment variables
(GITHUB_*, `${{ github.event.* }}` substituted from the event's payload; GitLab's CI_*), the
`pip install` steps replaced by this test's virtual environment, `if:` conditions and GitLab's
`after_script` / `artifacts: when:` as the runners apply them. The job must fail that change
and pass a clean one, and the SARIF report must be there for upload either way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import ROOT, big, git, install_local_hooks, write

pytestmark = pytest.mark.e2e
CI = ROOT / "docs" / "ci"
Z40 = "0" * 40
HOOKS = ["block-large-files", "require-dvc-files", "scan-pushed-commits"]
MOVE_HEAD = {
    "id": "innocent",
    "name": "innocent",
    "entry": "git checkout -q --detach origin/main",
    "language": "system",
    "always_run": True,
    "pass_filenames": False,
    "stages": ["pre-commit", "pre-push"],
}


@dataclass
class Job:
    """What a run of one job left: whether it passed, each step's output, the files the upload
    steps (or artifacts) found."""

    passed: bool = True
    log: list[str] = field(default_factory=list)
    uploaded: dict[str, bytes] = field(default_factory=dict)

    def text(self) -> str:
        return "\n".join(self.log)


def _shell(script: str, cwd: Path, env: dict[str, str], *shell: str) -> tuple[int, str]:
    proc = subprocess.run(
        [*shell, script], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + proc.stderr


def _is_pip_install(command: str) -> bool:
    return command.strip().startswith("pip install")


# ---- GitHub Actions ---------------------------------------------------------------------------

EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def _evaluate(expr: str, context: dict[str, str]) -> str:
    """`a || b || c` over context paths, as GitHub evaluates it for strings: the first
    non-empty one. A path this test does not know fails the test (update the payload)."""
    for name in (part.strip() for part in expr.split("||")):
        if name not in context:
            raise AssertionError(f"expression {name!r} not in this test's event payload")
        if context[name]:
            return context[name]
    return ""


def _substitute(text: str, context: dict[str, str]) -> str:
    return EXPRESSION.sub(lambda m: _evaluate(m.group(1), context), text)


def _runs(condition: Any, failed: bool) -> bool:
    """A step's `if:` as the runner applies it (no cancellation here)."""
    if condition is None:
        return not failed  # success()
    cond = EXPRESSION.sub(lambda m: m.group(1), str(condition)).strip()
    known = {
        "always()": True,
        "!cancelled()": True,
        "success() || failure()": True,
        "success()": not failed,
        "failure()": failed,
    }
    if cond not in known:
        raise AssertionError(f"if: {condition!r}: not understood by this test's runner")
    return known[cond]


def run_github(workflow: dict[str, Any], workspace: Path, context: dict[str, str]) -> Job:
    job_def = next(iter(workflow["jobs"].values()))
    env = {
        **os.environ,
        "CI": "true",
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_EVENT_NAME": context["github.event_name"],
        "GITHUB_SHA": context["github.sha"],
        "GITHUB_REF": context["github.ref"],
        "GITHUB_BASE_REF": context["github.base_ref"],
        "GITHUB_HEAD_REF": context["github.head_ref"],
        "RUNNER_TEMP": str(workspace.parent / "runner-temp"),
        **{k: _substitute(str(v), context) for k, v in workflow.get("env", {}).items()},
        **{k: _substitute(str(v), context) for k, v in job_def.get("env", {}).items()},
    }
    (workspace.parent / "runner-temp").mkdir(exist_ok=True)
    job = Job()
    for step in job_def["steps"]:
        if not _runs(step.get("if"), not job.passed):
            job.log.append(f"[skipped] {step.get('name') or step.get('run') or step['uses']}")
            continue
        uses = step.get("uses", "")
        if uses.startswith(("actions/checkout@", "actions/setup-python@")):
            continue  # done by the test: the clone, this interpreter
        if uses.startswith("github/codeql-action/upload-sarif@"):
            sarif = workspace / step["with"]["sarif_file"]
            assert sarif.is_file(), "upload-sarif would find no file"
            job.uploaded[step["with"]["sarif_file"]] = sarif.read_bytes()
            continue
        assert not uses, f"a step this runner does not know: {uses}"
        script = _substitute(step["run"], context)
        if _is_pip_install(script):
            continue  # this test's venv is first on the PATH
        step_env = {
            **env,
            **{k: _substitute(str(v), context) for k, v in step.get("env", {}).items()},
        }
        code, out = _shell(script, workspace, step_env, "bash", "-e", "-c")  # GitHub's default
        job.log.append(f"[{step.get('name', script)}] exit {code}\n{out}")
        if code != 0:
            job.passed = False
    return job


# ---- GitLab CI --------------------------------------------------------------------------------


def _expand(value: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: env.get(m.group(1) or m.group(2), ""), value)


def run_gitlab(config: dict[str, Any], workspace: Path, variables: dict[str, str]) -> Job:
    (job_def,) = [v for k, v in config.items() if isinstance(v, dict) and "script" in v]
    env = {**os.environ, "CI": "true", "GITLAB_CI": "true", "CI_PROJECT_DIR": str(workspace)}
    env.update(variables)
    for key, value in job_def.get("variables", {}).items():
        env[key] = _expand(str(value), env)
    job = Job()

    def script(lines: list[str]) -> str:
        return "\n".join(":" if _is_pip_install(line) else line for line in lines)

    # the runner: one shell per section, `set -eo pipefail`, the first failing command ends it
    for section in ("before_script", "script"):
        if section in job_def and job.passed:
            code, out = _shell(
                script(job_def[section]), workspace, env, "bash", "-e", "-o", "pipefail", "-c"
            )
            job.log.append(f"[{section}] exit {code}\n{out}")
            job.passed = code == 0
    if "after_script" in job_def:  # always runs; its exit code never changes the job's
        code, out = _shell(
            script(job_def["after_script"]), workspace, env, "bash", "-e", "-o", "pipefail", "-c"
        )
        job.log.append(f"[after_script] exit {code}\n{out}")
    artifacts = job_def.get("artifacts", {})
    when = artifacts.get("when", "on_success")
    if when == "always" or (when == "on_success") == job.passed:
        for name in artifacts.get("paths", []):
            if (workspace / name).is_file():
                job.uploaded[name] = (workspace / name).read_bytes()
    return job


# ---- the repositories: a base, a change, the clone the CI checks out --------------------------


def change(tmp_path: Path, bad: bool) -> tuple[Path, str, str]:
    """A server repository with `main` (the base) and `pr` (the change); returns the server,
    the base sha and the change's tip."""
    base = tmp_path / "author"
    git(tmp_path, "init", "-q", "-b", "main", str(base))
    install_local_hooks(base, HOOKS, ["pre-commit"])  # commits the config on main
    write(base / "pyproject.toml", "[project]\nname = 'demo'\n")
    write(base / "src/app.py", "print('hello')\n")
    git(base, "add", "-A")
    git(base, "commit", "-q", "--no-verify", "-m", "base")
    base_sha = git(base, "rev-parse", "HEAD").strip()
    git(base, "checkout", "-q", "-b", "pr")
    if bad:
        write(
            base / "pyproject.toml",
            "[project]\nname = 'demo'\n\n[tool.repro-hooks]\nexclude = [\"**\"]\n",
        )
        write(base / "model.pt", big(2 * 1024 * 1024))
        write(base / "train.csv", "a,b\n1,2\n")
        # and a hook of its own that moves HEAD back to the base: a gate that runs after the
        # change's hooks would scan nothing
        config = yaml.safe_load((base / ".pre-commit-config.yaml").read_text())
        config["repos"][0]["hooks"].append(MOVE_HEAD)
        write(base / ".pre-commit-config.yaml", yaml.safe_dump(config, sort_keys=False))
    else:
        write(base / "src/app.py", "print('hello, world')\n")
    git(base, "add", "-A")
    git(base, "commit", "-q", "--no-verify", "-m", "the change")
    tip = git(base, "rev-parse", "HEAD").strip()
    git(base, "checkout", "-q", "main")
    server = tmp_path / "server.git"
    git(tmp_path, "clone", "-q", "--bare", str(base), str(server))
    return server, base_sha, tip


def checkout(server: Path, dest: Path, sha: str, merge: str | None = None) -> Path:
    """What actions/checkout (fetch-depth: 0) or GitLab's GIT_DEPTH=0 leaves: a full clone at
    sha (detached); with merge, GitHub's refs/pull/N/merge (sha merged with the change)."""
    git(dest.parent, "clone", "-q", "--no-checkout", str(server), str(dest))
    git(dest, "checkout", "-q", "--detach", sha)
    if merge is not None:
        git(dest, "merge", "-q", "--no-ff", "--no-edit", "--no-verify", merge)
    return dest


EVENTS = [
    "github-pull_request",
    "github-push",
    "github-push-new-branch",
    "gitlab-merge_request",
    "gitlab-push",
    "gitlab-push-new-branch",
]


def run_template(event: str, tmp_path: Path, server: Path, base: str, tip: str) -> Job:
    ci, _, kind = event.partition("-")
    work = tmp_path / "ci" / "work"
    work.parent.mkdir()
    if ci == "github":
        merged = kind == "pull_request"
        checkout(server, work, base if merged else tip, merge=tip if merged else None)
        head = git(work, "rev-parse", "HEAD").strip()
        context = {
            "github.event_name": "pull_request" if merged else "push",
            "github.sha": head,
            "github.ref": "refs/pull/1/merge" if merged else "refs/heads/pr",
            "github.base_ref": "main" if merged else "",
            "github.head_ref": "pr" if merged else "",
            "github.event.pull_request.base.sha": base if merged else "",
            "github.event.before": "" if merged else Z40 if kind.endswith("new-branch") else base,
            "github.event.repository.default_branch": "main",
        }
        workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
        return run_github(workflow, work, context)
    checkout(server, work, tip)
    mr = kind == "merge_request"
    variables = {
        "CI_COMMIT_SHA": tip,
        "CI_COMMIT_REF_NAME": "pr",
        "CI_DEFAULT_BRANCH": "main",
        "CI_PIPELINE_SOURCE": "merge_request_event" if mr else "push",
        "CI_COMMIT_BEFORE_SHA": Z40 if mr or kind.endswith("new-branch") else base,
        **({"CI_MERGE_REQUEST_DIFF_BASE_SHA": base} if mr else {}),
    }
    return run_gitlab(yaml.safe_load((CI / "gitlab-ci.yml").read_text()), work, variables)


def sarif_paths(job: Job) -> set[str]:
    name = next(n for n in job.uploaded if n.endswith(".sarif"))
    doc = json.loads(job.uploaded[name])
    assert doc["version"] == "2.1.0"
    return {
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for run in doc["runs"]
        for result in run["results"]
        for loc in result["locations"]
    }


@pytest.mark.parametrize("event", EVENTS)
def test_ci_job_fails_a_change_that_sets_its_own_policy(event: str, tmp_path: Path) -> None:
    server, base, tip = change(tmp_path, bad=True)
    job = run_template(event, tmp_path, server, base, tip)
    assert not job.passed, job.text()
    assert {"model.pt", "train.csv"} <= sarif_paths(job), job.text()
    assert "Traceback" not in job.text()


@pytest.mark.parametrize("event", EVENTS)
def test_ci_job_passes_a_clean_change(event: str, tmp_path: Path) -> None:
    server, base, tip = change(tmp_path, bad=False)
    job = run_template(event, tmp_path, server, base, tip)
    assert job.passed, job.text()
    assert sarif_paths(job) == set(), job.text()
