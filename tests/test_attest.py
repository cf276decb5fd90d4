"""Attested mode's statement and signatures (deploy/attest.py): the in-toto statement built and
parsed, compared with a run and its commit, signed and verified with the real ssh-keygen; the
`[tool.repro-hooks.attest]` table. No MLflow here (tests/test_deploy_bytes.py has it end to end)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from repro_hooks.deploy.attest import (
    NAMESPACE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    SignatureError,
    Statement,
    StatementError,
    parse_statement,
    sign,
    signer_of,
    signing_key,
    statement_problems,
    tracking_host,
)
from repro_hooks.errors import ConfigError, ReproHooksError
from repro_hooks.git import Git
from repro_hooks.policy.config import load_config
from tests.helpers import git, write

STATEMENT = Statement(
    run_id="r1",
    commit="a" * 40,
    repo_url="https://git.example/r.git",
    tracking_host="mlflow.example",
    evidence="stamp",
    stage="train",
    materials={"data/train.csv": "1" * 32, "data/imgs": "2" * 32 + ".dir"},
    subjects={"runs:/r1/model/MLmodel": "3" * 64, "models:/m-1/model.pkl": "4" * 64},
)


def make_key(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    kind, key = Path(f"{path}.pub").read_text().split()[:2]
    return f"{kind} {key}"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("keys")
    found = {}
    for who in ("ann", "bob"):
        found[who] = base / who
        make_key(found[who], f"{who}@example.com")
    return found


def allowed(keys: dict[str, Path], *who: str) -> bytes:
    lines = []
    for name in who:
        kind, key = Path(f"{keys[name]}.pub").read_text().split()[:2]
        lines.append(f'{name}@example.com namespaces="{NAMESPACE}" {kind} {key}\n')
    return "".join(lines).encode()


# ---- the statement -------------------------------------------------------------------------------


def test_statement_is_in_toto_and_round_trips() -> None:
    data = STATEMENT.to_json()
    doc = json.loads(data)
    assert doc["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert doc["predicateType"] == PREDICATE_TYPE
    assert doc["subject"][0] == {"name": "models:/m-1/model.pkl", "digest": {"sha256": "4" * 64}}
    assert doc["predicate"]["materials"][0] == {
        "path": "data/imgs",
        "digest": {"md5": "2" * 32 + ".dir"},
    }
    assert parse_statement(data) == STATEMENT
    assert data == parse_statement(data).to_json()  # canonical: what is signed is stable
    assert tracking_host("https://user:pw@mlflow.example:5000/x") == "mlflow.example"
    assert tracking_host("sqlite:///mlflow.db") == "sqlite"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"{nope", "not JSON", id="not-json"),
        pytest.param(b"[]", "not an in-toto statement", id="list"),
        pytest.param(
            json.dumps({"_type": STATEMENT_TYPE, "predicateType": "x"}).encode(),
            "predicateType 'x', not https://repro-hooks.dev/link/v1",
            id="other-predicate",
        ),
        pytest.param(
            json.dumps({"_type": STATEMENT_TYPE, "predicateType": PREDICATE_TYPE}).encode(),
            "predicate without a run",
            id="no-run",
        ),
        pytest.param(
            STATEMENT.to_json().replace(b'"sha256":"' + b"3" * 64 + b'"', b'"sha256":3'),
            "subject runs:/r1/model/MLmodel's sha256 is not a string",
            id="digest-type",
        ),
        pytest.param(
            STATEMENT.to_json().replace(b"models:/m-1/model.pkl", b"runs:/r1/model/MLmodel"),
            "subject: runs:/r1/model/MLmodel listed twice",
            id="twice",
        ),
    ],
)
def test_malformed_statements(data: bytes, message: str) -> None:
    with pytest.raises(StatementError) as info:
        parse_statement(data)
    assert str(info.value).startswith(message)


def test_statement_problems_name_what_differs() -> None:
    tags = {
        "git.commit": "a" * 40,
        "git.repo_url": "https://git.example/r.git",
        "repro_hooks.link": "stamp",
        "repro_hooks.stage": "train",
    }
    outputs = [("data/train.csv", "1" * 32), ("data/imgs", "2" * 32 + ".dir")]
    assert statement_problems(STATEMENT, "r1", tags, outputs) == []
    assert statement_problems(STATEMENT, "r1", tags, None) == []  # commit not here: tags only
    edited = {**tags, "git.commit": "b" * 40, "repro_hooks.link": "forced"}
    other_data = [("data/train.csv", "9" * 32), ("data/new.csv", "8" * 32)]
    assert statement_problems(STATEMENT, "r2", edited, other_data) == [
        "the statement is about run r1, not run r2",
        f"tag git.commit: the run has {'b' * 40!r}, the signed statement {'a' * 40!r}",
        "tag repro_hooks.link: the run has 'forced', the signed statement 'stamp'",
        f"data/imgs: the commit records no such output, the signed statement {'2' * 32}.dir",
        f"data/new.csv: the commit records {'8' * 32}, the signed statement no such output",
        f"data/train.csv: the commit records {'9' * 32}, the signed statement {'1' * 32}",
    ]


# ---- ssh-keygen ------------------------------------------------------------------------------


def test_sign_and_verify(keys: dict[str, Path]) -> None:
    data = STATEMENT.to_json()
    sig = sign(data, str(keys["ann"]))
    assert sig.startswith(b"-----BEGIN SSH SIGNATURE-----")
    where = "origin/main:.repro-hooks/allowed_signers"
    assert signer_of(data, sig, allowed(keys, "bob", "ann"), where) == "ann@example.com"
    with pytest.raises(SignatureError, match=f"^signed by a key that is not in {where}$"):
        signer_of(data, sig, allowed(keys, "bob"), where)
    with pytest.raises(
        SignatureError, match="^the signature of ann@example.com .* does not verify"
    ):
        signer_of(data + b" ", sig, allowed(keys, "ann"), where)
    with pytest.raises(SignatureError, match="not an SSH signature"):
        signer_of(data, b"garbage", allowed(keys, "ann"), where)
    # a signature in git's namespace (a signed commit's) is not a statement's
    other = Path(f"{keys['ann']}.git-ns")
    other.write_bytes(data)
    subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(keys["ann"]), str(other)],
        check=True,
        capture_output=True,
    )
    git_sig = Path(f"{other}.sig").read_bytes()
    with pytest.raises(SignatureError):
        signer_of(
            data, git_sig, allowed(keys, "ann").replace(b'namespaces="repro-hooks" ', b""), where
        )


def test_bad_keys_and_no_ssh_keygen(
    keys: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = STATEMENT.to_json()
    with pytest.raises(ReproHooksError, match=r"^/nonexistent/key: signing key not readable$"):
        sign(data, "/nonexistent/key")
    junk = write(tmp_path / "junk", "not a key\n")
    with pytest.raises(ReproHooksError, match=r"junk: ssh-keygen could not sign: "):
        sign(data, str(junk))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ReproHooksError, match=r"^ssh-keygen: not found on PATH"):
        sign(data, str(keys["ann"]))
    with pytest.raises(ReproHooksError, match=r"^ssh-keygen: not found on PATH"):
        signer_of(data, b"-----BEGIN SSH SIGNATURE-----", b"", "x")


# ---- configuration ---------------------------------------------------------------------------


def test_signing_key_from_config_then_git(repo: Path) -> None:
    g = Git.discover(repo)
    assert signing_key(g, load_config(repo)) is None
    git(repo, "config", "user.signingkey", "/keys/mine")
    assert signing_key(g, load_config(repo)) is None  # gpg (not ssh): not ours to use
    git(repo, "config", "gpg.format", "ssh")
    assert signing_key(g, load_config(repo)) == "/keys/mine"
    git(repo, "config", "user.signingkey", "key::ssh-ed25519 AAAA")
    assert signing_key(g, load_config(repo)) is None
    write(repo / "pyproject.toml", '[tool.repro-hooks.attest]\nsigning-key = "~/.ssh/id_ed25519"\n')
    assert signing_key(g, load_config(repo)) == "~/.ssh/id_ed25519"
    write(repo / "pyproject.toml", "[tool.repro-hooks.attest]\nsigning-key = 3\n")
    with pytest.raises(ConfigError, match="attest.signing-key"):
        load_config(repo)
    write(repo / "pyproject.toml", '[tool.repro-hooks.attest]\nkey = "x"\n')
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(repo)
