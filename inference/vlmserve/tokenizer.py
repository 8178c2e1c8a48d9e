"""GLM-4 tokenizer: tiktoken BPE ranks from ``tokenizer.model`` plus GLM-4's special tokens.

The special tokens are not in the ranks file; they take the ids right after the last rank
(151329.. for the real model, 400.. for the tiny one), in the order of ``SPECIAL_TOKENS``.
"""
from __future__ import annotations

import base64
from pathlib import Path

import tiktoken

# cl100k-style split, in the old non-possessive regex spelling the official GLM-4 tokenizer uses
# (the possessive form splits some inputs differently).
PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)

SPECIAL_TOKENS = (
    "<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
    "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>",
    "<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>",
)

# The tokens that end a model turn: the official generation config stops on all three, and
# without <|user|> / <|observation|> the model goes on to write the next turn itself.
STOP_TOKENS = ("<|endoftext|>", "<|user|>", "<|observation|>")


def read_ranks(path: str | Path) -> dict[bytes, int]:
    """Parse a tiktoken ranks file: one ``base64(token) rank`` per line, ranks 0..n-1."""
    ranks: dict[bytes, int] = {}
    for lineno, line in enumerate(Path(path).read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
        except Exception as e:  # noqa: BLE001 - re-raised with the location
            raise ValueError(f"{path}:{lineno}: not a 'base64 rank' line") from e
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: ranks are not 0..{len(ranks) - 1} without gaps")
    return ranks


def write_ranks(ranks: dict[bytes, int], path: str | Path) -> None:
    lines = [f"{base64.b64encode(tok).decode()} {rank}" for tok, rank in sorted(ranks.items(), key=lambda x: x[1])]
    Path(path).write_text("\n".join(lines) + "\n")


class Tokenizer:
    def __init__(self, ranks: dict[bytes, int], name: str = "glm4"):
        n = len(ranks)
        self.special: dict[str, int] = {tok: n + i for i, tok in enumerate(SPECIAL_TOKENS)}
        self._enc = tiktoken.Encoding(name=name, pat_str=PAT_STR, mergeable_ranks=ranks,
                                      special_tokens=self.special)
        self.n_ranks = n
        self.n_vocab = n + len(SPECIAL_TOKENS)
        self.eos_ids: tuple[int, ...] = tuple(self.special[t] for t in STOP_TOKENS)

    @classmethod
    def from_dir(cls, path: str | Path) -> "Tokenizer":
        f = Path(path) / "tokenizer.model"
        if not f.is_file():
            raise FileNotFoundError(f"no tokenizer.model (tiktoken ranks) in {path}")
        return cls(read_ranks(f))

    def encode(self, text: str) -> list[int]:
        """Ordinary text: a literal "<|user|>" typed by a user stays plain BPE, never a special id."""
        return self._enc.encode(text, allowed_special=set(), disallowed_special=())

    def decode(self, ids, skip_special: bool = True) -> str:
        """Bytes joined and decoded as UTF-8 with replacement. Special tokens are left out unless asked
        for (as OpenAI-compatible servers do: an answer never shows "[gMASK]" or "<|assistant|>").
        Ids of unused embedding rows (above the special tokens; a random model can emit them) decode
        to nothing."""
        limit = self.n_ranks if skip_special else self.n_vocab
        ids = [int(i) for i in ids if 0 <= int(i) < limit]
        return self._enc.decode_bytes(ids).decode("utf-8", errors="replace")

    def token_id(self, name: str) -> int:
        return self.special[name]
