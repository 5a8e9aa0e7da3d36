"""`ghostframe-server`: start the language server on stdio (default) or TCP for debugging."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ghostframe.server import __version__
from ghostframe.server.inference.model_options import ModelOptions, add_model_arguments


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ghostframe-server", description=__doc__)
    add_model_arguments(parser)
    parser.add_argument("--tcp", action="store_true",
                        help="listen on TCP instead of stdio, for debugging only: any local process (any user "
                             "on this machine) can connect to the port and read what the editor sends. One "
                             "client at a time; a second connection is refused, and the server ends when its "
                             "client disconnects")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on with --tcp (default 127.0.0.1, "
                        "this machine only)")
    parser.add_argument("--port", type=int, default=2087, help="port to listen on with --tcp (default 2087)")
    parser.add_argument("--log-level", default=os.environ.get("GHOSTFRAME_LOG_LEVEL", "INFO"))
    parser.add_argument("--plain", action="store_true", help="decode with plain model.generate (no speed-ups)")
    parser.add_argument("--no-prefix-cache", action="store_true", help="do not reuse KV caches across keystrokes")
    parser.add_argument("--prompt-lookup", action="store_true",
                        help="draft tokens from the document (each request then starts from a new KV cache)")
    parser.add_argument("--no-typed-through", action="store_true", help="always run the model, even when the "
                        "user typed what the last suggestion began with")
    parser.add_argument("--no-warm", action="store_true", help="do not prefill a document's cache in the background "
                        "when it is opened or edited")
    parser.add_argument("--no-prefetch", action="store_true", help="do not compute the next line's suggestion in the "
                        "background after a suggestion at the end of a line")
    parser.add_argument("--cold-window", choices=("short", "full"), default="short",
                        help="a request at a place whose window is not prefilled yet: 'short' (default) answers from "
                             "the part of the window prefilled in 0.5 s and warms the rest behind it; 'full' waits "
                             "for the whole window")
    parser.add_argument("--version", action="version", version=f"ghostframe {__version__}")
    return parser.parse_args(argv)


def speed_options(args: argparse.Namespace):
    """The engine's speed-ups as the command line sets them."""
    from ghostframe.server.inference.engine import COLD_BUDGET_SECONDS, SpeedOptions

    return SpeedOptions(plain=args.plain, prefix_cache=not args.no_prefix_cache, prompt_lookup=args.prompt_lookup,
                        typed_through=not args.no_typed_through, warm=not args.no_warm, prefetch=not args.no_prefetch,
                        cold_budget=COLD_BUDGET_SECONDS if args.cold_window == "short" else None)


def main(argv=None) -> None:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logging.getLogger().level > logging.DEBUG:  # pygls logs every message it sends at INFO
        logging.getLogger("pygls").setLevel(logging.WARNING)
    # stdout belongs to the protocol: anything else printed by any library goes to stderr.
    protocol_out = sys.stdout.buffer
    sys.stdout = sys.stderr
    from ghostframe.server.inference.quiet import quiet_libraries

    quiet_libraries()

    from ghostframe.server.lsp.server import create_server
    from ghostframe.server.lsp.settings import Settings

    speed = speed_options(args)
    model = ModelOptions.from_args(args)
    ls = create_server(Settings(model=model.model, adapter=model.adapter, device=model.device, engine=model.engine,
                                precision=model.cpu_precision, force_adapter=model.force_adapter,
                                endpoint=model.endpoint, endpoint_api=model.endpoint_api,
                                endpoint_model=model.endpoint_model, ca_file=model.ca_file,
                                allow_insecure_http=model.allow_insecure_http), speed,
                       model.speculation)
    if args.tcp:
        code = ls.start_tcp(args.host, args.port)
    else:
        code = ls.start_io(sys.stdin.buffer, protocol_out)
    # LSP: 0 after shutdown + exit, 1 otherwise. Exit now, without waiting for a model load
    # or a generation still running on the worker thread: the editor asked the process to end.
    logging.shutdown()
    sys.stderr.flush()
    protocol_out.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
