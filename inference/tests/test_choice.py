"""Constrained choice: whatever the model prefers, the answer is exactly one of the labels."""
import random

import pytest

from vlmserve.choice import ChoiceState, ChoiceTrie
from vlmserve.tiny import tiny_ranks
from vlmserve.tokenizer import Tokenizer

LABEL_SETS = [
    ["photo", "document", "chart", "screenshot"],
    ["cat", "catalog", "cattle"],          # one label a prefix of another
    ["a", "ab", "abc", "b"],               # nested prefixes, single-token labels
    ["yes", "no"],
    ["a long multi token label", "a long multi token label, extended"],
]


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(tiny_ranks())


def walk(trie: ChoiceTrie, tok, rng) -> str:
    """A 'model' that picks uniformly among the allowed tokens, like sampling at high temperature."""
    state, ids = ChoiceState(trie), []
    while not state.done:
        t = rng.choice(state.allowed())
        state.advance(t)
        if t != trie.end_id:
            ids.append(t)
    return tok.decode(ids)


@pytest.mark.parametrize("labels", LABEL_SETS)
def test_every_walk_ends_on_a_label_and_every_label_is_reachable(labels, tok):
    trie = ChoiceTrie.from_strings(labels, tok, end_id=tok.eos_ids[0])
    rng = random.Random(0)
    seen = {walk(trie, tok, rng) for _ in range(300)}
    assert seen <= set(labels)
    assert seen == set(labels)


def test_prefix_label_offers_end_and_continuation(tok):
    # "cattle" starts with the tokens of "cat" in the tiny vocabulary ("catalog" does not: BPE splits it differently)
    trie = ChoiceTrie.from_strings(["cat", "cattle"], tok, end_id=tok.eos_ids[0])
    state = ChoiceState(trie)
    for t in tok.encode("cat"):
        assert t in state.allowed()
        state.advance(t)
    assert not state.done
    assert trie.end_id in state.allowed() and len(state.allowed()) >= 2
    assert state.advance(trie.end_id) and state.done


def test_token_outside_the_choices_is_refused(tok):
    trie = ChoiceTrie.from_strings(["yes", "no"], tok, end_id=tok.eos_ids[0])
    state = ChoiceState(trie)
    bad = next(t for t in range(300) if t not in state.allowed())
    with pytest.raises(ValueError):
        state.advance(bad)


def test_empty_choice_is_rejected(tok):
    with pytest.raises(ValueError):
        ChoiceTrie.from_strings(["ok", ""], tok, end_id=tok.eos_ids[0])
