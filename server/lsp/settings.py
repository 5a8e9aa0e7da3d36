"""User settings (`ghostframe.*`), parsed from LSP initializationOptions or didChangeConfiguration.

Keys are camelCase on the wire and snake_case here. A value of the wrong type or out
of range falls back to its default and is reported, so one typo never stops completion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ghostframe.server.inference.model_options import DEVICES, ENGINES, PRECISIONS
from ghostframe.server.inference.remote_client import ENDPOINT_APIS


def setting(default: Any, description: str, *, minimum: int | None = None, maximum: int | None = None,
            enum: tuple[str, ...] | None = None, scope: str = "window") -> Any:
    """A settings field with everything the editor's schema needs: one definition per setting.

    `package.json`'s `contributes.configuration`, the extension's defaults and clamps, and the
    READMEs' settings tables are all derived from these fields (see `schema()`).
    """
    meta = {"description": description, "minimum": minimum, "maximum": maximum, "enum": enum, "scope": scope}
    return field(default=default, metadata={k: v for k, v in meta.items() if v is not None})


@dataclass(frozen=True)
class Settings:
    model: str = setting("", "A local Hugging Face model folder, a `.gguf` file or a hub id. "
                         "Empty: the embedded default model.", scope="machine-overridable")
    adapter: str = setting("", "A LoRA adapter folder made by `ghostframe-train`, or with engine `remote` the name "
                           "of an adapter the team server serves. Empty: none.",
                           scope="machine-overridable")
    force_adapter: bool = setting(False, "Load the adapter even if its training run's evaluation gate did not "
                                  "approve it (found it no better than the base model, or worse).",
                                  scope="machine-overridable")
    device: str = setting("auto", "Where the model runs: `auto` picks the GPU when there is one.", enum=DEVICES)
    engine: str = setting("auto", "What runs the model: `auto` uses llama.cpp for GGUF models (the pinned ones) on a "
                          "CPU and torch on a GPU or for Hugging Face folders; `remote`: the team server at "
                          "`ghostframe.endpoint`.", enum=ENGINES)
    endpoint: str = setting("", "With engine `remote`: the team server's URL (llama-server, or an OpenAI-compatible "
                            "server such as vLLM), e.g. `https://gpu-box:8012`. The prompt (the code around the "
                            "cursor and context from the workspace) is sent there. The API key is set with "
                            "**ghostframe: Set API key** (or `GHOSTFRAME_API_KEY`). Empty: nothing leaves this "
                            "machine.", scope="machine")
    endpoint_api: str = setting("llama-server", "What the endpoint speaks: `llama-server` (its `/completion`), "
                                "`openai` (`/v1/completions`: vLLM, SGLang, llama-server) or `ollama` "
                                "(`/api/generate`).", enum=ENDPOINT_APIS)
    endpoint_model: str = setting("", "The model an `openai` or `ollama` endpoint is asked for (empty with `openai`: "
                                  "the first it lists); `ghostframe.adapter` names a server-side adapter instead "
                                  "when set.")
    ca_file: str = setting("", "A CA bundle (PEM) to verify the https endpoint with. Empty: the system's.",
                           scope="machine")
    allow_insecure_http: bool = setting(False, "Allow plain `http` to an endpoint on another machine (your code "
                                        "and the API key then cross the network unencrypted). `http` to this "
                                        "machine (localhost) is always allowed.", scope="machine")
    precision: str = setting("auto", "What the weights run in on a CPU: `auto` times int8, float32 (and bfloat16 "
                             "where the CPU has it) once per model and CPU and keeps the fastest.", enum=PRECISIONS)
    max_new_tokens: int = setting(64, "Most tokens in one suggestion.", minimum=1, maximum=512)
    max_prompt_tokens: int = setting(1024, "Most tokens of the file given to the model as context.",
                                     minimum=16, maximum=32768)
    multiline: bool = setting(True, "Suggest whole blocks after a line that opens one (`def`, `for`, ...); "
                              "otherwise one line at a time.")
    enable: bool = setting(True, "Show inline suggestions.")
    show_filter: bool = setting(True, "Hide suggestions that are unlikely to be taken: the model is unsure of "
                                "them, or they add only a few characters at a line's end. Off: show every "
                                "suggestion.")
    repo_context: bool = setting(True, "Give the model code from your other workspace files: definitions of the "
                                 "names this file imports and the most similar code elsewhere. Files are read "
                                 "inside the workspace folders only and leave this machine only in the prompt sent to "
                                 "`ghostframe.endpoint` when one is set.")
    data_context: bool = setting(True, "Give the model the column names (never values) of data files the code "
                                 "reads inside the workspace, such as `pd.read_csv(\"sales.csv\")` or `pd.read_csv(DATA / \"sales.csv\")`.")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _check(f: dataclasses.Field, value: Any) -> str | None:
    """Why `value` is not acceptable for setting `f`, or None when it is."""
    meta = f.metadata
    if isinstance(f.default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(f.default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return "expected a whole number"
        low, high = meta["minimum"], meta["maximum"]
        return None if low <= value <= high else f"expected a number from {low} to {high}"
    if not isinstance(value, str):
        return "expected a string"
    if "enum" in meta and value.lower() not in meta["enum"]:
        return f"expected one of {', '.join(meta['enum'])}"
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
    legacy = raw.get("cpuInt8", raw.get("cpu_int8"))  # before `precision`: false meant float32
    if legacy is not None and "precision" not in raw:
        if isinstance(legacy, bool):
            values["precision"] = "auto" if legacy else "float32"
        else:
            problems.append(f"ghostframe.cpuInt8 = {legacy!r} is invalid (expected true or false; "
                            "it is now ghostframe.precision); ignoring it.")
    for f in dataclasses.fields(Settings):
        key = camel(f.name)
        if key not in raw and f.name not in raw:
            continue
        value = raw.get(key, raw.get(f.name))
        if value is None:
            continue
        if (why := _check(f, value)) is not None:
            problems.append(f"ghostframe.{key} = {value!r} is invalid ({why}); using {getattr(defaults, f.name)!r}.")
            value = getattr(defaults, f.name)
        values[f.name] = value.lower() if "enum" in f.metadata else value
    return dataclasses.replace(base, **values), problems


# --------------------------------------------------------------------------- the editor's schema

_JSON_TYPES = {bool: "boolean", int: "integer", str: "string"}


def schema() -> dict[str, dict]:
    """`contributes.configuration.properties` for every server setting, in declaration order.

    The VS Code extension's `package.json` is generated from this (`npm run settings` in
    client-vscode/), and tests/test_settings_schema.py fails when the two disagree.
    """
    properties = {}
    for f in dataclasses.fields(Settings):
        meta = f.metadata
        entry: dict[str, Any] = {"type": _JSON_TYPES[type(f.default)], "default": f.default}
        if "enum" in meta:
            entry["enum"] = list(meta["enum"])
        for bound in ("minimum", "maximum"):
            if bound in meta:
                entry[bound] = meta[bound]
        entry["markdownDescription"] = meta["description"]
        entry["scope"] = meta["scope"]
        properties[f"ghostframe.{camel(f.name)}"] = entry
    return properties


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m ghostframe.server.lsp.settings",
                                     description="The server's settings, as the editor's schema.")
    parser.add_argument("--schema", action="store_true", required=True,
                        help="print contributes.configuration.properties (JSON) for package.json")
    parser.parse_args()
    print(json.dumps(schema(), indent=2))
