"""llama-server as the peer in the benches: the server llama.vscode talks to, on the same GGUF file.

Either a `llama-server` binary (for instance one built for this very CPU, with `-DGGML_NATIVE=ON`)
or, by default, the llama.cpp build ghostframe itself runs (xllamacpp) serving HTTP in a
process of its own. It is started as llama.vscode's documentation starts it for completion
(`--cache-reuse 256`, batches of 1024, one slot), listening on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ghostframe.server.testing.llama_server import wait_healthy

_XLLAMACPP_SERVER = """
import sys, time, xllamacpp as x
p = x.CommonParams()
p.model.path, p.n_ctx, p.n_batch, p.n_ubatch = sys.argv[1], 8192, 1024, 1024
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = int(sys.argv[3])
p.n_parallel, p.n_cache_reuse, p.hostnames, p.port, p.verbosity = 1, 256, ["127.0.0.1"], int(sys.argv[2]), 1
server = x.Server(p)
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def add_peer_arguments(parser: argparse.ArgumentParser) -> None:
    """--peer, --peer-model and --threads: the llama-server a bench compares ghostframe with."""
    parser.add_argument("--peer", default="xllamacpp",
                        help="the llama-server to compare with: a llama-server binary's path, 'xllamacpp' (the same "
                             "llama.cpp build ghostframe runs, as an HTTP server in its own process) or 'none'")
    parser.add_argument("--peer-model", help="GGUF file or pinned model for the peer (default: --model, else the "
                                             "model ghostframe served)")
    parser.add_argument("--threads", type=int, help="threads for the peer (default: all cores, as ghostframe)")


def start_peer(args: argparse.Namespace, served: str | None) -> LlamaServerPeer:
    """The peer of `add_peer_arguments`, on --peer-model, else --model, else the model ghostframe `served`."""
    return LlamaServerPeer.start(args.peer, args.peer_model or args.model or served or "smollm2-135m",
                                 threads=args.threads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gguf_for(model: str) -> tuple[Path, str]:
    """The GGUF file for a pinned model's name or display name, or a .gguf path."""
    from ghostframe.server.inference.default_model import pinned_gguf_path, pinned_named

    if (pinned := pinned_named(model)) is not None:
        return pinned_gguf_path(pinned), pinned.display_name
    path = Path(model).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path, path.stem
    raise SystemExit(f"ghostframe: the llama-server peer needs a GGUF file or a pinned model, not {model!r}.")


@dataclass
class LlamaServerPeer:
    process: subprocess.Popen
    port: int
    model_name: str
    binary: str
    threads: int
    fim: bool  # the model has fill-in-the-middle tokens (/infill works)

    @classmethod
    def start(cls, binary: str, model: str, threads: int | None = None) -> LlamaServerPeer:
        from ghostframe.server.inference.llama_runtime import physical_cores

        gguf, name = gguf_for(model)
        threads = threads or physical_cores()
        port = free_port()
        if binary == "xllamacpp":
            command = [sys.executable, "-c", _XLLAMACPP_SERVER, str(gguf), str(port), str(threads)]
        else:
            command = [binary, "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port), "-t", str(threads),
                       "-tb", str(threads), "-c", "8192", "-b", "1024", "-ub", "1024", "--cache-reuse", "256",
                       "-np", "1", "--log-disable"]
        from ghostframe.server.inference.gguf_files import gguf_tokenizer_and_facts
        from ghostframe.server.inference.prompt import fim_tokens

        fim = fim_tokens(gguf_tokenizer_and_facts(gguf)[0]) is not None
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer = cls(process, port, name, binary, threads, fim)
        peer._wait_healthy()
        return peer

    def _wait_healthy(self, timeout: float = 300) -> None:
        try:
            wait_healthy(self.process, self.port, timeout)
        except (RuntimeError, TimeoutError) as exc:
            raise SystemExit(f"ghostframe: {exc} ({self.binary})") from None

    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        try:
            connection.request(method, path, body=json.dumps(body).encode() if body is not None else None,
                               headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            return json.loads(response.read().decode() or "{}")
        finally:
            connection.close()

    def get(self, path: str) -> dict:
        return self._request("GET", path)

    def post(self, path: str, body: dict) -> dict:
        return self._request("POST", path, body)

    def describe(self) -> str:
        where = "xllamacpp's build" if self.binary == "xllamacpp" else os.path.basename(self.binary)
        return f"{where}, {self.threads} threads"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
