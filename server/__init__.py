"""ghostframe language server: local ghost-text completion for data-science Python."""

__version__ = "0.1.0"
