"""The command contract, run as users run it: ``python -m vlmserve ...`` in a subprocess."""
import subprocess
import sys

import torch
from PIL import Image
from safetensors.torch import load_file, save_file

ATOL = 1e-4


def vlmserve(*args, check=True):
    p = subprocess.run([sys.executable, "-m", "vlmserve", *map(str, args)], capture_output=True, text=True, timeout=120)
    if check and p.returncode != 0:
        raise AssertionError(f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def test_make_tiny_output_answers_in_generate(tmp_path):
    out = tmp_path / "tiny"
    vlmserve("make-tiny", "--out", out, "--seed", 3)
    assert {"config.json", "model.safetensors.index.json", "tokenizer.model", "tokenizer_config.json",
            "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"} <= {f.name for f in out.iterdir()}
    img = tmp_path / "cat.png"
    Image.new("RGBA", (120, 70), (200, 30, 30, 128)).save(img)
    p = vlmserve("generate", "--model", out, "--image", img, "--prompt", "Describe this image.", "--max-tokens", 12)
    assert "tokens, finish=" in p.stderr
    n_tokens = int(p.stderr.split("[")[-1].split(" tokens")[0])
    assert 1 <= n_tokens <= 12 or "finish=stop" in p.stderr
    text_only = vlmserve("generate", "--model", out, "--prompt", "Hello", "--max-tokens", 5)
    assert "finish=" in text_only.stderr


def test_logits_command_reproduces_the_fixture(fixture_dir, fixture_expected, tmp_path):
    out = tmp_path / "out.safetensors"
    vlmserve("logits", "--model", fixture_dir, "--inputs", fixture_dir / "inputs.safetensors", "--out", out,
             "--dtype", "float32")
    got = load_file(out)
    assert (got["logits"] - fixture_expected["logits"]).abs().max() < ATOL
    assert (got["vision_embeds"] - fixture_expected["vision_embeds"]).abs().max() < ATOL
    assert torch.equal(got["position_ids"], fixture_expected["position_ids"])


def test_logits_command_padded_and_text_only(fixture_dir, fixture_inputs, fixture_expected, tmp_path):
    padded = tmp_path / "padded.safetensors"
    save_file({"input_ids": fixture_inputs["padded_input_ids"], "attention_mask": fixture_inputs["padded_attention_mask"],
               "pixel_values": fixture_inputs["pixel_values"]}, padded)          # no position_ids: derived
    vlmserve("logits", "--model", fixture_dir, "--inputs", padded, "--out", tmp_path / "p.out", "--dtype", "float32")
    got = load_file(tmp_path / "p.out")
    real = fixture_expected["padded_expanded_attention_mask"].bool()
    assert (got["logits"][real] - fixture_expected["padded_logits"][real]).abs().max() < ATOL

    text = tmp_path / "text.safetensors"
    save_file({"input_ids": fixture_inputs["text_input_ids"], "attention_mask": fixture_inputs["text_attention_mask"]}, text)
    vlmserve("logits", "--model", fixture_dir, "--inputs", text, "--out", tmp_path / "t.out", "--dtype", "float32")
    got = load_file(tmp_path / "t.out")
    assert "vision_embeds" not in got
    assert (got["logits"] - fixture_expected["text_logits"]).abs().max() < ATOL


def test_bad_inputs_are_clear_errors(fixture_dir, tmp_path):
    bad = tmp_path / "bad.safetensors"
    save_file({"ids": torch.zeros(1, 3, dtype=torch.long)}, bad)
    p = vlmserve("logits", "--model", fixture_dir, "--inputs", bad, "--out", tmp_path / "x", check=False)
    assert p.returncode != 0 and "no 'input_ids'" in p.stderr
    p = vlmserve("generate", "--model", tmp_path / "nowhere", "--prompt", "x", check=False)
    assert p.returncode != 0 and "not a checkpoint directory" in p.stderr


def test_serve_generate_and_logits_take_the_same_model_flags():
    from vlmserve.model_flags import QUANT_CHOICES

    for command in ("serve", "generate", "logits"):
        out = vlmserve(command, "--help").stdout
        for flag in ("--model", "--dtype", "--quant", "--keep-16bit", "--device"):
            assert flag in out, (command, flag)
        assert "{" + ",".join(QUANT_CHOICES) + "}" in out, command
    bad = vlmserve("serve", "--model", "tiny-random", "--quant", "int3", check=False)
    assert bad.returncode == 2 and "invalid choice: 'int3'" in bad.stderr
