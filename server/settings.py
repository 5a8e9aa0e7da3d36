"""User settings (`ghostframe.*`), parsed from LSP initializationOptions or didChangeConfiguration.

Keys are camelCase on the wire and snake_case here. A value of the wrong type or out
of range falls back to its default and is reported, so one typo never stops completion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class Settings:
    model: str = ""              # "" = the embedded default model
    adapter: str = ""            # "" = no adapter
    device: str = "auto"
    cpu_int8: bool = True        # int8 weights when running on CPU (2-3x faster decoding)
    max_new_tokens: int = 64
    max_prompt_tokens: int = 1024
    multiline: bool = True
    enable: bool = True


_LIMITS = {"max_new_tokens": (1, 512), "max_prompt_tokens": (16, 32768)}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)



def _check(name: str, value: Any, default: Any) -> str | None:
    """Why `value` is not acceptable for setting `name`, or None when it is."""
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected a whole number"
        low, high = _LIMITS[name]
        return None if low <= value <= high else f"expected a number from {low} to {high}"
    if not isinstance(value, str):
        return "expected a string"
    if name == "device" and value.lower() not in DEVICES:
        return f"expected one of {', '.join(DEVICES)}"
    return None


def unwrap(options: Any) -> dict:
    """Accept `{ghostframe: {...}}`, `{settings: {ghostframe: {...}}}` or the bare dict."""
    if not isinstance(options, dict):
        return {}
    if isinstance(options.get("settings"), dict):
        options = options["settings"]
    inner = options.get("ghostframe")
    return inner if isinstance(inner, dict) else options


def parse_settings(options: Any, base: Settings = Settings()) -> tuple[Settings, list[str]]:
    """Return settings from a client payload on top of `base`, and a message per rejected value.

    Unknown keys are ignored (editors send their own); a missing key keeps `base`'s value.
    """
    raw = unwrap(options)
    defaults = Settings()
    values: dict[str, Any] = {}
    problems = []
    for field in dataclasses.fields(Settings):
        key = camel(field.name)
        if key not in raw and field.name not in raw:
            continue
        value = raw.get(key, raw.get(field.name))
        if value is None:
            continue
        if (why := _check(field.name, value, getattr(defaults, field.name))) is not None:
            problems.append(f"ghostframe.{key} = {value!r} is invalid ({why}); using {getattr(defaults, field.name)!r}.")
            value = getattr(defaults, field.name)
        values[field.name] = value.lower() if field.name == "device" else value
    return dataclasses.replace(base, **values), problems
