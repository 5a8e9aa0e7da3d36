"""The show filter: each feature hides what it should and nothing else; the scheduler answers a hidden
suggestion empty (and shows every one with the filter off); both engines fill each new token's
log-probability, the model's own."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import TINY_GGUF, TINY_MODEL
from ghostframe.server.inference.engine import Completion, Limits
from ghostframe.server.inference.engines import make_engine
from ghostframe.server.inference.model_loading import load_model
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.scheduler import Scheduler
from ghostframe.server.inference.show_filter import Thresholds, should_show

SURE = [-0.05, -0.1, -0.02]
UNSURE = [-2.5, -3.0, -1.8]
AT_LINE_END = CompletionContext("import pandas as pd\ndf = pd.read_csv('a.csv')\n", "\nprint(df)\n")
NOTHING_BUT = Thresholds(min_mean_logprob=None, hide_repeats=False, hide_closers_only=False, min_chars_at_line_end=0)


def only(**feature) -> Thresholds:
    """The thresholds with one feature on."""
    return Thresholds(**{**NOTHING_BUT.__dict__, **feature})


def test_an_unsure_suggestion_is_hidden_and_a_sure_one_shown():
    rule = only(min_mean_logprob=-1.0)
    assert should_show("df.head()", AT_LINE_END, SURE, rule)
    assert not should_show("df.head()", AT_LINE_END, UNSURE, rule)
    assert should_show("df.head()", AT_LINE_END, UNSURE, NOTHING_BUT)


def test_without_probabilities_the_text_alone_decides():
    assert should_show("df.head()", AT_LINE_END, [], only(min_mean_logprob=-1.0))


def test_a_suggestion_repeating_the_line_above_is_hidden():
    ctx = CompletionContext("df = pd.read_csv('a.csv')\n\ndf = pd.", "\n")
    rule = only(hide_repeats=True)
    assert not should_show("read_csv('a.csv')", ctx, SURE, rule)
    assert should_show("read_csv('b.csv')", ctx, SURE, rule)
    assert should_show("read_csv('a.csv')", ctx, SURE, NOTHING_BUT)


def test_a_suggestion_that_only_closes_brackets_is_hidden():
    ctx = CompletionContext("model.fit(X, y", "\n")
    rule = only(hide_closers_only=True)
    assert not should_show("))", ctx, SURE, rule)
    assert not should_show("):", ctx, SURE, rule)
    assert should_show(", epochs=3)", ctx, SURE, rule)
    assert should_show("))", ctx, SURE, NOTHING_BUT)


def test_a_very_short_suggestion_is_hidden_at_a_line_end_only():
    rule = only(min_chars_at_line_end=3)
    assert not should_show("df", AT_LINE_END, SURE, rule)
    assert should_show("df.head()", AT_LINE_END, SURE, rule)
    inside = CompletionContext("print(", "x)\n")  # text after the cursor on the line
    assert should_show("df", inside, SURE, rule)
    assert should_show("df", AT_LINE_END, SURE, NOTHING_BUT)


def test_blank_suggestions_are_never_shown():
    assert not should_show("  ", AT_LINE_END, SURE, NOTHING_BUT)


class OneAnswerEngine:
    """Answers every request with the same completion (the scheduler's engine contract, no model)."""

    looks_ahead = warms = False

    def __init__(self, completion: Completion):
        self.completion = completion

    def complete(self, ctx, limits, *, cancel=None, document=None) -> Completion:
        return self.completion


LIMITS = Limits(max_new_tokens=8, max_prompt_tokens=64, multiline=False)


@pytest.mark.parametrize("logprobs, typed_through, filtered, shown", [
    (UNSURE, False, True, ""),                # hidden
    (UNSURE, False, False, "df.head()"),      # the setting off shows everything
    (SURE, False, True, "df.head()"),
    ((), True, True, "df.head()"),            # the user typed its beginning: shown
])
async def test_the_scheduler_answers_a_hidden_suggestion_empty(logprobs, typed_through, filtered, shown):
    completion = Completion("df.head()", 10, 3, 0.01, token_logprobs=tuple(logprobs), typed_through=typed_through)
    scheduler = Scheduler()
    scheduler.serve(OneAnswerEngine(completion))
    try:
        answer = await scheduler.suggest("doc", AT_LINE_END, LIMITS, show_filter=filtered)
    finally:
        scheduler.shutdown()
    assert answer.completion.text == shown
    assert answer.hidden == (not shown)


@pytest.fixture(scope="module", params=["torch", "llama.cpp"])
def engine(request):
    loaded = load_model(str(TINY_MODEL if request.param == "torch" else TINY_GGUF), device="cpu",
                        engine="torch" if request.param == "torch" else "llama")
    engine = make_engine(loaded)
    yield engine
    engine.close()


def test_both_engines_give_each_new_tokens_log_probability(engine):
    ctx = CompletionContext("import pandas as pd\ndf = pd.read_csv('sales.csv')\ndf.", "\nprint(df)\n")
    done = engine.complete(ctx, Limits(max_new_tokens=6, max_prompt_tokens=256, multiline=False))
    assert done.new_tokens > 0 and len(done.token_logprobs) == done.new_tokens
    assert all(p <= 0 and math.isfinite(p) for p in done.token_logprobs)


def test_the_torch_log_probabilities_are_the_models_own():
    loaded = load_model(str(TINY_MODEL), device="cpu")
    engine = make_engine(loaded)
    ctx = CompletionContext("x = 1\ny = ", "\n")
    limits = Limits(max_new_tokens=4, max_prompt_tokens=256, multiline=False)
    ids = engine.prompt_ids(ctx, limits.max_prompt_tokens)
    done = engine.complete(ctx, limits)
    # recompute the greedy tokens and their log-probabilities with one plain forward pass per step
    sequence, expected = list(ids), []
    with torch.inference_mode():
        for _ in range(done.new_tokens):
            logits = loaded.model(input_ids=torch.tensor([sequence])).logits[0, -1].float()
            token = int(logits.argmax())
            expected.append(torch.log_softmax(logits, -1)[token].item())
            sequence.append(token)
    assert done.token_logprobs == pytest.approx(expected, abs=1e-3)


def test_the_check_counts_a_suggestion_right_only_when_the_line_begins_with_it_and_refuses_to_tune_on_none():
    from ghostframe.trainer.evaluation.show_filter_check import Answer, measure, tune

    def said(suggestion: str, logprobs: list[float]) -> Answer:
        return Answer("dev", "f.py:1", "df.head()", suggestion, logprobs, "import pandas as pd\n", "")

    answers = [said("df.head", SURE), said("df.tail()", SURE), said("df.head()", UNSURE), said("", [])]
    assert measure(answers, None) == {"lines": 4, "shown_per_line": 0.75, "wrong_shown_per_line": 0.25,
                                      "right_chars": 7 + 9}
    hides_unsure = only(min_mean_logprob=-1.0)
    assert measure(answers, hides_unsure)["right_chars"] == 7  # the unsure right one is hidden
    assert tune(answers, 0.0).min_mean_logprob is None or tune(answers, 0.0).min_mean_logprob < -1.0
    with pytest.raises(ValueError):
        tune([said("df.tail()", SURE)], 0.0)


def test_tuning_on_a_replay_hides_unsure_wrong_suggestions_and_keeps_the_accepted_characters(tmp_path):
    """The replay's shown suggestions are joined with the server's answers by document, offset and text;
    tuning then hides what the replay saw go wrong, as far as that keeps every accepted character."""
    import json

    from ghostframe.trainer.evaluation.show_filter_check import measure_replay, read_replay, tune_on_replay

    before = "import pandas as pd\ndf = pd.read_csv('a.csv')\n"
    answers = [  # (offset, text, logprobs, typed through, wrong, accepted characters)
        (10, "df.head()", SURE, False, False, 9), (20, "df.tail()", UNSURE, False, True, 0),
        (30, "df.plot()", UNSURE, False, True, 0), (40, "lot()", [], True, True, 0),
        (50, "df.describe()", SURE, False, True, 0)]
    (tmp_path / "answers.jsonl").write_text("".join(json.dumps(
        {"document": "file:///f.py", "offset": offset, "text": text, "logprobs": logprobs, "typed_through": through,
         "hidden": False, "before": before, "line_suffix": ""}) + "\n" for offset, text, logprobs, through, _, _ in answers))
    (tmp_path / "shown.json").write_text(json.dumps({"lines": 2, "chars": 30, "shown": [
        {"document": "file:///f.py", "offset": offset, "text": text, "wrong": wrong, "accepted_chars": chars}
        for offset, text, _, _, wrong, chars in answers] + [  # one with no answer logged: left out, said so
        {"document": "file:///g.py", "offset": 1, "text": "x", "wrong": True, "accepted_chars": 0}]}))
    shown, lines, chars = read_replay(tmp_path / "shown.json", tmp_path / "answers.jsonl")
    assert len(shown) == 5 and (lines, chars) == (2, 30)
    off = measure_replay(shown, lines, chars, None)
    assert off == {"lines": 2, "shown": 5, "wrong_shown_per_line": 2.0, "accepted": 1, "acceptance_pct": 20.0,
                   "chars_saved_pct": 30.0}
    tuned = tune_on_replay(shown, lines, chars, 0.0)
    on = measure_replay(shown, lines, chars, tuned)
    # the two unsure wrong ones go; the sure wrong one cannot go without the sure right one's probability,
    # unless a text feature tells them apart; the typed-through one always shows
    assert on["chars_saved_pct"] == 30.0 and on["wrong_shown_per_line"] <= 1.0 and on["shown"] <= 3


def test_the_tuned_filter_is_on_by_default_and_hides_an_unlikely_whole_suggestion_or_a_short_line_end():
    """TUNED (show_filter_check --replay): each token fairly likely is not enough when all of them together
    are unlikely, and a few characters at a line's end are hidden; a sure, longer suggestion shows."""
    from ghostframe.server.inference.show_filter import TUNED
    from ghostframe.server.lsp.settings import Settings

    assert Settings().show_filter
    assert should_show("df.groupby('a')", AT_LINE_END, SURE, TUNED)
    fairly_sure_each = [-0.5] * 12  # mean -0.5, all together e^-6
    assert not should_show("df.groupby('region').agg(total=('x', 'sum'))", AT_LINE_END, fairly_sure_each, TUNED)
    assert not should_show("df)", AT_LINE_END, SURE, TUNED)          # 3 characters at a line's end
    assert should_show("df", CompletionContext("print(", "x)\n"), SURE, TUNED)  # not at a line's end
    assert not should_show("df.head()", AT_LINE_END, UNSURE, TUNED)


def test_the_server_hides_what_typing_brings_up_that_the_model_is_unsure_of_but_not_what_the_user_asked_for(
        raw_server):
    """With the default settings the filter is on: the tiny random model is unsure of everything, so an
    automatic request (typing) answers nothing, while an explicit one (Alt+\\\\, `ghostframe complete`) shows
    the model's suggestion; with showFilter off, typing shows it too."""
    server = raw_server()
    server.initialize(capabilities={"textDocument": {"inlineCompletion": {}}}, initializationOptions={"ghostframe": {}})
    assert server.wait_ready()["state"] == "ready"
    uri = "file:///work/filtered.py"
    server.open_document(uri, "import pandas as pd\ndf = pd.")

    def ask(msg_id: int, kind: int) -> list[str]:
        return server.inline_texts(msg_id, uri, 1, 8, kind)

    automatic, invoked = ask(2, 2), ask(3, 1)  # the same place asked again: judged again, not typed through
    assert invoked and invoked[0].strip() and automatic == []
    server.send({"jsonrpc": "2.0", "method": "workspace/didChangeConfiguration",
                 "params": {"settings": {"ghostframe": {"showFilter": False}}}})
    assert ask(4, 2) == invoked and ask(5, 2) == invoked
