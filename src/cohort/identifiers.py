"""Direct identifiers: find them in a site file, refuse them, or pseudonymise them.

A study database holds no names, e-mail addresses, phone numbers, street
addresses, full dates of birth or national identity numbers. A column that
looks like one (by its name or by its values) is refused unless the mapping
drops it, or maps it with ``pseudonymise = true``: then each value is replaced
by a keyed hash (HMAC-SHA256) under the study secret, which lives outside the
database (environment variable ``COHORT_STUDY_SECRET`` or the file named by
``COHORT_STUDY_SECRET_FILE``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cohort.errors import MappingError

__all__ = ["Suspect", "find_identifiers", "pseudonymise", "study_secret"]

_NAME_PATTERNS: dict[str, re.Pattern[str]] = {
    "a person's name": re.compile(
        r"^(first_?name|last_?name|given_?name|family_?name|surname|full_?name|name|patient_?name"
        r"|nom|prenom|navn|fornavn|etternavn|initials)$"),
    "an e-mail address": re.compile(r"e_?mail|courriel|epost"),
    "a phone number": re.compile(r"phone|^tel|mobile|telefon|portable"),
    "a street address": re.compile(r"address|street|adresse|^addr|postcode|post_?code|zip"),
    "a full date of birth": re.compile(r"^(dob|date_?of_?birth|birth_?date|d_?naiss|date_?naissance"
                                       r"|fodselsdato|f_dselsdato)$"),
    "a national identity number": re.compile(
        r"ssn|social_?security|nhs_?(no|number)|national_?id|nir|insee|personnummer"
        r"|fodselsnummer|f_dselsnummer|passport"),
}
_VALUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "an e-mail address": re.compile(r"^[\w.+-]+@[\w-]+\.[\w.-]+$"),
    "a national identity number": re.compile(
        r"^(\d{3}-\d{2}-\d{4}|\d{6} ?\d{5}|[12] ?\d{2} ?\d{2} ?\d{2} ?\d{3} ?\d{3} ?\d{2}"
        r"|\d{3} ?\d{3} ?\d{4})$"),
    # 8-15 digits with phone punctuation, not a date
    "a phone number": re.compile(r"^(?!\d{4}-\d{2}-\d{2}$)(?=(?:\D*\d){8,15}\D*$)\+?[\d ()-]{8,20}$"),
    "a street address": re.compile(
        r"^\d+[a-z]?,? [\w .'-]+ (street|st|road|rd|avenue|ave|lane|gate|veien|vegen|rue|bd)\b",
        re.IGNORECASE),
}


@dataclass(frozen=True)
class Suspect:
    column: str
    kind: str
    evidence: str


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def find_identifiers(header: list[str], samples: dict[str, list[str]],
                     *, threshold: float = 0.5) -> list[Suspect]:
    """Columns whose name, or most of whose sampled values, look like direct identifiers."""
    found: list[Suspect] = []
    for column in header:
        norm = _normal(column)
        kind = next((k for k, p in _NAME_PATTERNS.items() if p.search(norm)), None)
        if kind is not None:
            found.append(Suspect(column, kind, f"its name {column!r}"))
            continue
        values = [v.strip() for v in samples.get(column, []) if v and v.strip()]
        if not values:
            continue
        for kind, pattern in _VALUE_PATTERNS.items():
            hits = [v for v in values if pattern.match(v)]
            if len(hits) >= max(3, threshold * len(values)):
                found.append(Suspect(column, kind, f"{len(hits)} of {len(values)} sampled values "
                                                   f"like {hits[0][:3]}..."))
                break
    return found


def study_secret() -> bytes:
    """The study's pseudonymisation key, from outside the database."""
    value = os.environ.get("COHORT_STUDY_SECRET")
    path = os.environ.get("COHORT_STUDY_SECRET_FILE")
    if not value and path:
        try:
            value = Path(path).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise MappingError(f"COHORT_STUDY_SECRET_FILE={path}: cannot read the study secret: "
                               f"{exc.strerror}") from None
    if not value or len(value) < 16:
        raise MappingError(
            "pseudonymisation needs the study secret (16 characters or more) in the environment "
            "variable COHORT_STUDY_SECRET or in the file named by COHORT_STUDY_SECRET_FILE; keep it "
            "outside the study database and folder")
    return value.encode("utf-8")


def pseudonymise(value: str | None, *, secret: bytes) -> str | None:
    """Keyed hash of ``value``: stable within a study, not reversible without the secret.

    Examples
    --------
    >>> pseudonymise("Kari Nordmann", secret=b"0123456789abcdef")[:8]
    'ps-830bd'
    """
    if value is None:
        return None
    digest = hmac.new(secret, value.strip().encode("utf-8"), hashlib.sha256).hexdigest()
    return f"ps-{digest[:20]}"
