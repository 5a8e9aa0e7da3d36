"""ghostframe-train: LoRA fine-tuning of a code model on the user's own data-science code.

The data side (`sources`, `notebooks`, `hygiene`, `dedup`, `split`, `corpus`) is public:
the evaluation command imports it so that it sees exactly the files training saw, and
never a training file in its valid split.
"""
