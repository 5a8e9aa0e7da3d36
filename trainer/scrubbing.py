"""Replace secrets in source text with placeholders before anything is tokenized.

A model trained on a token memorises it and can complete it for anyone who uses the
adapter, so each recognisable secret becomes a fixed placeholder such as `<API_KEY>`.
The patterns are deliberately specific (known token formats, credentials in URLs,
string literals assigned to password-like names) to leave ordinary code untouched.
"""

from __future__ import annotations

import re
from collections import Counter

PLACEHOLDERS = {
    "private_key": "<PRIVATE_KEY>",
    "aws_access_key_id": "<AWS_ACCESS_KEY_ID>",
    "api_token": "<API_KEY>",
    "jwt": "<JWT>",
    "url_credentials": "<PASSWORD>",
    "assigned_secret": "<SECRET>",
}

_PRIVATE_KEY = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY((?: BLOCK)?)-----.*?-----END \1PRIVATE KEY\2-----", re.DOTALL
)
_AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")
_API_TOKENS = re.compile(
    "|".join(
        [
            r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b",  # GitHub
            r"\bgithub_pat_[A-Za-z0-9_]{22,255}\b",  # GitHub fine-grained
            r"\bglpat-[A-Za-z0-9_-]{20,}",  # GitLab
            r"\bsk-(?:proj-|ant-[a-z0-9]{2,6}-)?[A-Za-z0-9_-]{20,}",  # OpenAI / Anthropic
            r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b",  # Stripe
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
            r"\bAIza[0-9A-Za-z_-]{35}",  # Google API key
            r"\bhf_[A-Za-z0-9]{30,}\b",  # Hugging Face
            r"\bnpm_[A-Za-z0-9]{36}\b",  # npm
        ]
    )
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# scheme://user:password@host -> keep scheme and user, hide the password.
_URL_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"]+):([^\s@'\"/]+)@")
# password = "hunter2", "api_key": 'abc', token='...' : a string literal given to a secret-sounding name.
_SECRET_NAME = (
    r"\b(?:\w*?[_.-])?(?:passw(?:or)?d|pwd|secret|api_?key|access_?key|auth_?token|token|private_?key|credentials?)"
    r"(?P<suffix>[_.-]\w*)?\b"
)
# token_pattern=r"(?u)\b\w\w+\b" (scikit-learn's vectorizers), token_type="bearer",
# password_field="pwd": names that describe a secret rather than hold one.
_DESCRIBES = re.compile(
    r"[_.-](?:type|pattern|regex|re|name|names|field|label|prompt|hint|header|column|col|len|length|count|"
    r"env|env_var|var|file|path|url|uri|endpoint|policy|format|fmt|kind|style|id_field)$",
    re.IGNORECASE,
)
_ASSIGNED_SECRET = re.compile(
    rf"""(?ix)
    (?P<name>['"]?{_SECRET_NAME}['"]?\s*(?::|=|==)\s*[rbuRBU]?)   # name then : or =
    (?P<quote>['"])(?P<value>[^'"\n]{{4,}})(?P=quote)              # a literal of 4+ characters
    """
)


def _is_placeholder(value: str) -> bool:
    return value.startswith("<") and value.endswith(">") or set(value) <= {"*", "x", "X", "."}


def _assigned_secret(match: re.Match, counts: Counter) -> str:
    value = match.group("value")
    if _is_placeholder(value) or " " in value.strip() and len(value.split()) > 3:
        return match.group(0)  # already scrubbed, masked, or a sentence such as a help text
    if _DESCRIBES.search(match.group("suffix") or ""):
        return match.group(0)  # token_pattern=..., password_field=...: about a secret, not one
    counts["assigned_secret"] += 1
    return f"{match.group('name')}{match.group('quote')}{PLACEHOLDERS['assigned_secret']}{match.group('quote')}"


def scrub_secrets(text: str) -> tuple[str, Counter]:
    """Return `text` with secrets replaced by placeholders, and how many of each kind were found."""
    counts: Counter = Counter()

    def simple(kind: str):
        def replace(_match: re.Match) -> str:
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        return replace

    text = _PRIVATE_KEY.sub(simple("private_key"), text)
    text = _AWS_ACCESS_KEY_ID.sub(simple("aws_access_key_id"), text)
    text = _API_TOKENS.sub(simple("api_token"), text)
    text = _JWT.sub(simple("jwt"), text)

    def url(match: re.Match) -> str:
        if _is_placeholder(match.group(2)):
            return match.group(0)
        counts["url_credentials"] += 1
        return f"{match.group(1)}:{PLACEHOLDERS['url_credentials']}@"

    text = _URL_CREDENTIALS.sub(url, text)
    text = _ASSIGNED_SECRET.sub(lambda m: _assigned_secret(m, counts), text)
    return text, counts
