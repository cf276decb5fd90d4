"""Every policy rule, declared once: its id, what it means, how bad it is, where it is checked
and how to fix it. The checks, the fix hints, `report.py` (SARIF rule metadata) and the rule
table in docs/commands.md all read this registry; a new rule is one entry here plus its check.

Pure data, standard library only. Building it takes about a millisecond, so the commit-stage
hooks import it only when they have findings to describe.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where a rule is checked.
COMMIT = "commit"  # the commit stage: the index and the working tree (check-large-files, check-dvc)
HISTORY = "history"  # commits already made: pre-push, `scan` in CI, a server's pre-receive
DEPLOY = "deploy"  # the deploy gate: a model version, its run and its commit (check-model)
STAGES = (COMMIT, HISTORY, DEPLOY)

# SARIF 2.1.0 levels (`reportingDescriptor.defaultConfiguration.level`).
SEVERITIES = ("error", "warning", "note")


@dataclass(frozen=True)
class Rule:
    id: str
    summary: str  # one sentence: what the rule finds (SARIF shortDescription, the docs' table)
    stages: tuple[str, ...]  # where it is checked, in STAGES order
    severity: str = "error"  # every rule blocks today
    fix: str = ""  # how to fix it, one line (SARIF help; the commit stage's hint)
    history_fix: str = ""  # how to fix it in commits already made (history scans' hint)
    title: str = ""  # a short name, for hints that list fixes by kind ("missing output")


_IN_COMMITS = (
    "Remove the files from those commits (git rebase -i <base>, or git commit --amend), "
    "track them with DVC (dvc add <path>), then push again."
)

ALL: tuple[Rule, ...] = (
    Rule(
        "large-file",
        "A file larger than the size limit is stored in git.",
        (COMMIT, HISTORY, DEPLOY),
        history_fix=_IN_COMMITS,
    ),
    Rule(
        "lfs-pointer",
        "A path under a filter=lfs attribute is stored raw instead of as an LFS pointer.",
        (COMMIT, HISTORY, DEPLOY),
        fix="Install git-lfs (git lfs install), then `git add` those files again.",
        history_fix=_IN_COMMITS,
    ),
    Rule(
        "data-in-git",
        "A data or model file is stored in git instead of DVC.",
        (COMMIT, HISTORY, DEPLOY),
        fix="git rm --cached <path>; dvc add <path>; git add <path>.dvc .gitignore (not data? "
        "add a glob to data-exclude in [tool.repro-hooks])",
        history_fix=_IN_COMMITS,
        title="data in git",
    ),
    Rule(
        "stale-dvc",
        "A .dvc file's recorded hash differs from the data in the working tree.",
        (COMMIT,),
        fix="dvc commit <file>.dvc (keep the new data) or dvc checkout (restore it); "
        "git add <file>.dvc",
        title="changed data",
    ),
    Rule(
        "missing-output",
        "A DVC output is missing from the working tree.",
        (COMMIT,),
        fix="dvc checkout / dvc pull (or dvc repro)",
        title="missing output",
    ),
    Rule(
        "stale-lock",
        "A dvc.lock stage differs from the working tree, params or command.",
        (COMMIT,),
        fix="dvc repro (or dvc commit if outputs are right); git add dvc.lock",
        title="stale pipeline",
    ),
    Rule(
        "not-ignored",
        "A cached DVC output is not ignored by git.",
        (COMMIT,),
        fix="add /<name> to the .gitignore beside the output (dvc add does this)",
        title="not ignored",
    ),
    Rule(
        "large-message",
        "A commit or tag message is larger than the message limit.",
        (HISTORY,),
        history_fix="Shorten those messages (git commit --amend, git rebase -i <base> with "
        "reword; a tag: git tag -f -a <name> with a short message), then push again.",
    ),
    Rule(
        "malformed-dvc",
        "A .dvc, dvc.yaml or dvc.lock file is malformed or unsafe.",
        (COMMIT, HISTORY, DEPLOY),
        fix="fix the DVC file (paths inside the repository, valid YAML)",
        history_fix="Fix the DVC files in those commits (dvc add / dvc repro rewrites them).",
        title="malformed",
    ),
    Rule(
        "dvc-not-pushed",
        "A DVC object referenced by pushed commits is missing from its remote.",
        (HISTORY, DEPLOY),
    ),
    Rule(
        "uncommitted-output",
        "A cache: false DVC output (kept by git) is not in the commit recording it.",
        (HISTORY, DEPLOY),
    ),
    Rule(
        "dvc-push-false",
        "A DVC output marked push: false: its data is in no DVC remote.",
        (DEPLOY,),
    ),
    Rule(
        "ref-name",
        "A pushed ref name that misleads other tools (a branch named HEAD).",
        (HISTORY,),
    ),
    Rule(
        "total-size",
        "The files of one commit together exceed the total-size limit (bulk data).",
        (COMMIT, HISTORY),
        fix="Track bulk data with DVC instead: git rm -r --cached <dir>, dvc add <dir>, then "
        "git add <dir>.dvc. A deliberate exception: raise max-commit-total in [tool.repro-hooks].",
    ),
    Rule(
        "run-missing",
        "The model version's run is deleted or gone from the tracking store.",
        (DEPLOY,),
    ),
    Rule(
        "run-unlinked",
        "The model version's run is linked to no commit (no git.commit tag).",
        (DEPLOY,),
    ),
    Rule(
        "link-unverified",
        "The run's link was forced or written by hand, not made by the rules.",
        (DEPLOY,),
    ),
    Rule(
        "commit-missing",
        "The commit the run is linked to is not in this repository.",
        (DEPLOY,),
    ),
    Rule(
        "commit-unprotected",
        "The commit the run is linked to is not on the protected branch.",
        (DEPLOY,),
    ),
    Rule(
        "data-mismatch",
        "The run's DVC hashes differ from what its commit records.",
        (DEPLOY,),
    ),
    Rule(
        "model-source",
        "The model version serves files that are not its run's own artifacts.",
        (DEPLOY,),
    ),
    Rule(
        "model-bytes",
        "A file the model version serves differs from what its run recorded.",
        (DEPLOY,),
    ),
    Rule(
        "attestation-missing",
        "The protected branch requires a signed statement the run lacks.",
        (DEPLOY,),
    ),
    Rule(
        "attestation-invalid",
        "The run's signed statement does not verify or disagrees with it.",
        (DEPLOY,),
    ),
    Rule(
        "stamp-invalid",
        "The run's stamp is missing, malformed or does not fit the linked commit.",
        (DEPLOY,),
    ),
    Rule(
        "stamp-shared",
        "Several runs carry the same stamp: it was copied, so none proves the link.",
        (DEPLOY,),
    ),
)

RULES: dict[str, Rule] = {r.id: r for r in ALL}


def rule(rule_id: str) -> Rule:
    """The rule with this id; KeyError for an id no rule has."""
    return RULES[rule_id]


def fixes(rule_ids: set[str] | frozenset[str], *, history: bool = False) -> list[str]:
    """The fix lines of these rules (`history`: for commits already made), in registry order,
    each once (rules that share a line print it once)."""
    lines = (r.history_fix if history else r.fix for r in ALL if r.id in rule_ids)
    return list(dict.fromkeys(line for line in lines if line))
