"""The training loop, its loss, checkpoints, metrics and throughput benchmark."""
