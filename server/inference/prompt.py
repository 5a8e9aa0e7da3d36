"""What the model sees and what the user gets: prompt building and completion post-processing.

Shared by the language server and the evaluation, so a score measures exactly what
a user sees in the editor.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from weakref import WeakKeyDictionary
from typing import Any

# Characters of context fetched per prompt token before tokenizing (code is ~3 chars/token).
CHARS_PER_TOKEN = 4
# When context must be cut, the cut moves in steps (and starts at a line), so that while
# the user types, consecutive prompts share their first tokens and the KV cache is reused.
WINDOW_STEP_CHARS = 512
TRUNCATE_STEPS_PER_BUDGET = 8
MAX_BLOCK_LINES = 12
# Snippets from other files take at most this share of the prefix's tokens; the file's own text the rest.
CONTEXT_SHARE = 1 / 3
# Data notes whose reads left the window take at most this share (the most recent reads kept).
NOTES_SHARE = 1 / 4
FIM_TOKEN_SETS = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
)


@dataclass(frozen=True)
class CompletionContext:
    """The text around the cursor: everything before it and everything after it.

    `snippets` (code from other files, as comment blocks, most useful first) and `notes`
    ((line of `before`, comment) such as a data file's column names) go into the prompt
    only: the editor's text and the suggestion's post-processing never see them.
    """

    before: str
    after: str = ""
    snippets: tuple[str, ...] = ()
    notes: tuple[tuple[int, str], ...] = ()

    @property
    def line_prefix(self) -> str:
        return self.before.rsplit("\n", 1)[-1]

    @property
    def line_suffix(self) -> str:
        return self.after.split("\n", 1)[0]

    @property
    def indentation(self) -> str:
        prefix = self.line_prefix
        return prefix[: len(prefix) - len(prefix.lstrip())]

    @property
    def healed_prefix(self) -> str:
        """The last indentation character before the cursor on an otherwise empty line.

        It is left out of the prompt and the suggestion must begin with it (token healing):
        tokenizers such as SmolLM2's merge a newline with all but one space of the
        indentation and put that last space in front of the next word (`"\\n   "`, `" return"`).
        A prompt that ends in the full indentation ends on a lone space token the model
        rarely saw there, and it answers with one space too many.
        """
        prefix = self.line_prefix
        return prefix[-1:] if prefix and not prefix.strip() else ""

    def is_block(self, multiline: bool) -> bool:
        """A block may be suggested only on a line with nothing but indentation before the cursor."""
        return multiline and not self.line_prefix.strip() and not self.line_suffix.strip()


def _clean(text: str) -> str:
    """Replace lone surrogates and other unencodable characters so tokenizers never fail."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _window_before(text: str, max_chars: int) -> str:
    """At most the last `max_chars` characters of text, cut at a step boundary, then at a line start."""
    if len(text) <= max_chars:
        return text
    step = max(1, min(WINDOW_STEP_CHARS, max_chars // 4))
    start = -(-(len(text) - max_chars) // step) * step
    newline = text.find("\n", start)
    return text[newline + 1:] if 0 <= newline < len(text) - 1 else text[start:]


def _keep_last(ids: list[int], budget: int) -> list[int]:
    """At most `budget` tokens from the end, dropping the excess from the front in steps."""
    excess = len(ids) - budget
    if excess <= 0:
        return ids
    step = max(1, budget // TRUNCATE_STEPS_PER_BUDGET)
    return ids[-(-excess // step) * step:]


def fim_tokens(tokenizer: Any) -> tuple[str, str, str] | None:
    """The tokenizer's fill-in-the-middle tokens (prefix, suffix, middle), if it has them."""
    vocab = tokenizer.get_vocab()
    return next((names for names in FIM_TOKEN_SETS if all(n in vocab for n in names)), None)


def _encode(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(_clean(text), add_special_tokens=False)["input_ids"]


_SNIPPET_IDS: WeakKeyDictionary = WeakKeyDictionary()  # tokenizer -> OrderedDict(snippet -> ids)
MAX_CACHED_SNIPPETS = 256


def _encode_snippet(tokenizer: Any, snippet: str) -> list[int]:
    """A snippet's ids, remembered per tokenizer: the same snippets come back on every keystroke in a region."""
    try:
        cache = _SNIPPET_IDS.setdefault(tokenizer, OrderedDict())
    except TypeError:  # a tokenizer that cannot be weakly referenced: no cache
        return _encode(tokenizer, snippet)
    ids = cache.get(snippet)
    if ids is None:
        ids = cache[snippet] = _encode(tokenizer, snippet)
        while len(cache) > MAX_CACHED_SNIPPETS:
            cache.popitem(last=False)
    return ids


def annotate(before: str, notes: tuple[tuple[int, str], ...]) -> str:
    """`before` with each note on a line of its own above its line, indented like it.

    The cursor's own line never gets a note, so what the user is typing stays last.
    """
    lines = before.split("\n")
    for line, note in sorted(set(notes), reverse=True):
        if 0 <= line < len(lines) - 1:
            target = lines[line]
            lines.insert(line, target[: len(target) - len(target.lstrip())] + note)
    return "\n".join(lines)


def _notes_outside(window: str, notes: tuple[tuple[int, str], ...], cursor_line: int) -> str:
    """The notes that the window of the file's text no longer holds, one per line, in file order
    (a note for the cursor's own line is never shown, as in `annotate`).

    A notebook reads its data at the top and uses the columns hundreds of lines below; the
    column names must not leave the prompt with the line that read them.
    """
    far = []
    for line, note in sorted(notes):
        if line < cursor_line and note not in window and note not in far:
            far.append(note)
    return "".join(f"{note}\n" for note in far)


def _whole_lines_within(tokenizer: Any, text: str, budget: int) -> list[int]:
    """Token ids of the last lines of `text` that fit in `budget` tokens, whole lines only.

    The first line kept is found by bisection (fewer lines never take more tokens), so this
    tokenizes about log2(lines) times instead of once per dropped line: it runs per request.
    """
    lines = text.splitlines(keepends=True)
    fits = lambda start: len(_encode(tokenizer, "".join(lines[start:]))) <= budget  # noqa: E731
    low, high = 0, len(lines)  # lines[high:] (nothing) always fits
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    return _encode(tokenizer, "".join(lines[low:])) if low < len(lines) else []


def context_ids(tokenizer: Any, snippets: tuple[str, ...], budget: int) -> list[int]:
    """Token ids of the snippets that fit in `budget`, taken most useful first and laid out
    with the most useful last, next to the file's own text. Whole snippets only."""
    kept: list[list[int]] = []
    used = 0
    for snippet in snippets:
        ids = _encode_snippet(tokenizer, snippet)
        if used + len(ids) <= budget:
            kept.append(ids)
            used += len(ids)
    return [token for ids in reversed(kept) for token in ids]


def build_prompt(ctx: CompletionContext, tokenizer: Any, max_prompt_tokens: int) -> list[int]:
    """Token ids for the model: the text before the cursor, or prefix+suffix where FIM exists.

    Snippets from other files come first in the prefix, within CONTEXT_SHARE of its budget;
    they change only when the caller's snippets change, so the KV cache of the prompt's start
    stays reusable while the user types.
    """
    fim = fim_tokens(tokenizer)
    prefix_budget = max_prompt_tokens if fim is None else max_prompt_tokens * 3 // 4
    context = context_ids(tokenizer, ctx.snippets, int(prefix_budget * CONTEXT_SHARE)) if ctx.snippets else []
    own_budget = prefix_budget - len(context)
    before = annotate(ctx.before, ctx.notes) if ctx.notes else ctx.before
    before = before[: len(before) - len(ctx.healed_prefix)]
    window = _window_before(before, own_budget * CHARS_PER_TOKEN)
    far = _notes_outside(window, ctx.notes, ctx.before.count("\n"))
    if far:  # the reads scrolled out of the window: their notes lead the file's text
        context = context + _whole_lines_within(tokenizer, far, int(prefix_budget * NOTES_SHARE))
        own_budget = prefix_budget - len(context)
        window = _window_before(before, own_budget * CHARS_PER_TOKEN)
    if fim is None:
        return context + _keep_last(_encode(tokenizer, window), own_budget)
    # The cursor's line, up to the cursor, opens the middle instead of closing the prefix: typing
    # on a line then only appends tokens after <fim_middle>, and the KV cache of the prefix and
    # the suffix (a quarter of the prompt) stays reusable from keystroke to keystroke.
    head, line = _split_cursor_line(window)
    line_ids = _encode(tokenizer, line)[-own_budget:] if line else []
    prefix = context + _keep_last(_encode(tokenizer, head), own_budget - len(line_ids)) if head else context
    suffix_budget = max_prompt_tokens - prefix_budget - 3
    suffix = _encode(tokenizer, ctx.after[: suffix_budget * CHARS_PER_TOKEN])[:suffix_budget]
    p, s, m = (tokenizer.convert_tokens_to_ids(name) for name in fim)
    return [p, *prefix, s, *suffix, m, *line_ids]


def _split_cursor_line(text: str) -> tuple[str, str]:
    """(everything up to the start of the cursor's line, the cursor's line up to the cursor)."""
    start = text.rfind("\n") + 1
    return text[:start], text[start:]


def _indent_width(line: str) -> int:
    return len(line) - len(line.lstrip())


def cut_completion(text: str, ctx: CompletionContext, multiline: bool) -> tuple[str, bool]:
    """Cut generated text where a suggestion should end; also say whether it has ended.

    One line while the cursor line has code; on an empty line a block that stops at a
    blank line, at a dedent below the cursor's indentation, or after MAX_BLOCK_LINES.
    The stopping check during decoding and the final answer both come from here.
    """
    healed = ctx.healed_prefix
    if healed:
        if not text.startswith(healed):
            return "", not healed.startswith(text)  # still writing the indentation, or it went elsewhere
        text = text[len(healed):]
    if not ctx.is_block(multiline):
        newline = text.find("\n")
        return (text, False) if newline < 0 else (text[:newline], True)
    lines = text.split("\n")
    min_indent = len(ctx.indentation)
    kept = [lines[0]]
    for index, line in enumerate(lines[1:], start=1):
        complete = index < len(lines) - 1
        if not line.strip():
            if complete:  # a blank line ends the block
                return "\n".join(kept), True
            continue
        if _indent_width(line) < min_indent:
            return "\n".join(kept), True
        if complete:
            kept.append(line)
            if len(kept) >= MAX_BLOCK_LINES:
                return "\n".join(kept), True
    if len(lines) > 1 and not lines[0].strip():
        return "", True  # the model began with a blank line: nothing to add here
    return "\n".join(kept + ([lines[-1]] if len(lines) > 1 and lines[-1].strip() else [])), False


def _drop_repeated_suffix(text: str, line_suffix: str) -> str:
    """Trim the end of a one-line suggestion that repeats what already follows the cursor."""
    suffix = line_suffix.rstrip()
    for size in range(len(suffix), 0, -1):
        if text.endswith(suffix[:size]):
            return text[: len(text) - size]
    return text


def _drop_repeated_lines(text: str, after: str) -> str:
    """Cut a block where it starts repeating the next line of code already below the cursor."""
    below = next((line.strip() for line in after.split("\n")[1:] if line.strip()), None)
    if below is None:
        return text
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if line.strip() == below:
            return "\n".join(lines[:index])
    return text


def finish_completion(text: str, ctx: CompletionContext, multiline: bool) -> str:
    """The suggestion to show for generated `text`: cut, de-duplicated, trailing space stripped."""
    # Generated bytes that are no text (byte tokens that form no UTF-8, a character cut by the token
    # limit) decode as U+FFFD: the suggestion ends before them, so none reaches the editor, nor a
    # prompt built on the suggestion (the next line computed ahead).
    text = text.partition("\ufffd")[0]
    text, _ = cut_completion(text, ctx, multiline)
    text = "\n".join(line.rstrip() for line in text.split("\n")).rstrip()
    if ctx.is_block(multiline):
        text = _drop_repeated_lines(text, ctx.after)
    elif ctx.line_suffix.strip():
        text = _drop_repeated_suffix(text, ctx.line_suffix).rstrip()
    return text if text.strip() else ""
