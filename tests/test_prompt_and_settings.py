"""Prompt building, the suggestion rules a user expects, and settings parsing."""

from __future__ import annotations

import pytest

from conftest import TINY_MODEL
from ghostframe.server.inference.prompt import CompletionContext, build_prompt, cut_completion, finish_completion
from ghostframe.server.lsp.settings import Settings, parse_settings


def test_single_line_while_the_cursor_line_has_code():
    ctx = CompletionContext("df = pd.read_csv(", ")\nprint(df)")
    assert cut_completion("'a.csv')\nprint(1)", ctx, multiline=True) == ("'a.csv')", True)
    assert cut_completion("'a.cs", ctx, multiline=True) == ("'a.cs", False)
    # what already follows the cursor is not repeated
    assert finish_completion("'a.csv')   \nmore", ctx, multiline=True) == "'a.csv'"


def test_block_on_an_empty_line_stops_at_dedent_and_blank_line():
    ctx = CompletionContext("def load(path):\n    ", "")
    # the prompt leaves out the indentation's last space (token healing): the model writes it
    generated = " df = pd.read_csv(path)\n    df = df.dropna()\n    return df\n\nprint(load('x'))"
    assert finish_completion(generated, ctx, multiline=True) == "df = pd.read_csv(path)\n    df = df.dropna()\n    return df"
    dedent = " x = 1\n    y = 2\nz = 3\n"
    assert cut_completion(dedent, ctx, multiline=True) == ("x = 1\n    y = 2", True)
    assert cut_completion(" x = 1\n    y", ctx, multiline=True)[1] is False
    # multiline off: one line only
    assert finish_completion(generated, ctx, multiline=False) == "df = pd.read_csv(path)"


def test_indentation_is_healed_not_prompted(tokenizer):
    ctx = CompletionContext("def load(path):\n    ", "")
    assert tokenizer.decode(build_prompt(ctx, tokenizer, 64)) == "def load(path):\n   "
    assert cut_completion("", ctx, multiline=False) == ("", False)        # nothing written yet
    assert cut_completion("x", ctx, multiline=False) == ("", True)        # no space first: nothing to suggest
    assert cut_completion(" return df", ctx, multiline=False) == ("return df", False)
    assert finish_completion("  return df\n", ctx, multiline=False) == " return df"  # kept as generated


def test_small_prompt_budgets_still_end_at_the_cursor(tokenizer):
    before = "".join(f"x{i} = df['c{i}']\n" for i in range(300)) + "result = df."
    for budget in (16, 32, 100):
        ids = build_prompt(CompletionContext(before, ""), tokenizer, budget)
        assert 0 < len(ids) <= budget and tokenizer.decode(ids).endswith("df.")


def test_block_stops_before_repeating_the_code_below():
    ctx = CompletionContext("fig, ax = plt.subplots()\n", "\nplt.show()\n")
    assert finish_completion("ax.plot(x, y)\nplt.show()\n", ctx, multiline=True) == "ax.plot(x, y)"


def test_trailing_whitespace_and_blank_suggestions():
    ctx = CompletionContext("x = df.", "")
    assert finish_completion("head()   ", ctx, multiline=True) == "head()"
    assert finish_completion("   \n", ctx, multiline=True) == ""
    assert finish_completion("\nfoo", CompletionContext("    ", ""), multiline=True) == ""


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY_MODEL)


def test_prompt_keeps_the_last_tokens_before_the_cursor(tokenizer):
    before = "".join(f"col_{i} = df['c{i}'].mean()\n" for i in range(400)) + "result = df."
    ids = build_prompt(CompletionContext(before, ""), tokenizer, max_prompt_tokens=64)
    assert 56 <= len(ids) <= 64
    assert tokenizer.decode(ids).endswith("result = df.")
    # typing one more character keeps the prompt's start, so its KV cache can be reused
    longer = build_prompt(CompletionContext(before + "h", ""), tokenizer, max_prompt_tokens=64)
    assert longer[:40] == ids[:40]
    assert build_prompt(CompletionContext("x = 1", ""), tokenizer, 64) == tokenizer("x = 1")["input_ids"]


def test_prompt_uses_fill_in_the_middle_when_the_tokenizer_has_it(tokenizer):
    tokenizer.add_special_tokens({"additional_special_tokens": ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]})
    ids = build_prompt(CompletionContext("import pandas as pd\ntotal = df.", "\nprint(total)"), tokenizer, 64)
    text = tokenizer.decode(ids)
    assert text.startswith("<fim_prefix>import pandas as pd\n<fim_suffix>")
    assert text.endswith("print(total)<fim_middle>total = df.")


def test_settings_camel_case_and_fallbacks():
    settings, problems = parse_settings({"ghostframe": {"maxNewTokens": 16, "multiline": False, "device": "CPU",
                                                        "unknownKey": 1}})
    assert settings == Settings(max_new_tokens=16, multiline=False, device="cpu")
    assert problems == []
    settings, problems = parse_settings({"settings": {"ghostframe": {"maxPromptTokens": "lots", "enable": 0}}})
    assert settings == Settings()
    assert len(problems) == 2 and "ghostframe.maxPromptTokens" in problems[0]
    # a missing key keeps the current value
    current = Settings(max_new_tokens=20)
    assert parse_settings({"multiline": False}, current)[0] == Settings(max_new_tokens=20, multiline=False)


def test_far_notes_keep_the_most_lines_that_fit(tokenizer):
    from ghostframe.server.inference.prompt import _encode, _whole_lines_within

    lines = [f"# data/table_{i}.csv columns: {', '.join(f'c{j}' for j in range(i % 7 + 1))}\n" for i in range(60)]
    text = "".join(lines)
    for budget in (0, 5, 37, 200, 10_000):
        ids = _whole_lines_within(tokenizer, text, budget)
        assert len(ids) <= budget
        kept = tokenizer.decode(ids)
        assert text.endswith(kept) and (not kept or kept.startswith("# data/"))
        dropped = len(lines) - kept.count("\n")
        if dropped:  # one more line would not have fit
            assert len(_encode(tokenizer, "".join(lines[dropped - 1:]))) > budget
