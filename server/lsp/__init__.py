"""The language server: LSP handlers, settings, documents and the `ghostframe-server` command."""
