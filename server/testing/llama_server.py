"""A real llama-server for tests and the load bench: xllamacpp's HTTP server in a process of its own.

What a team would run (`llama-server -m model.gguf --parallel N --lora adapter.gguf --api-key KEY`),
from the llama.cpp build ghostframe already has, listening on 127.0.0.1 only. Stopped with
`stop()` (or when the test process ends: it is a child process).
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

_SCRIPT = """
import json, sys, time, xllamacpp as x
c = json.loads(sys.argv[1])
p = x.CommonParams()
p.model.path, p.n_parallel, p.n_ctx = c["gguf"], c["parallel"], c["parallel"] * c["slot_tokens"]
p.n_batch = p.n_ubatch = 512
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = c["threads"]
p.hostnames, p.port, p.verbosity = ["127.0.0.1"], c["port"], 1
p.endpoint_metrics = True  # tokens_predicted_total: how far a closed stream went on
if c["api_key"]:
    p.api_keys = [c["api_key"]]
if c["lora"]:
    p.lora_adapters = [x.CommonAdapterLoraInfo(path, 1.0) for path in c["lora"]]
server = x.Server(p)
print("ready", flush=True)
while True:
    time.sleep(3600)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LlamaServer:
    """A running llama-server; `url` is where to send requests."""

    process: subprocess.Popen
    port: int
    config: dict = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, gguf: Path, *, parallel: int = 1, lora: tuple[Path, ...] = (), api_key: str = "",
              threads: int = 1, slot_tokens: int = 2048, port: int | None = None,
              timeout: float = 120) -> LlamaServer:
        config = {"gguf": str(gguf), "parallel": parallel, "lora": [str(p) for p in lora], "api_key": api_key,
                  "threads": threads, "slot_tokens": slot_tokens, "port": port or free_port()}
        server = cls(cls._spawn(config), config["port"], config)
        server.wait_healthy(timeout)
        return server

    @staticmethod
    def _spawn(config: dict) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.process.returncode}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError("llama-server did not become ready")

    def metrics(self) -> dict[str, float]:
        """llama-server's /metrics (Prometheus text) as {name: value}."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        connection.request("GET", "/metrics", headers={"Authorization": f"Bearer {self.config['api_key']}"})
        text = connection.getresponse().read().decode()
        return {name: float(value) for name, _, value in (line.rpartition(" ") for line in text.splitlines())
                if name and not name.startswith("#")}

    def restart(self, timeout: float = 120) -> None:
        """Start it again on the same port (after `stop`): a server that comes back."""
        self.process = self._spawn(self.config)
        self.wait_healthy(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
