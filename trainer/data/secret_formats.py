"""What a secret looks like on its own: issuer token formats, private keys, URL passwords, entropy.

These patterns are recognisable wherever they appear (code, strings, comments, shell
lines), so they run on the whole text before the token-aware pass in `scrubbing`. Each
format is anchored on the issuer's fixed prefix or structure, which keeps ordinary code
from matching; the formats follow the public documentation of each issuer (and the rule
sets of gitleaks and detect-secrets).
"""

from __future__ import annotations

import math
import re
from collections import Counter

# kind -> the placeholder that replaces it in the training text
PLACEHOLDERS = {
    "private_key": "<PRIVATE_KEY>",
    "aws_access_key_id": "<AWS_ACCESS_KEY_ID>",
    "aws_secret_access_key": "<AWS_SECRET_ACCESS_KEY>",
    "api_token": "<API_KEY>",
    "jwt": "<JWT>",
    "url_credentials": "<PASSWORD>",
    "authorization_header": "<TOKEN>",
    "assigned_secret": "<SECRET>",
    "beside_credential": "<SECRET>",
}

# Fixed-prefix token formats, all counted as "api_token" (the kind name says whose).
TOKEN_FORMATS: dict[str, str] = {
    "github": r"\bgh[pousr]_[A-Za-z0-9]{36,255}\b|\bgithub_pat_[A-Za-z0-9_]{22,255}\b",
    "gitlab": r"\bgl(?:pat|ptt|dt|rt|cbt|oas)-[A-Za-z0-9_-]{20,}",
    "openai_anthropic": r"\bsk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]{2,6}-)?[A-Za-z0-9_-]{20,}",
    "stripe": r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b|\bwhsec_[A-Za-z0-9]{24,}\b",
    "slack": r"\bxox[abposre]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,}",
    "slack_webhook": r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}",
    "discord_webhook": r"discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]{20,}",
    "google_api_key": r"\bAIza[0-9A-Za-z_-]{35}",
    "google_oauth": r"\bGOCSPX-[A-Za-z0-9_-]{20,}|\bya29\.[A-Za-z0-9_-]{20,}",
    "huggingface": r"\bhf_[A-Za-z0-9]{30,}\b",
    "npm": r"\bnpm_[A-Za-z0-9]{36}\b",
    "pypi": r"\bpypi-AgE[A-Za-z0-9_-]{50,}",
    "sendgrid": r"\bSG\.[A-Za-z0-9_-]{20,24}\.[A-Za-z0-9_-]{40,50}\b",
    "mailgun": r"\bkey-[0-9a-f]{32}\b",
    "twilio": r"\bSK[0-9a-f]{32}\b",
    "telegram_bot": r"\b\d{8,10}:AA[A-Za-z0-9_-]{33}\b",
    "shopify": r"\bshp(?:at|ss|ca|pa)_[A-Fa-f0-9]{32}\b",
    "digitalocean": r"\bdo[por]_v1_[a-f0-9]{64}\b",
    "databricks": r"\bdapi[a-f0-9]{32}(?:-\d)?\b",
    "square": r"\bsq0(?:atp|csp)-[A-Za-z0-9_-]{22,}",
    "notion": r"\b(?:secret_[A-Za-z0-9]{43}|ntn_[A-Za-z0-9]{40,})\b",
    "replicate": r"\br8_[A-Za-z0-9]{37}\b",
    "groq": r"\bgsk_[A-Za-z0-9]{48,}\b",
    "azure_storage": r"(?i:AccountKey|SharedAccessKey)=[A-Za-z0-9+/]{40,}={0,2}",
    "age_secret_key": r"\bAGE-SECRET-KEY-1[0-9A-Z]{58}\b",
}
_TOKENS = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in TOKEN_FORMATS.items()))

# A PEM private key, from BEGIN to END (whatever label the END line carries), or, pasted
# without its END line, over the base64 and header lines that follow and a short last line.
# Lines break for real, or as \n escapes in a string (\\n once more inside a notebook's JSON).
_PEM_BREAK = r"(?:\\+[rn]|[ \t\r\n])+"
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]{0,20000}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    rf"|(?:{_PEM_BREAK}(?:[A-Za-z0-9+/]{{8,}}={{0,2}}|[A-Za-z-]+: [^\n\\'\"]+))*"
    rf"(?:{_PEM_BREAK}(?:[A-Za-z0-9+/]{{1,7}}={{0,2}}|={{1,2}})(?=\\|[\r\n'\"]|$))?)"
)
_AWS_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# scheme://[user]:password@host: the password may hold '@' and '/' (the host follows the last
# '@' of the authority); "host:8080/path/@x" is a port and a path, not a password.
_URL_CREDENTIALS = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'\"`<>]*):"
    r"(?P<password>[^\s'\"`<>]+)@(?=[^\s@'\"`<>/]*(?:[/?#:'\"`\s<>]|$))"
)
_PORT_AND_PATH = re.compile(r"\d+/")
# Authorization: Bearer xyz / "Authorization": "token xyz" / Bearer xyz on its own.
_AUTHORIZATION = re.compile(
    r"(?P<head>(?i:authorization|proxy-authorization)['\"]?\s*[:=,]\s*['\"]?(?:(?i:bearer|basic|token|digest)\s+)?"
    r"|\bBearer\s+)"
    r"(?P<value>[A-Za-z0-9._~+/-]{8,}=*)"
)
# An AWS secret access key: 40 characters of base64 (checked further by looks_like_aws_secret).
AWS_SECRET_CANDIDATE = re.compile(r"(?<![A-Za-z0-9/+=.:_-])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=.])")


def shannon_entropy(value: str) -> float:
    """Bits per character of `value` (random base64 is near 5 for 40 characters, English near 3)."""
    if not value:
        return 0.0
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def looks_like_aws_secret(value: str) -> bool:
    """40 base64 characters mixing upper case, lower case and digits, as random as a key."""
    return (
        len(value) == 40
        and not _wordy(value)
        and re.fullmatch(r"[A-Za-z0-9/+]{40}", value) is not None
        and any(c.isupper() for c in value)
        and any(c.islower() for c in value)
        and any(c.isdigit() for c in value)
        and shannon_entropy(value) >= 4.2
    )


def _wordy(value: str) -> bool:
    """Mostly runs of 4+ lower-case letters, as names are (`road_theta_default`) and keys are not."""
    return sum(len(run) for run in re.findall(r"[a-z]{4,}", value)) > len(value) / 2


def is_high_entropy(value: str) -> bool:
    """A random-looking key: 16+ characters of one key alphabet (hex or base64), little repetition."""
    if len(value) < 16 or not re.fullmatch(r"[A-Za-z0-9+/=_-]+", value) or _wordy(value):
        return False
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        return len(value) >= 20 and shannon_entropy(value) >= 3.0
    has_digit = any(c.isdigit() for c in value)
    has_letter = any(c.isalpha() for c in value)
    return has_digit and has_letter and shannon_entropy(value) >= 3.5


# One key alphabet each: a value mixing them ("org/Model-7B", "data/raw_2023") is a name or a path.
_KEY_ALPHABETS = (
    re.compile(r"[0-9a-fA-F]{8,}(?:-[0-9a-fA-F]{4,})*"),  # hex, UUIDs
    re.compile(r"[A-Za-z0-9+/]+={0,2}"),  # base64
    re.compile(r"[A-Za-z0-9_-]+={0,2}"),  # base64url, alphanumeric
)
_WORD = re.compile(r"[A-Z]?[a-z]{2,}|[A-Z]{2,}(?![a-z])")  # Model, seq, LM in AutoModelForSeq2SeqLM


def looks_like_token(value: str) -> bool:
    """A literal shaped like a key or token, for a string that sits beside a recognised credential.

    16+ characters of one key alphabet (hex, base64 or base64url: not a path, a URL or a file
    name), and either hex with 20+ digits, as keys, hashes and UUIDs are, or random-looking:
    upper case, lower case and digits, near the entropy of random text of its length, and
    under 90 % of its letters in words (`AutoModelForSeq2SeqLM` is words run together).
    Random keys of 32+ characters pass 98 % of the time, of 16 characters 88 %.
    """
    if len(value) < 16 or _wordy(value) or not any(p.fullmatch(value) for p in _KEY_ALPHABETS):
        return False
    hex_digits = value.replace("-", "")
    if re.fullmatch(r"[0-9a-fA-F]+", hex_digits):
        return len(hex_digits) >= 20 and not hex_digits.isdigit() and any(c.isdigit() for c in hex_digits)
    if not (any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() for c in value)):
        return False
    letters = sum(c.isalpha() for c in value)
    in_words = sum(len(word) for word in _WORD.findall(value))
    # random text of n characters has close to log2(n) bits per character (n <= 64)
    return in_words < 0.9 * letters and shannon_entropy(value) >= 0.8 * math.log2(min(len(value), 64))


# Words people leave where a value is to go: changeme, your_password, PUT_KEY_HERE, TODO.
_STAND_IN_WORDS = re.compile(
    r"(?i)change_?(?:me|it)|replace_?me|todo|fixme|tbd|none|null|your[\w -]*|(?:enter|insert)[_ -][\w -]*"
    r"|[\w-]*[_-]here"
)


def is_placeholder(value: str) -> bool:
    """A stand-in rather than a value: <PASSWORD>, ***, xxxx, ${VAR}, {password}, %(pw)s, $PW, changeme."""
    value = value.strip()
    if (value.startswith("<") and value.endswith(">")) or _STAND_IN_WORDS.fullmatch(value):
        return True
    if set(value) <= {"*", "x", "X", ".", "-", "_", "•"} or any(s in value for s in ("...", "…", "***")):
        return True
    return bool(re.fullmatch(r"\$\{?\w+\}?|%s|\?", value) or re.search(r"\{[^{}]*\}|%\(\w+\)s", value))


def scrub_formats(text: str, counts: Counter) -> str:
    """Replace private keys, issuer tokens, JWTs, URL passwords and Authorization values."""

    def replace(kind: str, count_as: str | None = None):
        def substitute(_match: re.Match) -> str:
            counts[count_as or kind] += 1
            return PLACEHOLDERS[kind]

        return substitute

    text = _PRIVATE_KEY.sub(replace("private_key"), text)
    text = _AWS_ACCESS_KEY_ID.sub(replace("aws_access_key_id"), text)

    def token(match: re.Match) -> str:
        counts[f"api_token_{match.lastgroup}"] += 1
        return PLACEHOLDERS["api_token"]

    text = _TOKENS.sub(token, text)
    text = _JWT.sub(replace("jwt"), text)

    def url(match: re.Match) -> str:
        password = match.group("password")
        if is_placeholder(password) or _PORT_AND_PATH.match(password):
            return match.group(0)
        counts["url_credentials"] += 1
        return f"{match.group('head')}:{PLACEHOLDERS['url_credentials']}@"

    text = _URL_CREDENTIALS.sub(url, text)

    def authorization(match: re.Match) -> str:
        value = match.group("value")
        if is_placeholder(value) or not (any(c.isdigit() for c in value) or len(value) >= 20):
            return match.group(0)
        counts["authorization_header"] += 1
        return match.group("head") + PLACEHOLDERS["authorization_header"]

    return _AUTHORIZATION.sub(authorization, text)
