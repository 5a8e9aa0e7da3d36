"""Which names hold secrets, and which values given to them could be one.

A name is split into words (snake_case, camelCase, dotted, dashed) and judged as a whole:
`db_password`, `pw`, `client_secret` hold a password ("password": any value that is not a
stand-in counts, however short, since a password is a secret whatever its length);
`AWS_SECRET_ACCESS_KEY`, `X-API-Key`, `apiKey` hold secrets ("strong": tokens and keys are
never under 4 characters, so shorter values are stand-ins);
`signing_key`, `salt`, `auth` may ("weak": only a random-looking value counts); names
whose last word describes a secret rather than holding one (`token_pattern`,
`password_field`, `SECRET_ENV_VAR`) and tokenizer vocabulary (`eos_token`, `pad_token`)
hold none.
"""

from __future__ import annotations

import re

from ghostframe.trainer.data.secret_formats import is_high_entropy, is_placeholder

PASSWORD = "password"
STRONG = "strong"
WEAK = "weak"
_RANK = (PASSWORD, STRONG, WEAK)  # strongest first

_STRONG_WORDS = frozenset({
    "password", "passwd", "pwd", "passphrase", "passcode", "secret", "secrets", "token", "apikey",
    "accesskey", "secretkey", "privatekey", "authtoken", "accesstoken", "credential", "credentials",
})
_STRONG_PAIRS = frozenset({
    ("api", "key"), ("access", "key"), ("secret", "key"), ("private", "key"), ("auth", "key"),
    ("master", "key"), ("encryption", "key"), ("signing", "key"), ("account", "key"), ("app", "key"),
    ("subscription", "key"), ("license", "key"), ("client", "secret"), ("api", "secret"),
})
_PASSWORD_WORDS = frozenset({"password", "passwd", "pwd", "passphrase", "passcode", "secret"})
_PASSWORD_LAST_WORDS = frozenset({"pass", "pw"})  # db_pass, user_pw (but not pass_through)
_WEAK_WORDS = frozenset({
    "key", "auth", "signature", "sig", "salt", "hmac", "cred", "creds", "dsn", "conn", "sas", "bearer",
})
# Words after which a name is about a secret, not holding one.
_DESCRIBING_LAST_WORDS = frozenset({
    "type", "types", "pattern", "regex", "re", "name", "names", "field", "fields", "label", "prompt", "hint",
    "header", "column", "col", "cols", "len", "length", "count", "env", "var", "file", "filename", "path",
    "dir", "url", "uri", "endpoint", "policy", "format", "fmt", "kind", "style", "id", "ids", "prefix",
    "suffix", "size", "min", "max", "limit", "template", "placeholder", "msg", "message", "help",
    "description", "doc", "mode", "method", "algorithm", "algo", "scheme", "location", "source", "provider",
    "param", "params", "arg", "option", "options", "required", "enabled", "visible", "widget", "input",
    "validator", "strength", "attr", "attribute", "class", "cls", "index", "idx", "position", "pos",
    "expiry", "expires", "ttl", "timeout", "version", "keyword", "sep", "separator",
    # what NLP code calls a token: its text, id, embedding, score...
    "str", "text", "string", "dim", "dims", "embedding", "embeddings", "emb", "logits", "logprob", "prob",
    "probs", "score", "scores", "weight", "weights", "delta", "bias", "offset", "offsets", "num", "list",
    "map", "mapping", "dict", "array", "tensor", "span", "spans", "budget", "usage", "cost", "rate", "level",
    "flag", "status", "state", "cache", "store", "storage", "manager", "handler", "loader", "callback",
})
# Values that name a secret rather than being one: "X-Access-Token", "my_secret_key", "expired_token".
_SECRET_WORDS_IN_VALUES = frozenset({
    "password", "passwd", "secret", "token", "key", "apikey", "auth", "credential", "credentials", "pwd",
    "pw",  # not "pass": a test database's password often is "pass"
})
# Tokenizer vocabulary: eos_token = "</s>", pad_token = "[PAD]", additional_special_tokens.
_VOCABULARY_WORDS = frozenset({
    "bos", "eos", "pad", "unk", "sep", "cls", "mask", "special", "start", "end", "stop", "oov", "sos",
    "image", "img", "video", "audio", "bpe", "word", "sub", "split", "new", "begin", "think", "tool",
    "chat", "fim", "middle", "eot", "eom", "boundary", "unknown", "padding", "null", "blank", "space",
})


def name_words(name: str) -> list[str]:
    """`dbPassword` -> [db, password]; `X-API-Key` -> [x, api, key]; `os.environ` -> [os, environ]."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip("'\"` "))
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return [word for word in re.split(r"[^A-Za-z0-9]+", name.lower()) if word]


def secret_name_strength(name: str) -> str | None:
    """PASSWORD, STRONG, WEAK or None for the name a value is given to."""
    words = name_words(name)
    if not words or words[-1] in _DESCRIBING_LAST_WORDS:
        return None
    strong = False
    for i, word in enumerate(words):
        before = words[i - 1] if i else ""
        if word in ("token", "tokens") or (word.endswith("token") and word not in _STRONG_WORDS):
            if before in _VOCABULARY_WORDS or word[: -len("token")] in _VOCABULARY_WORDS:
                return None  # tokenizer vocabulary, not a credential
            strong = strong or word == "token" or word.endswith("token")
        elif word in _STRONG_WORDS or (before, word) in _STRONG_PAIRS:
            strong = True
    if words[-1] in _PASSWORD_LAST_WORDS or (strong and _PASSWORD_WORDS & set(words)):
        return PASSWORD
    if strong:
        return STRONG
    if any(word in _WEAK_WORDS for word in words):
        return WEAK
    return None


def strongest(strengths: list[str | None]) -> str | None:
    """The strongest of the strengths of the names one value is given to (None if none is a secret name)."""
    return next((strength for strength in _RANK if strength in strengths), None)


def could_be_secret(value: str, strength: str = STRONG) -> bool:
    """A value given to a PASSWORD or STRONG name that is worth hiding: not empty, a stand-in, a
    label or a sentence (and, for a STRONG name, 4 characters or more)."""
    stripped = value.strip()
    if not stripped or is_placeholder(stripped) or (strength != PASSWORD and len(stripped) < 4):
        return False
    words = name_words(stripped)
    if all(word.isalpha() for word in words) and _SECRET_WORDS_IN_VALUES & set(words):
        return False  # names a secret ("X-Access-Token", "my_secret_key", "pw"): a label or an example
    return len(stripped.split()) <= 3


def is_code_word(value: str) -> bool:
    """True/False/None, a number, or a (dotted) identifier without digits: code, not a secret."""
    return bool(re.fullmatch(r"[-+]?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z_]*(?:\.[A-Za-z_]+)*", value))


def looks_secret_in_prose(value: str) -> bool:
    """An unquoted value in a comment or docstring (`password: hunter2`), not a word (`password: str`)."""
    if len(value) < 6 or is_placeholder(value) or is_code_word(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_letter = any(c.isalpha() for c in value)
    has_symbol = any(c in "!@#$%^&*+?~" for c in value)
    return (has_digit and (has_letter or len(value) >= 6)) or (has_symbol and has_letter) or is_high_entropy(value)


def value_is_secret(strength: str | None, value: str) -> bool:
    if strength in (PASSWORD, STRONG):
        return could_be_secret(value, strength)
    if strength == WEAK:
        return is_high_entropy(value.strip())
    return False
