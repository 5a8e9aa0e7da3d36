"""Every answer, with what the show filter judges it on, appended to a JSON-lines file for tuning.

The show filter is best tuned on the suggestions a typing session really shows (the replay's, at
human speed), not on line starts alone. With `GHOSTFRAME_ANSWER_LOG=PATH` the server appends one line
per answered request: the document, the cursor's offset, the suggestion before the filter, its tokens'
log-probabilities, whether it was typed through or hidden, and the rows before the cursor that the
filter reads. `ghostframe bench replay --answer-log` sets it for the server it starts, and
`show_filter_check --replay` joins it with the replay's shown suggestions. Off unless set: the
editor's text never goes to a file otherwise.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from ghostframe.server.inference.engine import Completion
from ghostframe.server.inference.prompt import CompletionContext

ENVIRONMENT = "GHOSTFRAME_ANSWER_LOG"
CONTEXT_ROWS = 3  # rows of `before` kept per answer: the line above is all a feature reads

_lock = threading.Lock()


def record(document: str, ctx: CompletionContext, completion: Completion, hidden: bool) -> None:
    """Append one answer when `GHOSTFRAME_ANSWER_LOG` names a file (else nothing)."""
    path = os.environ.get(ENVIRONMENT)
    if not path or completion.cancelled:
        return
    entry = {"document": document, "offset": len(ctx.before), "text": completion.text,
             "logprobs": list(completion.token_logprobs), "typed_through": completion.typed_through,
             "hidden": hidden, "before": "\n".join(ctx.before.split("\n")[-CONTEXT_ROWS:]),
             "line_suffix": ctx.line_suffix}
    with _lock, Path(path).open("a", encoding="utf-8") as out:
        out.write(json.dumps(entry) + "\n")
