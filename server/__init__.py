"""ghostframe language server: local ghost-text completion for data-science Python.

    inference/  the core every part imports: model loading, prompt, decoding, engine
    lsp/        the language server (protocol only; handlers stay thin)
    tools/      terminal CLI, an LSP client, benchmarks
    testing/    random-weight models for tests and shape benchmarks
"""

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "ghostframe-lsp"

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
