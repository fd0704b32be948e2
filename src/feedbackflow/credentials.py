"""Keep credentials out of messages, logs, reports and XComs.

Two layers, because one is not enough:

* errors from drivers and clients (psycopg, boto3/botocore, DVC) are reduced to their class and code by
  :func:`describe_error` before they reach a message: their own text may echo a DSN or a key (psycopg's malformed-DSN
  error quotes part of the password);
* every credential the project handles (the PostgreSQL DSN and its password, the AWS secret key and session token,
  the pseudonym key) is registered with Airflow's secret masker by :func:`mask_credentials` where a task reads it,
  and :func:`redact` removes the same values from text we pass on (the DVC output tail in a failed task's message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

#: Environment variables whose values are credentials (the whole value, or a DSN holding a password).
CREDENTIAL_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "FEEDBACKFLOW_POSTGRES_DSN",
    "PGPASSWORD",
    "FEEDBACKFLOW_PSEUDONYM_KEY",
)
#: Variables holding a libpq DSN (key/value or URL form) whose password must be masked on its own too.
DSN_VARIABLES = ("FEEDBACKFLOW_POSTGRES_DSN",)
#: Values shorter than this are not masked (masking "a" would garble every message); real credentials are longer.
MIN_SECRET_CHARS = 4
REPLACEMENT = "***"

_KEYWORD_PASSWORD = re.compile(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^:/@\s]*:([^@]*)@", re.IGNORECASE)


def dsn_passwords(dsn: str) -> list[str]:
    """The password of a DSN, in every form a library might echo it, even when the DSN is malformed.

    A quoted password with spaces (``password='S3cret PW'``) yields the whole value and each of its words; an
    unquoted one followed by stray words (a malformed DSN) yields the rest of the DSN after ``password=`` too.
    """
    found: list[str] = []
    for match in _KEYWORD_PASSWORD.finditer(dsn):
        value = match.group(1)
        if value.startswith("'"):
            value = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
        found.append(value)
        found.append(dsn[match.start(1) :].strip())  # malformed: everything after 'password=' may be the password
    url = _URL_PASSWORD.match(dsn.strip())
    if url:
        from urllib.parse import unquote

        found += [url.group(1), unquote(url.group(1))]
    words = [word for value in list(found) for word in value.split()]
    return [value for value in dict.fromkeys(found + words) if len(value) >= MIN_SECRET_CHARS]


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """Every credential value in ``environ`` (see :data:`CREDENTIAL_VARIABLES`), longest first."""
    values: list[str] = []
    for name in CREDENTIAL_VARIABLES:
        value = environ.get(name)
        if value:
            values.append(value)
            if name in DSN_VARIABLES:
                values += dsn_passwords(value)
    unique = {value for value in values if len(value) >= MIN_SECRET_CHARS}
    return sorted(unique, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***`` (longest first, so a password inside a DSN goes too)."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, REPLACEMENT)
    return text


def mask_credentials(environ: Mapping[str, str]) -> list[str]:
    """Register every credential value of ``environ`` with Airflow's secret masker (task and supervisor logs).

    Without Airflow installed (a CLI run) nothing is registered; the values are returned either way.
    """
    values = secret_values(environ)
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - Airflow is a dependency; the package still works without it
        return values
    for value in values:
        mask_secret(value)
    return values


def describe_error(error: BaseException) -> str:
    """An error's class and code (SQLSTATE, S3 error code, HTTP status), never its text.

    Driver messages can quote a DSN, a query parameter or a key, so only these fields are passed on.
    """
    parts = [type(error).__name__]
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate:
        parts.append(f"SQLSTATE {sqlstate}")
    response = getattr(error, "response", None)
    if isinstance(response, Mapping):
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code:
            parts.append(f"code {code}")
        if status:
            parts.append(f"HTTP {status}")
    return " ".join(parts)
