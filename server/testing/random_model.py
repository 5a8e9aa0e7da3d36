"""Random-weight models with a real tokenizer, for tests and benchmarks without downloads.

`tiny` is small enough for protocol tests on a CPU; `smollm2-135m` has the default
model's exact shape, so GPU benchmarks measure the same arithmetic as the real model.
`tiny-qwen2` and `qwen2.5-coder-1.5b` are Qwen2 models whose tokenizer has Qwen's
fill-in-the-middle and end tokens, for the code-model family.
"""

from __future__ import annotations

from pathlib import Path

SHAPES = {
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1024),
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152),
}
QWEN2_SHAPES = {
    "tiny-qwen2": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=1024),
    "qwen2.5-coder-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                               num_attention_heads=12, num_key_value_heads=2, vocab_size=151936),
}
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_SPECIAL_TOKENS = [*SPECIAL_TOKENS, "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                        "<|repo_name|>", "<|file_sep|>"]

_TRAINING_TEXT = '''
import pandas as pd
import numpy as np
import matplotlib.pyplot as plt
import seaborn as sns
from sklearn.model_selection import train_test_split
from sklearn.linear_model import LogisticRegression
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, classification_report

df = pd.read_csv("data.csv")
df = df.dropna()
df["total"] = df["price"] * df["quantity"]
print(df.head())
print(df.describe())
X = df.drop(columns=["target"])
y = df["target"]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
model = RandomForestClassifier(n_estimators=100)
model.fit(X_train, y_train)
y_pred = model.predict(X_test)
print(accuracy_score(y_test, y_pred))
fig, ax = plt.subplots(figsize=(8, 6))
sns.histplot(df["total"], ax=ax)
plt.show()
def load_data(path):
    return pd.read_csv(path)
class Pipeline:
    def __init__(self, steps):
        self.steps = steps
    def fit(self, X, y=None):
        for step in self.steps:
            X = step.fit_transform(X, y)
        return self
'''


def build_tokenizer(vocab_size: int = 1024, special_tokens: list[str] = SPECIAL_TOKENS):
    """A byte-level BPE tokenizer trained in a fraction of a second on a little pandas code."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=min(vocab_size, 1024), special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator([_TRAINING_TEXT] * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
        unk_token="<|endoftext|>", pad_token="<|endoftext|>",
        additional_special_tokens=special_tokens[1:],
    )


def build_random_model(path: str | Path, shape: str = "tiny", seed: int = 0) -> Path:
    """Write a random-weight Llama (or Qwen2) model and its tokenizer to `path` (a from_pretrained folder)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    qwen2 = shape in QWEN2_SHAPES
    tokenizer = build_tokenizer(special_tokens=QWEN2_SPECIAL_TOKENS if qwen2 else SPECIAL_TOKENS)
    config_class, model_class = (Qwen2Config, Qwen2ForCausalLM) if qwen2 else (LlamaConfig, LlamaForCausalLM)
    config = config_class(
        **(QWEN2_SHAPES if qwen2 else SHAPES)[shape], max_position_embeddings=8192,
        tie_word_embeddings=not qwen2 or shape.startswith("tiny"), rope_theta=100000.0,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = model_class(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
