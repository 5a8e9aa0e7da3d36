"""`ghostframe-server`: start the language server on stdio (default) or TCP for debugging."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ghostframe.server import __version__


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ghostframe-server", description=__doc__)
    parser.add_argument("--model", default="", help="local HF folder, .gguf file or hub id (default: embedded SmolLM2-135M-Instruct)")
    parser.add_argument("--adapter", default="", help="LoRA adapter folder made by ghostframe-train")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--tcp", action="store_true", help="listen on TCP (127.0.0.1) instead of stdio, for debugging")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2087)
    parser.add_argument("--log-level", default=os.environ.get("GHOSTFRAME_LOG_LEVEL", "INFO"))
    parser.add_argument("--no-cpu-int8", action="store_true", help="keep float32 weights on CPU (default: int8 linear layers)")
    parser.add_argument("--plain", action="store_true", help="decode with plain model.generate (no speed-ups)")
    parser.add_argument("--no-prefix-cache", action="store_true", help="do not reuse KV caches across keystrokes")
    parser.add_argument("--no-prompt-lookup", action="store_true", help="do not draft tokens from the document")
    parser.add_argument("--no-typed-through", action="store_true", help="always run the model, even when the "
                        "user typed what the last suggestion began with")
    parser.add_argument("--version", action="version", version=f"ghostframe {__version__}")
    return parser.parse_args(argv)


def quiet_transformers() -> None:
    """No weight-loading progress bars or advice from transformers (server, trainer, bench)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def quiet_libraries() -> None:
    """Keep library progress bars and advice out of the editor's log."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    quiet_transformers()


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # stdout belongs to the protocol: anything else printed by any library goes to stderr.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    quiet_libraries()

    from ghostframe.server.engine import SpeedOptions
    from ghostframe.server.server import create_server
    from ghostframe.server.settings import Settings

    speed = SpeedOptions(plain=args.plain, prefix_cache=not args.no_prefix_cache,
                         prompt_lookup=not args.no_prompt_lookup, typed_through=not args.no_typed_through)
    ls = create_server(Settings(model=args.model, adapter=args.adapter, device=args.device,
                                cpu_int8=not args.no_cpu_int8), speed)
    if args.tcp:
        ls.start_tcp(args.host, args.port)
    else:
        ls.start_io(sys.stdin.buffer, protocol_out)


if __name__ == "__main__":
    main()
