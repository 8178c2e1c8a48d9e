"""NF4 through the loader and the CLI on fixture A: quantize-on-load, bitsandbytes-format checkpoints
(written here from the format description), `python -m vlmserve logits --quant nf4`."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from vlmserve.generate import generate
from vlmserve.quant.linear import NF4Linear
from vlmserve.quant.nf4 import NF4_CODE_VALUES, dynamic_code_8bit
from vlmserve.quant.policy import should_quantize
from vlmserve.weights import CheckpointError, load_model

ATOL = 1e-4
STATE = "quant_state.bitsandbytes__nf4"


@pytest.fixture(scope="module")
def expected_nf4(fixture_dir):
    return load_file(fixture_dir / "expected_nf4.safetensors")


@pytest.fixture(scope="module")
def nf4_model(fixture_dir):
    model, _ = load_model(fixture_dir, "cpu", "float32", quant="nf4")
    return model


def bnb_tensors(name: str, w: torch.Tensor, double_quant: bool = False) -> dict[str, torch.Tensor]:
    """What transformers' save_pretrained writes for one bitsandbytes NF4 weight, from the format description:
    blocks of 64 over the flattened weight, float32 absmax, nearest NF4 code, two codes per byte with the
    first in the high nibble, (numel+1)//2 bytes as [n, 1]; with double quantization the absmax minus its
    mean goes through 8-bit blockwise (256) quantization with the dynamic code book."""
    code = torch.tensor(NF4_CODE_VALUES, dtype=torch.float32)
    flat = w.reshape(-1).float()
    n = flat.numel()
    blocks = torch.nn.functional.pad(flat, (0, -n % 64)).view(-1, 64)
    absmax = blocks.abs().amax(dim=1)
    idx = (blocks / absmax[:, None]).unsqueeze(-1).sub(code).abs().argmin(dim=-1).reshape(-1)[:n]
    if n % 2:
        idx = torch.cat([idx, idx.new_zeros(1)])
    packed = ((idx[0::2] << 4) | idx[1::2]).to(torch.uint8).reshape(-1, 1)
    state = {"quant_type": "nf4", "blocksize": 64, "dtype": "float32", "shape": list(w.shape)}
    out = {name: packed, f"{name}.quant_map": code}
    if double_quant:
        code2 = dynamic_code_8bit()
        offset = absmax.mean()
        centered = absmax - offset
        cblocks = torch.nn.functional.pad(centered, (0, -centered.numel() % 256)).view(-1, 256)
        nested = cblocks.abs().amax(dim=1)
        q = (cblocks / nested[:, None]).unsqueeze(-1).sub(code2).abs().argmin(dim=-1).reshape(-1)[: absmax.numel()]
        out.update({f"{name}.absmax": q.to(torch.uint8), f"{name}.nested_absmax": nested,
                    f"{name}.nested_quant_map": code2})
        state.update(nested_blocksize=256, nested_dtype="float32", nested_offset=offset.item())
        absmax = code2[q] * nested[torch.arange(absmax.numel()) // 256] + offset  # what a reader must rebuild
    else:
        out[f"{name}.absmax"] = absmax
    out[f"{name}.{STATE}"] = torch.tensor(list(json.dumps(state).encode("utf-8")), dtype=torch.uint8)
    values = code[idx[:n]] * absmax.repeat_interleave(64)[:n]
    return out, values.view(w.shape)


def write_bnb_checkpoint(fixture_dir, out_dir, double_quant=False, skip=("transformer.output_layer.weight",)):
    """Two shards: plain tensors + packed weights in the first, every quant-state tensor in the second
    (so the loader must join pieces across shards). Like transformers' default, output_layer stays plain."""
    out_dir.mkdir()
    shutil.copy(fixture_dir / "config.json", out_dir / "config.json")
    state = load_file(fixture_dir / "model.safetensors")
    shard1, shard2, values = {}, {}, {}
    for name, t in state.items():
        if should_quantize(name) and name not in skip:
            pieces, values[name] = bnb_tensors(name, t, double_quant)
            for key, v in pieces.items():
                (shard1 if key == name else shard2)[key] = v
        else:
            shard1[name] = t
    save_file(shard1, out_dir / "model-00001-of-00002.safetensors")
    save_file(shard2, out_dir / "model-00002-of-00002.safetensors")
    weight_map = {k: "model-00001-of-00002.safetensors" for k in shard1}
    weight_map.update({k: "model-00002-of-00002.safetensors" for k in shard2})
    (out_dir / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return values


def test_default_policy_reproduces_expected_nf4(nf4_model, fixture_inputs, expected_nf4):
    trace = {}
    with torch.inference_mode():
        logits = nf4_model(fixture_inputs["input_ids"], fixture_inputs["pixel_values"], trace=trace)
        gen = generate(nf4_model, fixture_inputs["input_ids"], fixture_inputs["pixel_values"], max_new_tokens=8,
                       eos_ids=[])
    assert (logits - expected_nf4["logits"]).abs().max() < ATOL
    assert (trace["vision_embeds"] - expected_nf4["vision_embeds"]).abs().max() < ATOL
    assert gen.ids == expected_nf4["greedy_ids"].tolist()
    quantized = sorted(n for n, m in nf4_model.named_modules() if isinstance(m, NF4Linear))
    assert len(quantized) == 21
    assert all(not m.double_quant for m in nf4_model.modules() if isinstance(m, NF4Linear))  # float32: plain absmax


def test_bnb_checkpoint_gives_the_logits_of_quantize_on_load(fixture_dir, fixture_inputs, expected_nf4, nf4_model,
                                                              tmp_path):
    write_bnb_checkpoint(fixture_dir, tmp_path / "bnb")
    model, _ = load_model(tmp_path / "bnb", "cpu", "float32", quant="nf4")
    with torch.inference_mode():
        got = model(fixture_inputs["input_ids"], fixture_inputs["pixel_values"])
        want = nf4_model(fixture_inputs["input_ids"], fixture_inputs["pixel_values"])
    assert torch.equal(got, want)
    assert (got - expected_nf4["logits"]).abs().max() < ATOL
    # output_layer came as float32 and was quantized on load; the others were read packed
    assert isinstance(model.transformer.output_layer, NF4Linear)


def test_bnb_double_quant_checkpoint_and_quant_none(fixture_dir, tmp_path):
    values = write_bnb_checkpoint(fixture_dir, tmp_path / "bnb", double_quant=True, skip=())
    model, _ = load_model(tmp_path / "bnb", "cpu", "float32", quant="nf4")
    modules = dict(model.named_modules())
    for name, v in values.items():
        lin = modules[name.removesuffix(".weight")]
        assert isinstance(lin, NF4Linear) and lin.double_quant
        assert torch.allclose(lin.dequantize(torch.float32), v, rtol=1e-6, atol=1e-7), name
    # --quant none on a 4-bit checkpoint: plain linears holding the dequantized values
    plain, _ = load_model(tmp_path / "bnb", "cpu", "float32", quant="none")
    params = dict(plain.named_parameters())
    assert not any(isinstance(m, NF4Linear) for m in plain.modules())
    for name, v in values.items():
        assert torch.allclose(params[name], v, rtol=1e-6, atol=1e-7), name
    # keep_16bit on a 4-bit checkpoint: that layer is dequantized, the rest stay NF4
    kept, _ = load_model(tmp_path / "bnb", "cpu", "float32", quant="nf4", keep_16bit=["output_layer"])
    assert not isinstance(kept.transformer.output_layer, NF4Linear)
    assert isinstance(kept.transformer.encoder.layers[0].mlp.dense_h_to_4h, NF4Linear)


def test_bnb_checkpoint_errors_are_clear(fixture_dir, tmp_path):
    write_bnb_checkpoint(fixture_dir, tmp_path / "bnb")
    shard2 = tmp_path / "bnb" / "model-00002-of-00002.safetensors"
    tensors = load_file(shard2)
    name = "transformer.encoder.layers.0.mlp.dense_4h_to_h.weight"
    # a missing absmax
    broken = {k: v for k, v in tensors.items() if k != f"{name}.absmax"}
    save_file(broken, shard2)
    index = tmp_path / "bnb" / "model.safetensors.index.json"
    idx = json.loads(index.read_text())
    del idx["weight_map"][f"{name}.absmax"]
    index.write_text(json.dumps(idx))
    with pytest.raises(CheckpointError, match="absmax"):
        load_model(tmp_path / "bnb", "cpu", "float32", quant="nf4")
    # an fp4 quant state
    fp4 = dict(tensors)
    state = json.loads(bytes(fp4[f"{name}.{STATE}"].tolist()))
    state["quant_type"] = "fp4"
    fp4[f"{name}.{STATE}"] = torch.tensor(list(json.dumps(state).encode()), dtype=torch.uint8)
    save_file(fp4, shard2)
    idx["weight_map"][f"{name}.absmax"] = shard2.name
    index.write_text(json.dumps(idx))
    with pytest.raises(ValueError, match="fp4"):
        load_model(tmp_path / "bnb", "cpu", "float32", quant="nf4")


def test_logits_command_with_quant_nf4(fixture_dir, expected_nf4, tmp_path):
    out = tmp_path / "out.safetensors"
    p = subprocess.run([sys.executable, "-m", "vlmserve", "logits", "--model", str(fixture_dir), "--inputs",
                        str(fixture_dir / "inputs.safetensors"), "--out", str(out), "--dtype", "float32",
                        "--quant", "nf4"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = load_file(out)
    assert (got["logits"] - expected_nf4["logits"]).abs().max() < ATOL
    assert (got["vision_embeds"] - expected_nf4["vision_embeds"]).abs().max() < ATOL


def test_keep_16bit_option_on_the_command_line(fixture_dir, fixture_expected, expected_nf4, tmp_path):
    """--keep-16bit keeps the named layers out of NF4: keeping the vision tower gives the float32 vision
    embeddings while the decoder stays 4-bit."""
    out = tmp_path / "out.safetensors"
    p = subprocess.run([sys.executable, "-m", "vlmserve", "logits", "--model", str(fixture_dir), "--inputs",
                        str(fixture_dir / "inputs.safetensors"), "--out", str(out), "--dtype", "float32",
                        "--quant", "nf4", "--keep-16bit", "vision"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    got = load_file(out)
    assert (got["vision_embeds"] - fixture_expected["vision_embeds"]).abs().max() < ATOL
    assert (got["vision_embeds"] - expected_nf4["vision_embeds"]).abs().max() > 1e-3
    assert (got["logits"] - fixture_expected["logits"]).abs().max() > 1e-3   # the decoder is still NF4
