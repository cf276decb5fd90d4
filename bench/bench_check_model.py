"""check-model: the deploy gate on one model version, against doing the same reads by hand.

A local `mlflow server` (sqlite backend, registry included) on 127.0.0.1; a model logged and
registered with `mlflow.pyfunc.log_model(..., registered_model_name=...)`, its run linked to a
commit that references DVC data (one file and a directory of 200 files) pushed with `dvc push`
to a local DVC remote, and to the bare git remote. Timed in that repository (so `dvc status
--cloud` finds the local cache and says "up to date"), interleaved, medians:

The run's link carries a statement of its files signed with an ed25519 key the protected branch's
`allowed_signers` trusts, and the branch requires attestation (issue 20).

- ours: `repro-hooks check-model --tracking-uri URL models:/bench/1` (every check, the bytes:
  the version's files downloaded and digested, the signature verified with ssh-keygen);
- anchor: one Python process that does the same reads with MlflowClient (the version, its run)
  and `git merge-base --is-ancestor`, then `dvc status --cloud` (the DVC CLI's own remote check),
  then downloads the version's files (`mlflow.artifacts.download_artifacts(mv.source)`).

    .venv/bin/python bench/bench_check_model.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import alternate, machine

VENV_BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent

TRAIN = """\
import sys
import mlflow
import mlflow.pyfunc


class Identity(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


with mlflow.start_run() as run:
    info = mlflow.pyfunc.log_model(
        name="model", python_model=Identity(), registered_model_name="bench",
        pip_requirements=["mlflow"],
    )
print(run.info.run_id, info.registered_model_version)
"""

LINK = """\
import sys
from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from repro_hooks.git import Git
from repro_hooks.links.record import commit_record

from repro_hooks.deploy.artifacts import run_digests
from repro_hooks.deploy.attest import publish_statement
from repro_hooks.tracking.mlflow import MlflowRegistry, MlflowTracker
from repro_hooks.links.record import EVIDENCE_TAG

repo, run_id, sha = sys.argv[1:4]
record = commit_record(Git.discover(repo), sha, "main")
tags = {**record.tags(), EVIDENCE_TAG: "stamp"}
client = MlflowClient()
client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
# what the link delivery writes for a stamped run: the statement of its files, signed with the
# key git is configured to sign with (gpg.format=ssh, user.signingkey)
uri = client.tracking_uri
files = {"artifacts": {"run": run_id, "files": run_digests(MlflowRegistry.of(client), run_id)}}
outputs = [(o.path, o.hash_value) for o in record.outputs]
print(publish_statement(MlflowTracker.of(client), Git.discover(repo), run_id, tags, {}, outputs, files, uri))
"""

ANCHOR = """\
import subprocess, sys, tempfile
import mlflow.artifacts
from mlflow.tracking import MlflowClient

client = MlflowClient()
mv = client.get_model_version("bench", "1")
run = client.get_run(mv.run_id)
sha = run.data.tags["git.commit"]
ok = subprocess.run(["git", "merge-base", "--is-ancestor", sha, "origin/main"]).returncode == 0
status = subprocess.run([sys.argv[1], "status", "--cloud", "-q"]).returncode
with tempfile.TemporaryDirectory() as tmp:  # the files the version serves
    mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=tmp)
sys.exit(0 if ok and status == 0 else 1)
"""


def run(cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def timed(cmd: list[str], cwd: Path) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    os.environ["PATH"] = f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"
    os.environ["PYTHONPATH"] = str(ROOT)
    os.environ["DVC_NO_ANALYTICS"] = "1"
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        os.environ[key] = "bench"
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        os.environ[key] = "bench@example.com"
    sys.path.insert(0, str(ROOT / "tests"))
    from mlflow_fixtures import MlflowServer, free_port  # the tests' own helpers

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        server = MlflowServer(tmp, tmp / "db", free_port())  # the tests' own server
        server.start()
        url = server.url
        try:
            os.environ["MLFLOW_TRACKING_URI"] = url
            dev, bare = tmp / "dev", tmp / "remote.git"
            dev.mkdir()
            run(dev, "git", "init", "-q", "-b", "main")
            run(dev, "dvc", "init", "-q")
            run(dev, "dvc", "remote", "add", "-d", "store", str(tmp / "dvc-store"))
            (dev / "data" / "images").mkdir(parents=True)
            (dev / "data" / "train.csv").write_text(
                "".join(f"{i},{i * i}\n" for i in range(10_000))
            )
            for i in range(200):
                (dev / "data" / "images" / f"{i:03d}.txt").write_text(f"image {i}\n")
            run(dev, "dvc", "add", "-q", "data/train.csv", "data/images")
            # attested mode: the protected branch trusts one key and requires a signature
            key = tmp / "key"
            run(tmp, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
            kind, public = Path(f"{key}.pub").read_text().split()[:2]
            (dev / ".repro-hooks").mkdir()
            (dev / ".repro-hooks" / "allowed_signers").write_text(
                f'bench@example.com namespaces="repro-hooks" {kind} {public}\n'
            )
            (dev / "pyproject.toml").write_text(
                "[tool.repro-hooks.deploy]\nrequire-attestation = true\n"
            )
            run(dev, "git", "config", "gpg.format", "ssh")
            run(dev, "git", "config", "user.signingkey", str(key))
            run(dev, "git", "add", "-A")
            run(dev, "git", "commit", "-q", "-m", "data")
            run(dev, "dvc", "push", "-q")
            run(tmp, "git", "init", "-q", "--bare", "-b", "main", str(bare))
            run(dev, "git", "remote", "add", "origin", str(bare))
            run(dev, "git", "push", "-q", "origin", "main")
            (dev / "train.py").write_text(TRAIN)
            run_id, version = run(dev, sys.executable, "train.py").splitlines()[-1].split()
            sha = run(dev, "git", "rev-parse", "HEAD")
            linked = run(dev, sys.executable, "-c", LINK, str(dev), run_id, sha)
            assert "attested (signed)" in linked, linked
            (tmp / "anchor.py").write_text(ANCHOR)
            ours = [
                str(VENV_BIN / "repro-hooks"),
                "check-model",
                "--tracking-uri",
                url,
                f"models:/bench/{version}",
            ]
            anchor = [sys.executable, str(tmp / "anchor.py"), str(VENV_BIN / "dvc")]
            results = alternate(
                args.runs,
                {
                    "ours": lambda: timed(ours, dev),
                    "anchor": lambda: timed(anchor, dev),
                },
            )
        finally:
            server.stop()
    (t_ours, c_ours), (t_anchor, c_anchor) = results["ours"], results["anchor"]
    print(f"runs: {args.runs}; {machine()}; load average {os.getloadavg()[0]:.1f} at the end")
    print("| command | median (s) | exit codes |")
    print("| --- | --- | --- |")
    print(f"| `repro-hooks check-model models:/bench/1` | {t_ours:.3f} | {sorted(c_ours)} |")
    print(
        "| MlflowClient (version, run) + `git merge-base` + `dvc status --cloud` + artifact "
        f"download (anchor) | {t_anchor:.3f} | {sorted(c_anchor)} |"
    )
    print(f"| ratio (ours / anchor) | {t_ours / t_anchor:.2f}x | |")
    return 0 if c_ours == c_anchor == {0} else 1


if __name__ == "__main__":
    sys.exit(main())
