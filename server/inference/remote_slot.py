"""One llama-server slot per typist: the slot that holds this typist's prompt, kept across keystrokes.

llama-server keeps each slot's KV cache, so a keystroke's prompt costs only its new tokens when it goes
to the slot that holds the previous one. Left to itself the server gives a request any idle slot: with
several typists, a keystroke whose own slot is still busy with the request it superseded (a prefill is
stopped only between batches) lands in another typist's slot, evicts that typist's prompt, and every
typist prefills from the start again and again (4 typists on 4 slots of a 2-core server got no answer
at all). So the remote engine claims a slot once (an idle one no request has used, else the one idle
longest: the server itself would give a typist the slot of another who writes the same file), prefills
its prompt there, and names it (`id_slot`) on every request after. A claim is given up when the server's
answer shows the slot no longer holds what we left there: another client used it, and the next request
claims again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ghostframe.server.inference.prefix_cache import common_prefix_length

log = logging.getLogger("ghostframe.remote")

# A slot counts as taken by someone else when it reuses less than half of a prefix this long or longer
# that it held after our last request (llama-server may recompute the last token or two).
LOST_BELOW_TOKENS = 32


@dataclass
class SlotClaim:
    """The slot this engine's requests go to, and the prompt it was last left holding."""

    slot: int | None = None
    held: list[int] = field(default_factory=list, repr=False)
    lost: int = 0  # claims given up since the engine started

    def fields(self) -> dict:
        """The request's `id_slot` (nothing before a claim: the server chooses)."""
        return {} if self.slot is None else {"id_slot": self.slot}

    def claimed(self, slot: object, ids: list[int]) -> None:
        """The server answered a claim from `slot` after prefilling `ids`."""
        if isinstance(slot, int) and slot >= 0:
            self.slot, self.held = slot, list(ids)

    def reused(self, ids: list[int], cache_n: int) -> None:
        """The server reused `cache_n` tokens of `ids` (its first answer to a request): the slot now holds
        `ids`; a claim whose slot lost our prefix is given up."""
        if self.slot is None:
            return
        expected = common_prefix_length(self.held, ids)
        if expected >= LOST_BELOW_TOKENS and cache_n < expected // 2:
            log.info("slot %d was taken by another client (reused %d of %d tokens); claiming another",
                     self.slot, cache_n, expected)
            self.lost += 1
            self.forget()
            return
        self.held = list(ids)

    def forget(self) -> None:
        self.slot, self.held = None, []
