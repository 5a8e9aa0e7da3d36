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
p.n_batch = p.n_ubatch = c["batch"]
p.cpuparams.n_threads = p.cpuparams_batch.n_threads = c["threads"]
p.hostnames, p.port, p.verbosity = ["127.0.0.1"], c["port"], 1
p.endpoint_metrics = True  # tokens_predicted_total: how far a closed stream went on
if c["prompt_cache_mib"] is not None:
    p.cache_ram_mib = c["prompt_cache_mib"]  # 0: a slot's evicted prompt is not kept in memory
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


def wait_healthy(process: subprocess.Popen, port: int, timeout: float) -> None:
    """Until the llama-server `process` listening on `port` answers /health; RuntimeError if it exits,
    TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama-server exited with {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise TimeoutError("llama-server did not become ready")


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
              threads: int = 1, slot_tokens: int = 2048, port: int | None = None, prompt_cache_mib: int | None = None,
              batch: int = 512, timeout: float = 120) -> LlamaServer:
        """`prompt_cache_mib`: llama-server's `--cache-ram` (None: its default, 8 GiB); `batch`: its
        `--batch-size` and `--ubatch-size`, the most prompt tokens one step computes for all slots."""
        config = {"gguf": str(gguf), "parallel": parallel, "lora": [str(p) for p in lora], "api_key": api_key,
                  "threads": threads, "slot_tokens": slot_tokens, "port": port or free_port(),
                  "prompt_cache_mib": prompt_cache_mib, "batch": batch}
        server = cls(cls._spawn(config), config["port"], config)
        server.wait_healthy(timeout)
        return server

    @staticmethod
    def _spawn(config: dict) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", _SCRIPT, json.dumps(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def wait_healthy(self, timeout: float = 120) -> None:
        wait_healthy(self.process, self.port, timeout)

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
