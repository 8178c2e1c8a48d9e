"""Constrained choice: the answer is exactly one of a list of strings.

Each choice is tokenized once and the token sequences are put in a trie. At every decode step only
the tokens that continue some choice are allowed; where a complete choice is also the start of a
longer one ("cat" and "catalog"), the end-of-sequence token is allowed too and the model decides.
When the walk reaches a complete choice with no longer continuation, the answer is finished without
asking the model, so the answer can never be cut in the middle of a label.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Node:
    children: dict[int, "_Node"] = field(default_factory=dict)
    complete: bool = False       # a whole choice ends here


class ChoiceTrie:
    def __init__(self, token_seqs: list[list[int]], end_id: int):
        if not token_seqs or any(not seq for seq in token_seqs):
            raise ValueError("choices must be non-empty token sequences")
        self.end_id = end_id
        self.root = _Node()
        self.longest = max(len(seq) for seq in token_seqs)
        for seq in token_seqs:
            node = self.root
            for tok in seq:
                node = node.children.setdefault(tok, _Node())
            node.complete = True

    @classmethod
    def from_strings(cls, choices: list[str], tokenizer, end_id: int) -> "ChoiceTrie":
        return cls([tokenizer.encode(c) for c in choices], end_id)


class ChoiceState:
    """Where one sequence stands in the trie."""

    def __init__(self, trie: ChoiceTrie):
        self.trie = trie
        self.node = trie.root
        self.done = False

    def allowed(self) -> list[int]:
        ids = list(self.node.children)
        if self.node.complete:
            ids.append(self.trie.end_id)
        return ids

    def advance(self, token: int) -> bool:
        """Records the sampled token; returns True when the answer is complete."""
        if token == self.trie.end_id and self.node.complete:
            self.done = True
            return True
        nxt = self.node.children.get(token)
        if nxt is None:  # the mask makes this impossible; guard against a caller that skipped it
            raise ValueError(f"token {token} does not continue any choice")
        self.node = nxt
        if nxt.complete and not nxt.children:
            self.done = True
        return self.done
