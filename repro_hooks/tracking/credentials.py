"""Credentials in tracking-store URIs: stripped before a URI is stored or shown, and every
known secret redacted from what is written (logs, job files, messages)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_SECRET_PARAM_RE = re.compile(
    r"(token|password|passwd|pwd|secret|key|auth|credential|signature|sig)", re.IGNORECASE
)
_USERINFO_RE = re.compile(r"(?<=://)[^/@\s]*@")


def strip_credentials(uri: str) -> str:
    """A URI without user:password@ and without credential-looking query parameters."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return _USERINFO_RE.sub("", uri)
    if not parts.scheme or (not parts.netloc and not parts.query):
        return uri
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _SECRET_PARAM_RE.search(k)
        ]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_in(uri: str | None, env: Mapping[str, str]) -> list[str]:
    """Strings that must never be written anywhere: URI credentials and MLflow's secret env."""
    found: list[str] = []
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD", "DATABRICKS_TOKEN"):
        if env.get(name):
            found.append(env[name])
    for candidate in (uri, env.get("MLFLOW_TRACKING_URI")):
        if not candidate:
            continue
        try:
            parts = urlsplit(candidate)
        except ValueError:
            continue
        if parts.password:
            found.append(parts.password)
        if "@" in parts.netloc:
            found.append(parts.netloc.rpartition("@")[0])
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if value and _SECRET_PARAM_RE.search(key):
                found.append(value)
    return sorted({s for s in found if len(s) >= 3}, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """Text with every known secret and any `user:pass@` in a URL replaced by `***`."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _USERINFO_RE.sub("***@", text)
