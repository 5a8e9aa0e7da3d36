"""Tools around the server: the `ghostframe` terminal command, an LSP client, benchmarks."""
