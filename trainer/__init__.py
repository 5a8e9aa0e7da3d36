"""ghostframe-train: LoRA fine-tuning of a code model on the user's own data-science code.

    data/        discovery -> hygiene -> filter -> scrub -> dedup -> split -> pack
    training/    the loop, loss, checkpoints, metrics, throughput benchmark
    evaluation/  held-out next-line accuracy (`ghostframe-eval`)
"""
