"""Which model to run and how: the options every command takes, declared once.

`ghostframe-server`, `ghostframe complete`, `ghostframe bench`, `ghostframe-eval` and
`ghostframe-train` all read these fields through `add_model_arguments`, and a tool that
starts a server passes them on with `server_args`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

from ghostframe.server.inference.remote_client import ENDPOINT_APIS, Endpoint

DEVICES = ("auto", "cpu", "cuda")
# What the weights run in on a CPU; auto measures which is fastest on this CPU (precision.py).
PRECISIONS = ("auto", "int8", "float32", "bfloat16")
# Which runtime runs the model; auto: llama.cpp for GGUF models on a CPU, torch elsewhere (model_loading.choose_engine).
ENGINES = ("auto", "torch", "llama", "remote")  # remote: a team server at --endpoint (remote_engine)
# Speculative decoding on the llama.cpp engine; auto: what measured faster for the model (llama_loading).
SPECULATIONS = ("auto", "none", "ngram", "draft")


@dataclass(frozen=True)
class ModelOptions:
    model: str = field(default="", metadata={
        "help": "a pinned model (smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), a local HF folder, "
                "a .gguf file or a hub id (default: auto, the pinned model chosen for this device)"})
    adapter: str = field(default="", metadata={"help": "LoRA adapter folder made by ghostframe-train"})
    device: str = field(default="auto", metadata={"help": "where the model runs", "choices": DEVICES})
    precision: str = field(default="auto", metadata={
        "help": "what the weights run in on CPU: auto times int8, float32 (and bfloat16 where the CPU "
                "has it) once per model and CPU and keeps the fastest", "choices": PRECISIONS})
    cpu_int8: bool = field(default=True, metadata={"help": "--no-cpu-int8 is --precision float32 (older spelling)"})
    engine: str = field(default="auto", metadata={
        "help": "what runs the model: auto uses llama.cpp for GGUF models (the pinned ones) on a CPU and torch "
                "elsewhere (GPUs, Hugging Face folders)", "choices": ENGINES})
    speculation: str = field(default="auto", metadata={
        "help": "speculative decoding on the llama.cpp engine: ngram drafts from the text, draft has "
                "Qwen2.5-Coder-0.5B draft for the 1.5B; auto: what measured faster (none on CPUs)",
        "choices": SPECULATIONS})
    force_adapter: bool = field(default=False, metadata={
        "help": "load the adapter even if its training run's evaluation gate did not approve it"})
    endpoint: str = field(default="", metadata={
        "help": "with --engine remote: the team server's URL (llama-server or an OpenAI-compatible server); "
                "the prompt (the code around the cursor and workspace context) is sent there"})
    endpoint_api: str = field(default="llama-server", metadata={
        "help": "what the endpoint speaks: llama-server's /completion, openai's /v1/completions (vLLM, "
                "SGLang, llama-server) or ollama's /api/generate", "choices": ENDPOINT_APIS})
    endpoint_model: str = field(default="", metadata={
        "help": "the model an OpenAI-compatible or Ollama endpoint is asked for (openai's default: the first "
                "it lists)"})
    ca_file: str = field(default="", metadata={"help": "a CA bundle to verify the https endpoint with"})
    allow_insecure_http: bool = field(default=False, metadata={
        "help": "allow plain http to an endpoint on another machine (the prompt and API key travel unencrypted)"})

    @property
    def cpu_precision(self) -> str:
        """The precision asked for, with --no-cpu-int8 read as float32."""
        return self.precision if self.cpu_int8 else "float32"

    def remote_endpoint(self) -> Endpoint | None:
        """The endpoint of --engine remote (API key from GHOSTFRAME_API_KEY), None for local engines;
        remote_client.EndpointError when it must not be used as given."""
        if self.engine != "remote":
            return None
        return Endpoint.from_settings(self.endpoint, self.endpoint_api, self.endpoint_model, self.ca_file,
                                      self.allow_insecure_http)

    @classmethod
    def from_args(cls, args: argparse.Namespace, **overrides) -> ModelOptions:
        values = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
        values.update(overrides)
        return cls(**values)

    def server_args(self) -> list[str]:
        """The `ghostframe-server` command-line arguments that select this model."""
        out = ["--device", self.device]
        if self.model:
            out += ["--model", self.model]
        if self.adapter:
            out += ["--adapter", self.adapter]
        if self.cpu_precision != "auto":
            out += ["--precision", self.cpu_precision]
        if self.engine != "auto":
            out += ["--engine", self.engine]
        if self.speculation != "auto":
            out += ["--speculation", self.speculation]
        if self.force_adapter:
            out.append("--force-adapter")
        if self.endpoint:
            out += ["--endpoint", self.endpoint, "--endpoint-api", self.endpoint_api]
        if self.endpoint_model:
            out += ["--endpoint-model", self.endpoint_model]
        if self.ca_file:
            out += ["--ca-file", self.ca_file]
        if self.allow_insecure_http:
            out.append("--allow-insecure-http")
        return out


def add_model_arguments(parser: argparse.ArgumentParser, *, adapter: str = "one") -> None:
    """Add --model/--adapter/--device/--precision (and --no-cpu-int8, --force-adapter);
    `adapter` is "one", "many" (repeatable, never gated) or "none"."""
    group = parser.add_argument_group("model")
    for f in fields(ModelOptions):
        option = "--" + f.name.replace("_", "-")
        if f.name in ("adapter", "force_adapter") and adapter != "one":
            if f.name == "force_adapter" or adapter == "none":
                continue  # the evaluation measures any adapter; the trainer takes none
            if adapter == "many":
                group.add_argument(option, action="append", default=[],
                                   help=f.metadata["help"] + "; repeat to compare several")
                continue
        if isinstance(f.default, bool):
            group.add_argument(option, action=argparse.BooleanOptionalAction, default=f.default,
                               help=f.metadata["help"])
        else:
            group.add_argument(option, default=f.default, choices=f.metadata.get("choices"),
                               help=f.metadata["help"])
