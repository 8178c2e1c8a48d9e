import pytest

from vlmserve.tiny import tiny_ranks
from vlmserve.tokenizer import SPECIAL_TOKENS, Tokenizer, read_ranks, write_ranks


@pytest.fixture(scope="module")
def tok():
    return Tokenizer(tiny_ranks())


def test_special_ids_follow_the_ranks_like_the_fixture(tok):
    # fixture README: tiny id = 400 + k mirrors real id = 151329 + k
    assert tok.special["<|endoftext|>"] == 400
    assert tok.special["[gMASK]"] == 402
    assert tok.special["<|user|>"] == 407
    assert tok.special["<|assistant|>"] == 408
    assert tok.special["<|begin_of_image|>"] == 410
    assert tok.special["<|end_of_image|>"] == 411
    assert [tok.special[t] for t in SPECIAL_TOKENS] == list(range(400, 414))
    assert tok.eos_ids == (400, 407, 409)


def test_newline_is_rank_198_like_the_real_vocabulary(tok):
    assert tok.encode("\n") == [198]


def test_roundtrip_and_no_special_parsing(tok):
    text = "Describe this image. Ünïcödé ✓ 123456"
    assert tok.decode(tok.encode(text)) == text
    typed = tok.encode("<|user|>[gMASK]")
    assert not set(typed) & set(tok.special.values())
    assert tok.decode(typed) == "<|user|>[gMASK]"


def test_decode_special_and_unused_ids(tok):
    hello = tok.encode("hello")
    # Answers skip special tokens by default; asked for, they appear by name.
    assert tok.decode(hello + [tok.special["[sMASK]"]] + hello) == "hellohello"
    assert tok.decode([tok.special["<|user|>"]], skip_special=False) == "<|user|>"
    assert tok.decode([500, 511]) == ""          # padding rows of the embedding matrix
    assert tok.decode([500, 511], skip_special=False) == ""


def test_ranks_file_roundtrip_and_bad_file(tmp_path):
    ranks = tiny_ranks()
    write_ranks(ranks, tmp_path / "tokenizer.model")
    assert read_ranks(tmp_path / "tokenizer.model") == ranks
    (tmp_path / "bad.model").write_text("not-a-rank-line\n")
    with pytest.raises(ValueError, match="bad.model:1"):
        read_ranks(tmp_path / "bad.model")


def test_from_dir_of_make_tiny(tiny_dir):
    tok = Tokenizer.from_dir(tiny_dir)
    assert tok.n_vocab == 414
    with pytest.raises(FileNotFoundError, match="tokenizer.model"):
        Tokenizer.from_dir(tiny_dir / "nowhere")
