"""check-model checks the BYTES a version serves, and attested mode, against
real components: a real `mlflow server` with its registry and artifact store, a stamped training
process (the real run-context plugin), the post-commit link delivery signing with a key made by
ssh-keygen, a bare git remote and a DVC remote (the check_model tests' world)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from repro_hooks.deploy.artifacts import (
    FileDigest,
    Served,
    artifact_path,
    compact_digests,
    digest_file,
)
from repro_hooks.deploy.attest import SIGNATURE_PATH, STATEMENT_PATH
from repro_hooks.deploy.gate import (
    ATTESTED,
    ByteFacts,
    ServedFile,
    Verdict,
    VersionFacts,
    bytes_findings,
    evidence_tags,
    judge_bytes,
)
from repro_hooks.links.record import RecordedOutput
from repro_hooks.links.stamp import ARTIFACTS_KEY, load_record
from repro_hooks.report import Finding
from repro_hooks.tracking.mlflow import MlflowTracker
from tests import test_check_model as gate_world
from tests.helpers import cli_here, commit, git, install_local_hooks, write
from tests.mlflow_fixtures import MLFLOW_WARNINGS, MlflowServer
from tests.stamp_helpers import train_env
from tests.test_check_model import World, client

pytestmark = MLFLOW_WARNINGS

# the check-model tests' world: a dev repository, its bare remote, a DVC remote, a CI clone
world_template = gate_world.world_template
world = gate_world.world

# ---- the pure check --------------------------------------------------------------------------

RUN = "r1"
SHA = "a" * 40


def _facts() -> VersionFacts:
    return VersionFacts("iris", "3", RUN, "active", {"git.commit": SHA}, f"runs:/{RUN}/weights")


def _served(**names: str) -> tuple[ServedFile, ...]:
    return tuple(ServedFile(f"runs:/{RUN}/weights/{n}", d, "0" * 32) for n, d in names.items())


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        pytest.param(
            ByteFacts("s3://b/m", refused="source s3://b/m: not an artifact of run r1"),
            [("model-source", "source s3://b/m: not an artifact of run r1")],
            id="source",
        ),
        pytest.param(
            ByteFacts("runs:/r1/weights", prefix="runs:/r1/weights", served=_served(w="1" * 64)),
            [
                (
                    "model-bytes",
                    "run r1 recorded no digests of its files: the bytes served cannot be checked",
                )
            ],
            id="nothing-recorded",
        ),
        pytest.param(
            ByteFacts(
                "runs:/r1/weights",
                prefix="runs:/r1/weights",
                served=_served(w="1" * 64),
                recorded={
                    "runs:/r1/weights/w": "2" * 64,
                    "runs:/r1/weights/v": "3" * 64,
                    "runs:/r1/other": "4" * 64,
                },
            ),
            [
                ("model-bytes", "runs:/r1/weights/v: recorded by run r1, missing from the version"),
                (
                    "model-bytes",
                    f"runs:/r1/weights/w: the version serves sha256 {'1' * 64}, "
                    f"run r1 recorded {'2' * 64}",
                ),
            ],
            id="differs-and-missing",
        ),
        pytest.param(
            ByteFacts(
                "runs:/r1/weights",
                prefix="runs:/r1/weights",
                served=_served(w="1" * 64),
                recorded={},
                required=True,
                attestation="unsigned",
                level="recorded",
            ),
            [
                (
                    "attestation-missing",
                    "run r1 has an unsigned statement of its files; the "
                    "protected branch requires a signed one",
                ),
                (
                    "model-bytes",
                    f"runs:/r1/weights/w: served by the version (sha256 {'1' * 64}), "
                    "not a file run r1 recorded",
                ),
            ],
            id="unsigned-required",
        ),
        pytest.param(
            ByteFacts(
                "runs:/r1/weights",
                prefix="runs:/r1/weights",
                served=_served(w="1" * 64),
                attestation="invalid",
                problems=("x.sig: signed by a key that is not in b",),
            ),
            [("attestation-invalid", "x.sig: signed by a key that is not in b")],
            id="bad-signature-alone",
        ),
        pytest.param(
            ByteFacts(
                "runs:/r1/weights",
                prefix="runs:/r1/weights",
                served=_served(w="1" * 64),
                recorded={"runs:/r1/weights/w": "1" * 64},
                level=ATTESTED,
                signer="a@x",
            ),
            [],
            id="passes",
        ),
    ],
)
def test_bytes_findings(found: ByteFacts, expected: list[tuple[str, str]]) -> None:
    got = sorted((f.rule, f.message) for f in bytes_findings(_facts(), found))
    assert got == expected
    assert all(f.path == "models:/iris/3" for f in bytes_findings(_facts(), found))


def test_a_served_dvc_output_is_checked_against_the_commit(tmp_path: Path) -> None:
    import hashlib

    digest = digest_file(write(tmp_path / "model.pkl", b"weights"))
    assert digest == FileDigest(
        hashlib.sha256(b"weights").hexdigest(), hashlib.md5(b"weights").hexdigest(), 7
    )
    name = f"runs:/{RUN}/models/model.pkl"
    assert artifact_path(name) == "models/model.pkl"
    found = ByteFacts(
        "runs:/r1/models",
        prefix="runs:/r1/models",
        served=(ServedFile(name, digest.sha256, digest.md5),),
        recorded={name: digest.sha256},
    )
    good = RecordedOutput("models/model.pkl", digest.md5, "dvc.lock")
    assert bytes_findings(_facts(), found, [good]) == []
    bad = RecordedOutput("models/model.pkl", "f" * 32, "dvc.lock")
    (finding,) = bytes_findings(_facts(), found, [bad])
    assert finding.rule == "model-bytes"
    assert finding.message == (
        f"{name}: the version serves md5 {digest.md5}, dvc.lock records {'f' * 32} for the DVC "
        "output models/model.pkl"
    )
    # a directory output (.dir) is compared through its files' sha256 only
    assert bytes_findings(_facts(), found, [RecordedOutput("models", "1" * 32 + ".dir", "x")]) == []


def test_a_copied_stamp_fails_the_real_run_unless_its_statement_is_attested() -> None:
    """Without a signature the gate cannot tell the real run from a copy of its stamp and fails
    both; a trusted signature names the run, so the copy is only reported."""
    shared = Finding(
        "models:/iris/3",
        "stamp-shared",
        f"run {RUN}'s stamp s1 is also carried by run(s) r9: a copied stamp proves no link",
    )
    verdict = Verdict(_facts(), (shared,), level="stamped")
    files = _served(**{"model.pkl": "a" * 64})
    recorded = {f.name: f.sha256 for f in files}
    prefix = f"runs:/{RUN}/weights"
    unsigned = ByteFacts(prefix, prefix=prefix, served=files, recorded=recorded, level="recorded")
    assert [f.rule for f in judge_bytes(verdict, unsigned).findings] == ["stamp-shared"]
    signed = ByteFacts(
        prefix,
        prefix=prefix,
        served=files,
        recorded=recorded,
        level=ATTESTED,
        signer="ann@example.com",
        attestation="valid",
    )
    judged = judge_bytes(verdict, signed)
    assert judged.passed, judged.findings
    assert judged.notes == (
        f"run {RUN}'s stamp s1 is also carried by run(s) r9: the signed statement names this run",
    )


def test_evidence_tags_are_compact() -> None:
    many = tuple(ServedFile(f"runs:/r/w/f{i:05d}", f"{i:064x}", "") for i in range(2000))
    found = ByteFacts("runs:/r/w", served=many, level=ATTESTED, signer="ann@example.com")
    tags = evidence_tags("stamped", found, "gate")
    assert tags["gate.evidence"] == "stamped" and tags["gate.bytes"] == "attested"
    assert tags["gate.signer"] == "ann@example.com"
    assert len(tags["gate.digests"]) <= 5000
    assert tags["gate.digests"].startswith(f"w/f00000={0:016x};w/f00001=")
    assert tags["gate.digests"].endswith("more")
    assert compact_digests({"models:/m-1/MLmodel": "ab" * 32}) == f"MLmodel={'ab' * 8}"
    assert Served("model", "m-1", "", "x").prefix == "models:/m-1"
    assert Served("run", "r", "w", "x").prefix == "runs:/r/w"


# ---- the link side, against the session's real server ---------------------------------------


def test_an_unreadable_signing_key_leaves_the_statement_unsigned(
    repo: Path, mlflow_server: MlflowServer
) -> None:
    from repro_hooks.deploy.attest import publish_statement
    from repro_hooks.git import Git

    uri = mlflow_server.url
    c = client(uri)
    # not the Default experiment: the template database put its artifacts under the cwd
    run_id = c.create_run(c.create_experiment(f"unsigned-{time.monotonic_ns()}")).info.run_id
    write(repo / "pyproject.toml", '[tool.repro-hooks.attest]\nsigning-key = "/no/such/key"\n')
    files = {ARTIFACTS_KEY: {"run": run_id, "files": {f"runs:/{run_id}/m": "1" * 64}}}
    tags = {"git.commit": "a" * 40, "repro_hooks.link": "stamp"}
    note = publish_statement(
        MlflowTracker.of(c), Git.discover(repo), run_id, tags, {}, [], files, uri
    )
    assert note == (
        "; 1 file digest(s) recorded (statement unsigned); the statement is unsigned: "
        "/no/such/key: signing key not readable"
    )
    assert c.get_run(run_id).data.tags["repro_hooks.attestation"] == STATEMENT_PATH
    sizes = {x.path: x.file_size for x in c.list_artifacts(run_id, "repro_hooks")}
    assert sizes[SIGNATURE_PATH] == 0 and sizes[STATEMENT_PATH] > 0
    # no record of this run's files (another run's record, or none): nothing is written
    other = {ARTIFACTS_KEY: {"run": "someone-else", "files": {}}}
    assert (
        publish_statement(MlflowTracker.of(c), Git.discover(repo), run_id, tags, {}, [], other, uri)
        == ""
    )
    assert (
        publish_statement(MlflowTracker.of(c), Git.discover(repo), run_id, tags, {}, [], None, uri)
        == ""
    )


def test_a_stamp_on_two_runs_names_neither(mlflow_server: MlflowServer) -> None:
    from repro_hooks.links.stamp import STAMP_TAG, runs_of_stamps

    c = client(mlflow_server.url)
    experiment = c.create_experiment(f"stamps-{time.monotonic_ns()}")
    mine = c.create_run(experiment, tags={STAMP_TAG: "ab" * 16}).info.run_id
    c.create_run(experiment, tags={STAMP_TAG: "cd" * 16})
    c.create_run(experiment, tags={STAMP_TAG: "cd" * 16})  # a copied stamp
    stamps = ["ab" * 16, "cd" * 16, "ef" * 16]
    assert runs_of_stamps(MlflowTracker.of(c), stamps, [mine]) == {"ab" * 16: mine}
    assert runs_of_stamps(MlflowTracker.of(c), stamps, []) == {
        "ab" * 16: mine
    }  # found by the search


# ---- end to end ------------------------------------------------------------------------------

TRAIN = """\
import mlflow, mlflow.pyfunc, pathlib
data = pathlib.Path("data/train.txt").read_bytes()

class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input

with mlflow.start_run() as run:
    pathlib.Path("out").mkdir(exist_ok=True)
    pathlib.Path("out/weights.bin").write_bytes(b"weights of " + data)
    pathlib.Path("out/vocab.txt").write_text("a b c")
    mlflow.log_artifacts("out", "weights")
    info = mlflow.pyfunc.log_model(name="model", python_model=Echo(), pip_requirements=["mlflow"])
print(info.model_id)
print(run.info.run_id)
"""


def make_key(path: Path, comment: str) -> str:
    """An ed25519 key pair at path (no passphrase): its public line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return Path(f"{path}.pub").read_text().strip()


def signers_line(principal: str, public: str) -> str:
    kind, key = public.split()[:2]
    return f'{principal} namespaces="repro-hooks" {kind} {key}\n'


def train(repo: Path, uri: str, plugin: Path) -> tuple[str, str]:
    """Run the committed train.py in a stamped training process: (logged model id, run id)."""
    out = subprocess.run(
        [sys.executable, "train.py"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        env=train_env(uri, plugin),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    model_id, run_id = out.stdout.strip().splitlines()[-2:]
    return model_id, run_id


@dataclass
class Attested:
    """The world with attested mode on main, a stamped run linked and signed at commit time,
    two versions registered from it (its weights directory and its logged model)."""

    world: World
    key: Path
    run_id: str
    model_id: str
    name: str
    weights: str  # version from runs:/<run>/weights
    logged: str  # version from models:/<model id>

    @property
    def uri(self) -> str:
        return self.world.uri

    def check(self, version: str, *args: str) -> tuple[int, str, str]:
        return self.world.check(f"models:/{self.name}/{version}", *args)


@pytest.fixture
def attested(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stamp_plugin: Path
) -> Attested:
    dev = world.dev
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "dev"
    public = make_key(key, "dev@example.com")
    experiment = f"attest-{tmp_path.name}"
    client(world.uri).create_experiment(experiment)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", experiment)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", world.uri)
    # the protected branch trusts dev@example.com and requires attestation
    write(dev / ".repro-hooks" / "allowed_signers", signers_line("dev@example.com", public))
    write(
        dev / "pyproject.toml",
        "[tool.repro-hooks.mlflow]\ntimeout = 120\n\n"
        "[tool.repro-hooks.deploy]\nrequire-attestation = true\n",
    )
    write(dev / ".gitignore", "out/\n")
    write(dev / "train.py", TRAIN)
    assert commit(dev, "attested mode, training code").returncode == 0
    install_local_hooks(dev, ["mlflow-tag-commit"], ["post-commit"])
    # the developer signs with git's own SSH signing key
    git(dev, "config", "gpg.format", "ssh")
    git(dev, "config", "user.signingkey", str(key))
    model_id, run_id = train(dev, world.uri, stamp_plugin)
    write(dev / "notes.md", "trained\n")
    proc = commit(dev, "notes", verify=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    synced = cli_here(dev, "tag-mlflow", "--sync", "--timeout", "120")
    assert synced.returncode == 0, synced.stdout + synced.stderr
    git(dev, "push", "-q", "origin", "main")
    world.fetch()
    c = client(world.uri)
    name = f"attested-{tmp_path.name}"
    c.create_registered_model(name)
    weights = c.create_model_version(name, f"runs:/{run_id}/weights", run_id).version
    logged = c.create_model_version(name, f"models:/{model_id}", run_id, model_id=model_id).version
    return Attested(world, key, run_id, model_id, name, str(weights), str(logged))


@pytest.mark.e2e
def test_attested_round_trip(attested: Attested) -> None:
    a = attested
    c = client(a.uri)
    # the stamp recorded the run's files at its end, in the clone's local record
    common = git(a.world.dev, "rev-parse", "--path-format=absolute", "--git-common-dir").strip()
    tags = c.get_run(a.run_id).data.tags
    record = load_record(common, tags["repro_hooks.stamp"])
    assert record is not None
    files = record[ARTIFACTS_KEY]
    assert files["run"] == a.run_id
    assert f"runs:/{a.run_id}/weights/weights.bin" in files["files"]
    assert f"models:/{a.model_id}/MLmodel" in files["files"]
    # the link wrote the signed statement
    assert tags["repro_hooks.attestation"] == STATEMENT_PATH
    listed = {x.path for x in c.list_artifacts(a.run_id, "repro_hooks")}
    assert listed == {STATEMENT_PATH, SIGNATURE_PATH}
    for version in (a.weights, a.logged):
        code, out, err = a.check(version, "--record", "--promote", "champion")
        assert (code, out) == (0, ""), out + err
        assert "passed (evidence: stamped) (bytes: attested by dev@example.com)" in err
        vtags = a.world.version_tags(a.name, version)
        assert vtags["pre_deploy_checks"] == "PASSED"
        assert vtags["pre_deploy_checks.evidence"] == "stamped"
        assert vtags["pre_deploy_checks.bytes"] == "attested"
        assert vtags["pre_deploy_checks.signer"] == "dev@example.com"
    digests = a.world.version_tags(a.name, a.weights)["pre_deploy_checks.digests"]
    assert digests.startswith("weights/vocab.txt=") and ";weights/weights.bin=" in digests
    assert "MLmodel=" in a.world.version_tags(a.name, a.logged)["pre_deploy_checks.digests"]


@pytest.mark.e2e
def test_attested_tampering_fails(attested: Attested, tmp_path: Path) -> None:
    a = attested
    c = client(a.uri)
    assert a.check(a.weights)[0] == 0
    # 1. one tag edited: the link moved to the previous commit on main (same data)
    linked = c.get_run(a.run_id).data.tags["git.commit"]
    previous = git(a.world.dev, "rev-parse", "HEAD~1").strip()
    c.set_tag(a.run_id, "git.commit", previous)
    code, out, _ = a.check(a.weights, "--format", "json")
    assert code == 1
    messages = [(f["rule"], f["message"]) for f in json.loads(out)["findings"]]
    assert (
        "attestation-invalid",
        f"tag git.commit: the run has {previous!r}, the signed statement {linked!r}",
    ) in messages
    c.set_tag(a.run_id, "git.commit", linked)
    assert a.check(a.weights)[0] == 0
    # 2. one artifact byte changed (overwritten through log_artifact)
    local = tmp_path / "weights.bin"
    original = b"weights of one\ntwo\n"
    local.write_bytes(original[:-1] + b"!")
    c.log_artifact(a.run_id, str(local), "weights")
    code, out, _ = a.check(a.weights, "--record")
    assert code == 1
    served = digest_file(local).sha256
    recorded = json.loads(
        (Path(c.download_artifacts(a.run_id, STATEMENT_PATH, str(tmp_path)))).read_text()
    )["subject"]
    was = {s["name"]: s["digest"]["sha256"] for s in recorded}[
        f"runs:/{a.run_id}/weights/weights.bin"
    ]
    assert out.splitlines()[0] == (
        f"models:/{a.name}/{a.weights}: runs:/{a.run_id}/weights/weights.bin: the version "
        f"serves sha256 {served}, run {a.run_id} recorded {was}"
    )
    assert a.world.version_tags(a.name, a.weights)["pre_deploy_checks"] == "FAILED"
    local.write_bytes(original)
    c.log_artifact(a.run_id, str(local), "weights")
    assert a.check(a.weights)[0] == 0
    # 3. signed by a key the protected branch does not trust
    other = tmp_path / "other"
    make_key(other, "mallory@example.com")
    statement = Path(c.download_artifacts(a.run_id, STATEMENT_PATH, str(tmp_path / "s")))
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "repro-hooks", "-f", str(other), str(statement)],
        check=True,
        capture_output=True,
    )
    c.log_artifact(a.run_id, f"{statement}.sig", "repro_hooks")
    code, out, _ = a.check(a.weights)
    assert code == 1
    assert out.splitlines()[0] == (
        f"models:/{a.name}/{a.weights}: {SIGNATURE_PATH}: signed by a key that is not in "
        "origin/main:.repro-hooks/allowed_signers"
    )
    # 4. the statement edited to match other bytes, the old signature kept: it does not verify
    good_sig = tmp_path / "good" / "attestation.json.sig"
    good_sig.parent.mkdir()
    Path(f"{statement}.sig").unlink()
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "repro-hooks", "-f", str(a.key), str(statement)],
        check=True,
        capture_output=True,
    )
    Path(f"{statement}.sig").rename(good_sig)
    c.log_artifact(a.run_id, str(good_sig), "repro_hooks")
    code, out, err = a.check(a.weights)
    assert code == 0, out + err  # re-signed by the trusted key: passes again
    doc = json.loads(statement.read_text())
    doc["subject"][0]["digest"]["sha256"] = "0" * 64
    statement.write_text(json.dumps(doc))
    c.log_artifact(a.run_id, str(statement), "repro_hooks")
    code, out, _ = a.check(a.weights)
    assert code == 1
    assert out.splitlines()[0].startswith(
        f"models:/{a.name}/{a.weights}: {SIGNATURE_PATH}: the signature of dev@example.com "
        "(origin/main:.repro-hooks/allowed_signers) does not verify"
    )


@pytest.mark.e2e
def test_required_attestation_and_bad_input(
    attested: Attested, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = attested
    c = client(a.uri)
    # a run with an unsigned statement only (linked where no key is configured): the protected
    # branch requires a signed one
    git(a.world.dev, "config", "--unset", "gpg.format")
    name, version, _ = a.world.model()
    code, out, _ = a.world.check(f"models:/{name}/{version}", "--format", "json")
    assert code == 1
    assert {f["rule"] for f in json.loads(out)["findings"]} == {"attestation-missing"}
    # no ssh-keygen to verify with: exit 2, one line, nothing written
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "git").symlink_to(shutil.which("git") or "git")
    with monkeypatch.context() as m:
        m.setenv("PATH", str(tools))
        code, out, err = a.check(a.weights, "--record")
    assert code == 2, out + err
    assert (
        err.strip()
        .splitlines()[-1]
        .endswith(
            "ssh-keygen: not found on PATH (OpenSSH 8.2 or later signs and verifies attestations)"
        )
    )
    assert "Traceback" not in out + err
    assert a.world.version_tags(a.name, a.weights) == {}
    # a malformed statement: a finding, never a traceback
    bad = tmp_path / "repro_hooks" / "attestation.json"
    bad.parent.mkdir()
    bad.write_text("{not json")
    c.log_artifact(a.run_id, str(bad), "repro_hooks")
    code, out, err = a.check(a.weights)
    assert code == 1 and "Traceback" not in out + err
    assert out.splitlines()[0].startswith(
        f"models:/{a.name}/{a.weights}: {STATEMENT_PATH}: not JSON"
    )


@pytest.mark.e2e
def test_door2_version_source_elsewhere_fails(world: World) -> None:
    """Door 2: a version whose source is a bucket, registered with a properly linked run's id,
    used to pass: only `run_id` was read."""
    name, version, run_id = world.model()
    assert world.check(f"models:/{name}/{version}")[0] == 0
    c = client(world.uri)
    # (the server itself refuses runs:/<another run>/... and another run's artifact directory)
    elsewhere = ["s3://bucket/models/iris", "gs://bucket/models/iris", "dbfs:/models/iris"]
    for source in elsewhere:
        mv = c.create_model_version(name, source, run_id)
        uri = f"models:/{name}/{mv.version}"
        code, out, err = world.check(uri, "--format", "json")
        assert code == 1, (source, err)
        (finding,) = json.loads(out)["findings"]
        assert finding["rule"] == "model-source", source
        assert finding["message"].startswith(f"source {source}: "), finding
        assert "Traceback" not in err
