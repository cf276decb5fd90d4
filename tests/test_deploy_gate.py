"""The deploy gate's pure core (deploy/gate.py) and its git evidence (deploy/evidence.py), with
no MLflow: plain data in, findings out; real git for the evidence, `repro-hooks scan` as oracle."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from repro_hooks.deploy.evidence import protected_branch, tree_policy_findings
from repro_hooks.deploy.gate import (
    CommitFacts,
    ModelRef,
    VersionFacts,
    data_findings,
    expected_data_tags,
    fix_hint,
    judge,
    parse_model_uri,
    valid_alias,
    valid_tag_key,
    verdict_tags,
)
from repro_hooks.errors import ReproHooksError
from repro_hooks.git import Git
from repro_hooks.history.review import scan_commits
from repro_hooks.links.record import RecordedOutput, dvc_tag_key
from repro_hooks.policy.config import Policy
from repro_hooks.report import Finding
from tests.helpers import big, commit, git, write

SHA = "a" * 40
OUTS = (
    RecordedOutput("data/x.csv", "1" * 32, "data/x.csv.dvc"),
    RecordedOutput("data/imgs", "2" * 32 + ".dir", "data/imgs.dvc"),
)


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        pytest.param("models:/iris/3", ModelRef("iris", version="3"), id="version"),
        pytest.param("models:/iris/003", ModelRef("iris", version="3"), id="leading-zeros"),
        pytest.param("models:/iris@champion", ModelRef("iris", alias="champion"), id="alias"),
        pytest.param("models:/my model@a-b_1", ModelRef("my model", alias="a-b_1"), id="spaces"),
    ],
)
def test_parse_model_uri(text: str, ref: ModelRef) -> None:
    assert parse_model_uri(text) == ref


@pytest.mark.parametrize(
    "text",
    [
        "runs:/abc/model",
        "models:/iris",
        "models:/iris/0",
        "models:/iris/",
        "models:/@x",
        "models:/a/b/1",
        "models:/iris@",
        "models:/iris@bad alias",
        "models:/iris/Staging",
        "iris",
    ],
)
def test_parse_model_uri_rejects(text: str) -> None:
    with pytest.raises(ReproHooksError, match=r"^" + text.replace("/", "/")[:6]):
        parse_model_uri(text)


def test_aliases_and_tag_keys() -> None:
    assert valid_alias("champion") and valid_alias("staging-2")
    assert not valid_alias("latest") and not valid_alias("v3") and not valid_alias("a b")
    assert valid_tag_key("pre_deploy_checks") and valid_tag_key("deploy/gate.v1")
    assert not valid_tag_key("a..b") and not valid_tag_key("/a") and not valid_tag_key("a:b")


STAMP_TAGS = {
    "repro_hooks.clone": "c" * 32,
    "repro_hooks.stamp": "5" * 32,
    "repro_hooks.head": SHA,
    "repro_hooks.evidence": "tree",
}


def facts(tags: dict[str, str] | None = None, state: str = "active") -> VersionFacts:
    base = {
        "git.commit": SHA,
        "git.branch": "main",
        "git.repo_url": "https://h/r.git",
        "repro_hooks.link": "stamp",
        **STAMP_TAGS,
        **expected_data_tags(OUTS),
    }
    return VersionFacts("iris", "3", "r1", state, base if tags is None else tags)


def commit_ok(**kw: object) -> CommitFacts:
    args: dict[str, object] = {
        "present": True,
        "on_branch": True,
        "branch": "origin/main",
        "outputs": OUTS,
    }
    args.update(kw)
    return CommitFacts(SHA, **args)  # type: ignore[arg-type]


def test_judge_passes_and_each_rule_fails_alone() -> None:
    assert judge(facts(), commit_ok()).passed
    cases = {
        "run-missing": judge(facts(state="deleted"), None),
        "run-unlinked": judge(facts({}), None),
        "commit-missing": judge(facts(), CommitFacts(SHA, present=False, branch="origin/main")),
        "commit-unprotected": judge(facts(), commit_ok(on_branch=False)),
        "data-mismatch": judge(facts(), commit_ok(outputs=OUTS[:1])),
        "dvc-not-pushed": judge(
            facts(), commit_ok(remote_findings=(Finding("d", "dvc-not-pushed", "m", SHA),))
        ),
        "large-file": judge(facts(), commit_ok(policy_findings=(Finding("f", "large-file", "m"),))),
    }
    for rule, verdict in cases.items():
        assert {f.rule for f in verdict.findings} == {rule}, rule
        assert not verdict.passed
        assert verdict.reason.startswith(rule + (" (2): " if rule == "data-mismatch" else ": "))
    assert judge(VersionFacts("iris", "3", None, "none"), None).findings[0].message == (
        "registered without a run: nothing to reproduce"
    )
    bad_sha = judge(facts({"git.commit": "HEAD"}), None)
    assert bad_sha.findings[0].message == "run r1: git.commit 'HEAD' is no sha"


@pytest.mark.parametrize(
    ("evidence", "message"),
    [
        pytest.param(
            {
                "repro_hooks.link": "forced",
                "repro_hooks.link.forced_by": "Ann <a@x>",
                "repro_hooks.link.forced_reason": "params.yaml: changed",
            },
            "run r1's link was forced by Ann <a@x> against the evidence rules "
            "(params.yaml: changed)",
            id="forced",
        ),
        pytest.param(
            {"repro_hooks.link": "run-id"},
            "run r1 was linked by an older `tag-mlflow --run-id` that checked no evidence",
            id="old-run-id",
        ),
        pytest.param(
            {},
            "run r1's link was not made by tag-mlflow (no repro_hooks.link tag: written by hand?)",
            id="by-hand",
        ),
    ],
)
def test_unverified_links_fail_unless_allowed(evidence: dict[str, str], message: str) -> None:
    tags = {k: v for k, v in facts().run_tags.items() if k != "repro_hooks.link"}
    verdict = judge(facts({**tags, **evidence}), commit_ok())
    assert [(f.rule, f.message) for f in verdict.findings] == [("link-unverified", message)]
    assert "--allow-forced" in fix_hint([verdict], "origin/main")
    assert judge(facts({**tags, **evidence}), commit_ok(), allow_forced=True).passed
    # the other checks still run on such a link
    other = judge(facts({**tags, **evidence}), commit_ok(on_branch=False))
    assert {f.rule for f in other.findings} == {"link-unverified", "commit-unprotected"}


def test_run_unlinked_hint_suggests_no_unchecked_link() -> None:
    hint = fix_hint([judge(facts({}), None)], "origin/main")
    assert "--sync" not in hint
    assert "tag-mlflow --run-id <id>` links a run to HEAD only if HEAD records" in hint


def test_data_findings_both_ways() -> None:
    tags = dict(facts().run_tags)
    tags[dvc_tag_key("data/x.csv")] = "9" * 32
    del tags[dvc_tag_key("data/imgs")]
    tags["dvc.other"] = "o"
    found = [f.message for f in data_findings(facts(tags), commit_ok())]
    assert found == [
        f"data/imgs: the run has no dvc.data/imgs tag (commit records {'2' * 32}.dir)",
        f"data/x.csv: the run has {'9' * 32}, commit aaaaaaaaaaaa records {'1' * 32}",
        "dvc.other: on the run (o), not recorded by commit aaaaaaaaaaaa",
    ]
    # a commit with no DVC outputs and a run with no dvc.* tags agree
    plain = {"git.commit": SHA}
    assert data_findings(facts(plain), commit_ok(outputs=())) == []


def test_verdict_tags_and_reason() -> None:
    passed = judge(facts(), commit_ok())
    tags = verdict_tags(passed, "gate")
    assert tags == {
        "gate": "PASSED",
        "gate.reason": "all checks passed at commit aaaaaaaaaaaa",
        "git.commit": SHA,
        "git.branch": "main",
        "git.repo_url": "https://h/r.git",
        "dvc.fingerprint": facts().run_tags["dvc.fingerprint"],
    }
    many = tuple(Finding(f"p{i:04d}", "large-file", "x" * 50) for i in range(40))
    failed = judge(facts(), commit_ok(policy_findings=many))
    assert verdict_tags(failed)["pre_deploy_checks"] == "FAILED"
    assert failed.reason.startswith("large-file (40): p0000: ")
    assert len(failed.reason) <= 500
    deleted = verdict_tags(judge(facts(state="deleted"), None))
    assert set(deleted) == {"pre_deploy_checks", "pre_deploy_checks.reason"}


# ---- evidence: real git -------------------------------------------------------------------------


def test_protected_branch(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(ReproHooksError, match="no git remote"):
        protected_branch(Git.discover(repo), None)
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "trunk", str(bare))
    git(repo, "remote", "add", "upstream", str(bare))
    git(repo, "push", "-q", "upstream", "main:trunk")
    with pytest.raises(ReproHooksError, match="remote 'upstream': no default branch fetched"):
        protected_branch(Git.discover(repo), None)
    git(repo, "remote", "set-head", "upstream", "--auto")
    tip = git(repo, "rev-parse", "HEAD").strip()
    assert protected_branch(Git.discover(repo), None) == ("upstream/trunk", tip)
    assert protected_branch(Git.discover(repo), "main") == ("main", tip)
    with pytest.raises(ReproHooksError, match="--branch"):
        protected_branch(Git.discover(repo), "--output=x")


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"big.bin": big(600 * 1024), "ok.txt": b"x"}, id="large-file"),
        pytest.param({"model.pkl": b"\x80\x04", "data/t.csv": b"a,b\n"}, id="data-in-git"),
        pytest.param({"x.dvc": b"outs: [nope\n"}, id="malformed-dvc"),
        pytest.param(
            {
                "a.dvc": b"outs:\n- md5: " + b"1" * 32 + b"\n  path: d\n",
                "b.dvc": b"outs:\n- md5: " + b"2" * 32 + b"\n  path: d\n",
            },
            id="duplicate-output",
        ),
        pytest.param(
            {
                "s/dvc.yaml": b"stages:\n  t:\n    cmd: x\n    wdir: ..\n    outs: [o.txt]\n",
                "s/dvc.lock": b"schema: '2.0'\nstages:\n  t:\n    cmd: x\n    outs:\n"
                b"    - path: o.txt\n      md5: " + b"3" * 32 + b"\n      size: 1\n",
            },
            id="dvc-lock-wdir",
        ),
        pytest.param(
            {
                "dvc.yaml": b"stages:\n  evaluate:\n    cmd: x\n"
                b"    plots:\n    - plots/errors.csv:\n        cache: false\n",
                "plots/errors.csv": b"epoch,error\n1,0.5\n",
            },
            id="cache-false-plot-in-git",
        ),
        pytest.param({"clean.txt": b"nothing to see"}, id="clean"),
    ],
)
def test_tree_policy_equals_scan_of_a_root_commit(
    empty_repo: Path, files: dict[str, bytes]
) -> None:
    """A root commit introduces its whole tree: `scan` over it is the oracle for the tree check."""
    for path, data in files.items():
        write(empty_repo / path, data)
    assert commit(empty_repo, "root").returncode == 0
    g = Git.discover(empty_repo)
    sha = git(empty_repo, "rev-parse", "HEAD").strip()
    ours = sorted(set(tree_policy_findings(g, Policy(), sha, g.tree(sha, commit=sha))))
    oracle, _ = scan_commits(g, Policy(), [sha])
    oracle = [replace(f, ref=None) for f in oracle]  # a scan names the ref; a tree has none
    assert ours == sorted(set(oracle))
    if "plots/errors.csv" in files:  # a stage's cache: false plot lives in git by design
        assert ours == []
    # and on a later commit that changes nothing relevant, the tree check still sees it all
    write(empty_repo / "later.txt", "later")
    assert commit(empty_repo, "later").returncode == 0
    later = git(empty_repo, "rev-parse", "HEAD").strip()
    again = tree_policy_findings(g, Policy(), later, g.tree(later, commit=later))
    assert sorted((f.path, f.rule) for f in set(again)) == sorted((f.path, f.rule) for f in ours)


def test_protected_branch_never_takes_a_plain_head_ref(repo: Path, tmp_path: Path) -> None:
    bare = tmp_path / "r.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "push", "-q", "origin", "main", "main:master")
    git(repo, "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
    tip = git(repo, "rev-parse", "HEAD").strip()
    g = Git.discover(repo)
    with pytest.raises(ReproHooksError, match="both main and master and no default branch"):
        protected_branch(g, None)
    assert protected_branch(g, None, "main") == ("origin/main", tip)
    assert protected_branch(g, None, "origin/master") == ("origin/master", tip)
    git(repo, "update-ref", "refs/remotes/origin/HEAD", tip)  # a pushed branch named HEAD
    with pytest.raises(ReproHooksError, match="origin/HEAD is a plain ref"):
        protected_branch(g, None)
    git(repo, "update-ref", "-d", "refs/remotes/origin/HEAD")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/master")
    assert protected_branch(g, None) == ("origin/master", tip)
    git(repo, "update-ref", "-d", "refs/remotes/origin/master")
    git(repo, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")
    assert protected_branch(g, None) == ("origin/main", tip)


def test_evidence_levels_and_stamp_checks() -> None:
    from repro_hooks.deploy.gate import StampFacts, evidence_level

    assert evidence_level(facts()) == "stamped"
    levels = {
        "stage": "stamped",
        "mlflow-source": "unstamped",
        "forced": "forced",
        "run-id": "by-hand",
        "auto": "by-hand",
    }
    for kind, level in levels.items():
        assert evidence_level(facts({**facts().run_tags, "repro_hooks.link": kind})) == level
    ok = StampFacts(head="ancestor", holders=("r1",))
    assert judge(facts(), commit_ok(), stamp=ok).passed
    assert judge(facts(), commit_ok(), stamp=ok).level == "stamped"
    cases = {
        "missing": "the stamp's HEAD aaaaaaaaaaaa is not in this repository",
        "unrelated": "is not in the history of commit aaaaaaaaaaaa",
    }
    for head_state, message in cases.items():
        verdict = judge(facts(), commit_ok(), stamp=StampFacts(head=head_state))
        assert [f.rule for f in verdict.findings] == ["stamp-invalid"]
        assert message in verdict.findings[0].message
    shared = judge(facts(), commit_ok(), stamp=StampFacts(head="ancestor", holders=("r1", "r9")))
    assert [f.rule for f in shared.findings] == ["stamp-shared"]
    assert "also carried by run(s) r9" in shared.findings[0].message
    # --allow-forced never skips a stamped link's stamp checks
    forced = judge(facts(), commit_ok(), allow_forced=True, stamp=StampFacts(head="missing"))
    assert [f.rule for f in forced.findings] == ["stamp-invalid"]
    unstamped = {k: v for k, v in facts().run_tags.items() if not k.startswith("repro_hooks.")}
    source_link = facts({**unstamped, "repro_hooks.link": "mlflow-source"})
    accepted = judge(source_link, commit_ok(), allow_forced=True)
    assert accepted.passed and accepted.level == "unstamped"
    assert accepted.reason == (
        "all checks passed at commit aaaaaaaaaaaa; unstamped link (MLflow's own tags only), "
        "accepted by --allow-forced"
    )


def test_push_false_fails_unless_allowed_and_is_then_reported() -> None:
    unpushed = (Finding("data/p.txt", "dvc-push-false", "push: false in data/p.txt.dvc: …", SHA),)
    failed = judge(facts(), commit_ok(unpushed=unpushed))
    assert [f.rule for f in failed.findings] == ["dvc-push-false"]
    assert "allow-push-false = true" in fix_hint([failed], "origin/main")
    allowed = judge(facts(), commit_ok(unpushed=unpushed, allow_push_false=True))
    assert allowed.passed
    assert allowed.notes == ("data/p.txt: push: false in data/p.txt.dvc: … (allowed by policy)",)
