"""Tune the show filter (server/inference/show_filter.py) on development files, check it on held-out ones.

Each corpus's lines are the evaluation's cases (`load_cases`, every file taken: the two corpora are
separate code bases), answered through `CompletionEngine.complete` as the server answers them. A
shown suggestion is *right* when the rest of the true line begins with it (typing through it, the
user would take it) and *wrong* otherwise. Per corpus, filter off and on: suggestions shown and
wrong ones shown per line, and the characters of the right ones shown.

    python -m ghostframe.trainer.evaluation.show_filter_check --model smollm2-135m \\
        --dev DEV_FOLDER --held-out HELD_OUT_FOLDER --cases 200 --records answers.jsonl [--tune]

Or, closer to what a user sees, on the suggestions a replay at human speed showed (every position of a
line, not only its start), with the filter off:

    ghostframe bench replay DEV_FILES... --no-show-filter --record shown.json --answer-log answers.jsonl
    python -m ghostframe.trainer.evaluation.show_filter_check --replay shown.json answers.jsonl --tune

The answers (with their token log-probabilities) are appended to `--records` as they come: a case
found there is not asked again, so a run resumes where it stopped, each corpus may be answered by
a run of its own, and tuning again runs no model.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from ghostframe.server.inference.model_options import ModelOptions, add_model_arguments
from ghostframe.server.inference.prompt import CompletionContext
from ghostframe.server.inference.show_filter import TUNED, Thresholds, should_show, typed_into
from ghostframe.trainer.data.corpus import CorpusOptions
from ghostframe.trainer.evaluation.cases import load_cases

CONTEXT_ROWS = 3  # rows of `before` kept per answer: the line above is all a feature reads


@dataclass(frozen=True)
class Answer:
    corpus: str  # "dev" | "held-out"
    case: str
    reference: str
    suggestion: str
    logprobs: list[float]
    before: str  # the end of the text before the cursor
    line_suffix: str

    @property
    def ctx(self) -> CompletionContext:
        return CompletionContext(self.before, "\n" if not self.line_suffix else self.line_suffix + "\n")

    @property
    def right(self) -> bool:
        shown = self.suggestion.rstrip()
        return bool(shown.strip()) and self.reference.startswith(shown)


def answer(folders: dict[str, str], cases: int, model: ModelOptions, max_new_tokens: int,
           max_prompt_tokens: int, records: Path) -> None:
    """Every corpus's cases answered by the model, one line each (the evaluation's default), appended
    to `records` unless already there."""
    from ghostframe.server.inference.engine import Limits
    from ghostframe.server.inference.engines import make_engine
    from ghostframe.server.inference.model_loading import load_model

    loaded = load_model(model.model or None, None, model.device, lambda m: print(m, file=sys.stderr),
                        precision=model.precision, engine=model.engine, speculation=model.speculation,
                        prompt_tokens=max_prompt_tokens)
    engine = make_engine(loaded)
    limits = Limits(max_new_tokens=max_new_tokens, max_prompt_tokens=max_prompt_tokens, multiline=False)
    known = {(a.corpus, a.case) for a in read(records)}
    try:
        for corpus, folder in folders.items():
            found = load_cases([folder], options=CorpusOptions(valid_fraction=1.0), max_cases=cases).cases
            # in a seeded random order: a run stopped early has answered a random part of the sample
            found = random.Random(0).sample(found, len(found))
            for index, case in enumerate(found):
                if (corpus, case.id) in known:
                    continue
                done = engine.complete(case.context, limits)
                ctx = case.context
                got = Answer(corpus, case.id, case.reference, done.text, list(done.token_logprobs),
                             "\n".join(ctx.before.split("\n")[-CONTEXT_ROWS:]), ctx.line_suffix)
                with records.open("a") as out:
                    out.write(json.dumps(asdict(got)) + "\n")
                print(f"{corpus} {index + 1}/{len(found)}", file=sys.stderr, flush=True)
    finally:
        engine.close()


def read(records: Path) -> list[Answer]:
    return [Answer(**json.loads(line)) for line in records.read_text().splitlines()] if records.exists() else []


def measure(answers: list[Answer], thresholds: Thresholds | None) -> dict:
    """Shown and wrong-shown suggestions per line, and the characters of right ones shown (None: no filter)."""
    shown = [a for a in answers if a.suggestion.strip()
             and (thresholds is None or should_show(a.suggestion, a.ctx, a.logprobs, thresholds))]
    right = [a for a in shown if a.right]
    lines = max(1, len(answers))
    return {"lines": len(answers), "shown_per_line": len(shown) / lines,
            "wrong_shown_per_line": (len(shown) - len(right)) / lines,
            "right_chars": sum(len(a.suggestion.rstrip()) for a in right)}


def candidates() -> list[Thresholds]:
    means = [None, *(-x / 10 for x in range(1, 31))]
    totals = [None, *(-x / 4 for x in range(1, 21))]
    return [Thresholds(m, t, r, c, n) for m, t, r, c, n in
            itertools.product(means, totals, (False, True), (False, True), (0, 2, 4, 6))]


def tune(dev: list[Answer], tolerance: float) -> Thresholds:
    """The thresholds that hide the most wrong suggestions on `dev` while keeping at least (1 - tolerance)
    of the right characters; of equals, the one that shows the most right characters."""
    floor = measure(dev, None)["right_chars"] * (1 - tolerance)
    if not floor:
        raise ValueError("the development answers hold no right suggestion: nothing to tune against "
                         "(hiding everything would score best)")
    scored = [(measure(dev, t), t) for t in candidates()]
    kept = [(m, t) for m, t in scored if m["right_chars"] >= floor]
    return min(kept, key=lambda mt: (mt[0]["wrong_shown_per_line"], -mt[0]["right_chars"]))[1]


# --- tuning on what a replay showed --------------------------------------------------------------


@dataclass(frozen=True)
class ShownInReplay:
    """A suggestion `ghostframe bench replay --record` showed, with the server's answer behind it
    (`--answer-log`): its features, whether it was wrong, and the characters Tab took with it."""

    text: str
    logprobs: tuple[float, ...]
    typed_through: bool
    ctx: CompletionContext
    wrong: bool
    accepted_chars: int

    def shown_by(self, thresholds: Thresholds | None) -> bool:
        """The rest of a suggestion the user typed into is always shown, as in the scheduler."""
        return (thresholds is None or typed_into(self.typed_through, self.logprobs)
                or should_show(self.text, self.ctx, self.logprobs, thresholds))


def read_replay(record: Path, answers: Path) -> tuple[list[ShownInReplay], int, int]:
    """(the shown suggestions joined with their answers, lines written, characters written). A shown
    suggestion is matched to the answer for the same document, cursor offset and text."""
    replay = json.loads(record.read_text())
    by_place = {}
    for line in answers.read_text().splitlines():
        entry = json.loads(line)
        by_place[(entry["document"], entry["offset"], entry["text"])] = entry
    joined, missing = [], 0
    for shown in replay["shown"]:
        entry = by_place.get((shown["document"], shown["offset"], shown["text"]))
        if entry is None:
            missing += 1
            continue
        ctx = CompletionContext(entry["before"], entry["line_suffix"] + "\n")
        joined.append(ShownInReplay(shown["text"], tuple(entry["logprobs"]), entry["typed_through"], ctx,
                                    shown["wrong"], shown["accepted_chars"]))
    if missing:
        print(f"{missing} of {len(replay['shown'])} shown suggestions had no answer in {answers}", file=sys.stderr)
    return joined, replay["lines"], replay["chars"]


def measure_replay(shown: list[ShownInReplay], lines: int, chars: int, thresholds: Thresholds | None) -> dict:
    """What the replay would have counted had the filter hidden what `thresholds` hide, each suggestion
    judged alone: a hidden right one loses its characters (the next keystroke's answer, which might have
    shown instead, is not known; `bench replay --show-filter` measures that)."""
    kept = [s for s in shown if s.shown_by(thresholds)]
    accepted = [s for s in kept if s.accepted_chars]
    return {"lines": lines, "shown": len(kept), "wrong_shown_per_line": sum(s.wrong for s in kept) / max(1, lines),
            "accepted": len(accepted), "acceptance_pct": 100 * len(accepted) / max(1, len(kept)),
            "chars_saved_pct": 100 * sum(s.accepted_chars for s in accepted) / max(1, chars)}


def tune_on_replay(shown: list[ShownInReplay], lines: int, chars: int, tolerance: float) -> Thresholds:
    """The thresholds that show the fewest wrong suggestions per line while keeping at least (1 - tolerance)
    of the characters accepted suggestions wrote; of equals, the one that keeps the most."""
    floor = measure_replay(shown, lines, chars, None)["chars_saved_pct"] * (1 - tolerance)
    if not floor:
        raise ValueError("no suggestion of the replay was accepted: nothing to tune against")
    scored = [(measure_replay(shown, lines, chars, t), t) for t in candidates()]
    kept = [(m, t) for m, t in scored if m["chars_saved_pct"] >= floor]
    return min(kept, key=lambda mt: (mt[0]["wrong_shown_per_line"], -mt[0]["chars_saved_pct"]))[1]


def replay_table(shown: list[ShownInReplay], lines: int, chars: int, thresholds: Thresholds) -> str:
    rows = ["| filter | shown | wrong shown / line | acceptance % | saved % |", "| --- | ---: | ---: | ---: | ---: |"]
    for label, t in (("off", None), ("on", thresholds)):
        m = measure_replay(shown, lines, chars, t)
        rows.append(f"| {label} | {m['shown']} | {m['wrong_shown_per_line']:.2f} | {m['acceptance_pct']:.1f} | "
                    f"{m['chars_saved_pct']:.1f} |")
    return "\n".join(rows)


def table(answers: list[Answer], thresholds: Thresholds) -> str:
    rows = ["| corpus | lines | filter | shown / line | wrong shown / line | right characters |",
            "| --- | ---: | --- | ---: | ---: | ---: |"]
    for corpus in dict.fromkeys(a.corpus for a in answers):
        some = [a for a in answers if a.corpus == corpus]
        for label, t in (("off", None), ("on", thresholds)):
            m = measure(some, t)
            rows.append(f"| {corpus} | {m['lines']} | {label} | {m['shown_per_line']:.3f} | "
                        f"{m['wrong_shown_per_line']:.3f} | {m['right_chars']} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ghostframe.trainer.evaluation.show_filter_check",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--dev", help="development code base (the thresholds are tuned on it)")
    p.add_argument("--held-out", help="held-out code base (checked only)")
    p.add_argument("--cases", type=int, default=200, help="lines per corpus")
    p.add_argument("--records", help="JSON-lines answers, appended to by a run with --dev or --held-out")
    p.add_argument("--replay", nargs=2, metavar=("RECORD", "ANSWER_LOG"),
                   help="instead: tune on what `ghostframe bench replay --record RECORD --answer-log ANSWER_LOG` showed "
                        "(run with the filter off)")
    p.add_argument("--tune", action="store_true", help="print the thresholds tuned on --dev's answers too")
    p.add_argument("--tolerance", type=float, default=0.0,
                   help="share of the right characters tuning may give up on the development files")
    p.add_argument("--max-new-tokens", type=int, default=48)
    p.add_argument("--max-prompt-tokens", type=int, default=1024)
    add_model_arguments(p, adapter="none")
    args = p.parse_args(argv)
    if args.replay:
        shown, lines, chars = read_replay(Path(args.replay[0]), Path(args.replay[1]))
        thresholds = TUNED
        if args.tune:
            try:
                thresholds = tune_on_replay(shown, lines, chars, args.tolerance)
            except ValueError as why:
                print(f"not tuned: {why}", file=sys.stderr)
                return 1
        print(f"{'tuned on the replay' if args.tune else 'show_filter.TUNED'}: {thresholds}")
        print(replay_table(shown, lines, chars, thresholds))
        return 0
    if not args.records:
        p.error("--records or --replay is required")
    records = Path(args.records)
    folders = {corpus: folder for corpus, folder in (("dev", args.dev), ("held-out", args.held_out)) if folder}
    if folders:
        answer(folders, args.cases, ModelOptions.from_args(args), args.max_new_tokens, args.max_prompt_tokens, records)
    answers = read(records)
    thresholds = TUNED
    if args.tune:
        try:
            thresholds = tune([a for a in answers if a.corpus == "dev"], args.tolerance)
        except ValueError as why:
            print(f"not tuned: {why}", file=sys.stderr)
            return 1
        print(f"tuned on dev: {thresholds}")
    else:
        print(f"show_filter.TUNED: {thresholds}")
    print(table(answers, thresholds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
