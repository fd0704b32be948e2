"""Keyed pseudonyms: the same value always becomes the same token, and only the key holder could link them.

A token is ``<ENTITY_hex>`` where ``hex`` is the start of HMAC-SHA256(key, normalised value). The same customer's
e-mail therefore maps to one token in every text and every night, so a model or an analyst can still see "the same
customer wrote again" without seeing who. Nothing maps tokens back to values: no table is stored, and without the key
a token cannot even be checked against a guessed value.

The key comes from the environment (``FEEDBACKFLOW_PSEUDONYM_KEY``), which the Airflow task fills from a
connection (see :func:`feedbackflow.orchestration.connections.pseudonym_environment`); it is never read from params,
logged or stored. Only its *key id* (an HMAC of a fixed label, not the key) is written to the audit record, so a
reader can tell which key produced a dataset. Rotating the key changes every token from that run on; see the
README's key-rotation section.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from feedbackflow.config import ProjectPaths
from feedbackflow.errors import ConfigError

KEY_ENV = "FEEDBACKFLOW_PSEUDONYM_KEY"
# The key's id (never the key), written before the anonymise stage runs; dvc.yaml lists it as a dependency of
# anonymise, so a rotated key re-runs anonymise and everything after it instead of restoring the old key's output.
KEY_ID_FILE = ProjectPaths.relative().pseudonym_key_id.as_posix()
NO_KEY = "none"
KEY_CONN_ENV = "FEEDBACKFLOW_PSEUDONYM_KEY_CONN_ID"
MIN_KEY_CHARS = 16  # below 128 bits an offline guess of the key becomes thinkable

# Values whose formatting varies (spaces in a card number, "+44 7..." vs "07...") but not their identity.
_COMPACT_ENTITIES = frozenset({"CREDIT_CARD", "IBAN_CODE", "UK_SORT_CODE", "UK_ACCOUNT_NUMBER", "IP_ADDRESS"})


@dataclass(frozen=True)
class PseudonymKey:
    """The secret behind the pseudonyms. ``repr`` shows the key id only, so a logged object leaks nothing."""

    secret: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        """A short, stable id of this key (HMAC of a fixed label): safe to record, useless for computing tokens."""
        return hmac.new(self.secret, b"key-id", hashlib.sha256).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"PseudonymKey(key_id={self.key_id!r})"


def load_key(environ: Mapping[str, str] | None = None) -> PseudonymKey:
    """Read the pseudonym key from ``FEEDBACKFLOW_PSEUDONYM_KEY``.

    Raises:
        ConfigError: the variable is unset, empty or shorter than 16 characters. A pseudonym operator without a key
            must stop the run: falling back to placeholders would silently change what downstream data means.
    """
    environ = os.environ if environ is None else environ
    secret = environ.get(KEY_ENV, "")
    if not secret:
        raise ConfigError(
            f"anonymise.operators asks for keyed pseudonyms but no key is set: set the environment variable {KEY_ENV}, "
            f"or in Airflow set {KEY_CONN_ENV} to a connection whose password is the key "
            f"(e.g. `airflow connections add feedbackflow_pseudonym --conn-type generic --conn-password ...`)"
        )
    if len(secret) < MIN_KEY_CHARS:
        raise ConfigError(f"{KEY_ENV} is too short: use at least {MIN_KEY_CHARS} random characters")
    return PseudonymKey(secret.encode("utf-8"))


def normalise(entity: str, value: str) -> str:
    """The canonical form of ``value`` that is hashed, so one customer's value written two ways gets one token.

    E-mails and names are case-folded with runs of whitespace collapsed; card numbers, IBANs, sort codes and account
    numbers keep letters and digits only; phone numbers become E.164 (``+447123456789``) when libphonenumber can
    parse them (UK numbers without a country code are read as UK), else their digits.
    """
    if entity == "PHONE_NUMBER":
        import phonenumbers

        candidate = value.replace("(0)", "")
        try:
            number = phonenumbers.parse(candidate, None if candidate.strip().startswith("+") else "GB")
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            return re.sub(r"[^\d+]", "", value)
    if entity in _COMPACT_ENTITIES:
        return re.sub(r"[^0-9A-Za-z.:]", "", value).upper()
    return " ".join(value.casefold().split())


def pseudonym(key: PseudonymKey, entity: str, value: str, hex_chars: int = 8) -> str:
    """The token that replaces ``value`` of type ``entity``, e.g. ``<EMAIL_ADDRESS_3f9a1c0b>``."""
    digest = hmac.new(key.secret, normalise(entity, value).encode("utf-8"), hashlib.sha256).hexdigest()
    return f"<{entity}_{digest[:hex_chars]}>"


def current_key_id(environ: Mapping[str, str] | None = None) -> str:
    """The id of the key in ``FEEDBACKFLOW_PSEUDONYM_KEY``, or ``none`` when no (usable) key is set."""
    try:
        return load_key(environ).key_id
    except ConfigError:
        return NO_KEY


def write_key_id(root: Path, environ: Mapping[str, str] | None = None) -> str:
    """Write the current key's id to ``root / KEY_ID_FILE`` (only when it changed); return it.

    DVC hashes this file as a dependency of the anonymise stage: the id changes with the key, the key itself never
    reaches the file, DVC, a log or an XCom.
    """
    key_id = current_key_id(environ)
    path = root / KEY_ID_FILE
    if not path.exists() or path.read_text(encoding="utf-8").strip() != key_id:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key_id + "\n", encoding="utf-8")
    return key_id


def check_key_id(root: Path, key_id: str | None) -> None:
    """Fail when ``root / KEY_ID_FILE`` names another key than the one loaded (DVC would cache on a stale id).

    Raises:
        ConfigError: the file exists and disagrees with ``key_id``.
    """
    path = root / KEY_ID_FILE
    if path.exists() and path.read_text(encoding="utf-8").strip() != (key_id or NO_KEY):
        raise ConfigError(
            f"{KEY_ID_FILE} names another pseudonym key than {KEY_ENV} holds; run "
            f"`python -m feedbackflow.privacy.pseudonym` (the Airflow task does it) before `dvc repro anonymise`"
        )


if __name__ == "__main__":
    print(write_key_id(ProjectPaths.discover().root))
