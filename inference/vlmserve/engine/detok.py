"""Incremental detokenization with stop strings, for streaming.

Tokens are decoded a few at a time: a token that ends inside a multi-byte UTF-8 character decodes
to U+FFFD, so such tokens are held back until the character is complete. Text that could still
become the start of a stop string is held back too, so a stream never shows part of a stop string.
"""
from __future__ import annotations

REPLACEMENT = "\ufffd"
MAX_PENDING = 8  # after this many tokens a U+FFFD is real (invalid bytes), not an unfinished character


class TextAssembler:
    def __init__(self, tokenizer, stop: list[str]):
        self.tokenizer = tokenizer
        self.stop = stop
        self.text = ""          # all decoded text so far (before any stop string)
        self.sent = 0           # characters of `text` already handed out
        self._pending: list[int] = []
        self.stopped = False

    def add(self, token: int) -> str:
        """Adds one generated token; returns the text that is now safe to send."""
        self._pending.append(token)
        piece = self.tokenizer.decode(self._pending)
        if piece.endswith(REPLACEMENT) and len(self._pending) < MAX_PENDING:
            return ""
        self._pending.clear()
        self.text += piece
        if self.stop:
            cut = min((i for i in (self.text.find(s, max(0, self.sent - len(s))) for s in self.stop) if i >= 0),
                      default=-1)
            if cut >= 0:
                self.text = self.text[:cut]
                self.stopped = True
                return self._release(len(self.text))
            return self._release(len(self.text) - self._held_back())
        return self._release(len(self.text))

    def finish(self) -> str:
        """Everything not sent yet (called when the sequence ends for a reason other than a stop string)."""
        if self._pending and not self.stopped:
            self.text += self.tokenizer.decode(self._pending)
            self._pending.clear()
        return self._release(len(self.text))

    def _held_back(self) -> int:
        """Length of the longest tail of `text` that is a proper prefix of a stop string."""
        best = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text)), best, -1):
                if self.text.endswith(s[:k]):
                    best = k
                    break
        return best

    def _release(self, upto: int) -> str:
        upto = max(upto, self.sent)
        out = self.text[self.sent:upto]
        self.sent = upto
        return out
