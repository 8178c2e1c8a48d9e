import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from vlmserve.weights import CheckpointError, dtype_for, load_model


def copy_fixture(src, dst, edit=None):
    dst.mkdir()
    shutil.copy(src / "config.json", dst / "config.json")
    state = load_file(src / "model.safetensors")
    if edit:
        edit(state)
    save_file(state, dst / "model.safetensors")
    return dst


def test_loads_every_parameter_to_the_target(fixture_model):
    params = dict(fixture_model.named_parameters())
    assert len(params) == 55          # fixture: 56 tensors, minus the unused rotary inv_freq
    assert all(p.device.type == "cpu" and p.dtype == torch.float32 for p in params.values())
    assert fixture_model.transformer.rotary.cos_sin.device.type == "cpu"


def test_missing_tensor_is_named(fixture_dir, tmp_path):
    d = copy_fixture(fixture_dir, tmp_path / "m", lambda s: s.pop("transformer.vision.eoi"))
    with pytest.raises(CheckpointError, match=r"missing tensors \(1\): transformer\.vision\.eoi"):
        load_model(d, "cpu", "float32")


def test_unexpected_tensor_is_named(fixture_dir, tmp_path):
    def add(s):
        s["transformer.encoder.layers.7.mlp.dense_h_to_4h.weight"] = torch.zeros(2, 2)
    d = copy_fixture(fixture_dir, tmp_path / "u", add)
    with pytest.raises(CheckpointError, match=r"unexpected tensors \(1\): transformer\.encoder\.layers\.7"):
        load_model(d, "cpu", "float32")


def test_shape_mismatch_is_named(fixture_dir, tmp_path):
    def shrink(s):
        s["transformer.output_layer.weight"] = s["transformer.output_layer.weight"][:500]
    d = copy_fixture(fixture_dir, tmp_path / "s", shrink)
    with pytest.raises(CheckpointError, match=r"transformer\.output_layer\.weight: checkpoint \[500, 64\] vs model \[512, 64\]"):
        load_model(d, "cpu", "float32")


def test_sharded_and_single_file_load_the_same(tiny_dir, tmp_path):
    index = json.loads((tiny_dir / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) == 2
    single = tmp_path / "single"
    single.mkdir()
    shutil.copy(tiny_dir / "config.json", single / "config.json")
    merged = {}
    for f in sorted(set(index["weight_map"].values())):
        merged.update(load_file(tiny_dir / f))
    save_file(merged, single / "model.safetensors")
    a, _ = load_model(tiny_dir, "cpu", "float32")
    b, _ = load_model(single, "cpu", "float32")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_missing_files_are_clear_errors(fixture_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(empty, "cpu")
    shutil.copy(fixture_dir / "config.json", empty / "config.json")
    with pytest.raises(CheckpointError, match="neither model.safetensors.index.json nor model.safetensors"):
        load_model(empty, "cpu")
    (empty / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "gone.safetensors"}}))
    with pytest.raises(CheckpointError, match="gone.safetensors"):
        load_model(empty, "cpu")


def test_dtype_for():
    assert dtype_for("cpu", "auto") == torch.float32
    assert dtype_for("cpu", "bfloat16") == torch.bfloat16
    assert dtype_for("cuda", "float16") == torch.float16
    with pytest.raises(ValueError, match="unknown dtype"):
        dtype_for("cpu", "float8")


def test_nf4_quantize_on_load_matches_golden(fixture_dir, fixture_inputs):
    pytest.importorskip("vlmserve.quant.linear")
    from vlmserve.quant.linear import NF4Linear
    model, _ = load_model(fixture_dir, "cpu", "float32", quant="nf4")
    quantized = [n for n, m in model.named_modules() if isinstance(m, NF4Linear)]
    assert len(quantized) == 21 and "transformer.output_layer" in quantized
    assert not isinstance(model.transformer.embedding.word_embeddings, NF4Linear)
    expected = load_file(fixture_dir / "expected_nf4.safetensors")
    trace = {}
    with torch.inference_mode():
        logits = model(fixture_inputs["input_ids"], fixture_inputs["pixel_values"], trace=trace)
    assert (trace["vision_embeds"] - expected["vision_embeds"]).abs().max() < 1e-4
    assert (logits - expected["logits"]).abs().max() < 1e-4


def test_unknown_quant_is_refused(fixture_dir):
    with pytest.raises(ValueError, match="unknown quant"):
        load_model(fixture_dir, "cpu", quant="int3")


def test_place_embeddings_checks_its_choice_and_leaves_a_cpu_model_alone(tiny_dir):
    import pytest

    from vlmserve.weights import load_model, place_embeddings

    model, _ = load_model(tiny_dir, "cpu", "float32", embeddings="host")
    table = model.transformer.embedding
    assert table.word_embeddings.weight.device.type == "cpu" and not table.on_host  # no device to spare: no-op
    with pytest.raises(ValueError, match="embeddings must be one of"):
        place_embeddings(model, "nf4", "gpu")
