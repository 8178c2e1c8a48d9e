"""The one-kernel decode attention (vlmserve.engine.triton_decode) in Triton's interpreter on CPU: against a float32
reference over each row's own length (new token included, cache written at its position), rotating q and k itself
as the decoder would, and inside the engine on the
tiny model, where the greedy tokens must be the reference's whatever the batching and slot moves. The GPU run (bf16,
and its speed against the torch path) is bench/gpu_session.sh decode_attn's."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")
INFERENCE = Path(__file__).resolve().parents[1]

KERNEL = r"""
import math, torch
from vlmserve.engine.triton_decode import decode_attention
from vlmserve.rotary import RotaryTable, apply_rotary
g = torch.Generator().manual_seed(0)

def reference(q, kc, vc, pos):
    B, H, _, D = q.shape
    G = H // kc.shape[1]
    outs = []
    for b in range(B):
        n = int(pos[b]) + 1
        K = kc[b, :, :n].float().repeat_interleave(G, 0)
        V = vc[b, :, :n].float().repeat_interleave(G, 0)
        s = (q[b, :, 0].float()[:, None, :] @ K.transpose(1, 2))[:, 0] / math.sqrt(D)
        outs.append((torch.softmax(s, -1)[:, None, :] @ V)[:, 0])
    return torch.stack(outs)[:, :, None]

# GLM-4V-9B's heads (32 query heads on 2 kv heads of 128), fp32 and fp16; the tiny model's (2 query heads per kv head,
# padded to a dot's 16 rows); positions 0 (only the new token), block edges, and a slot past the rows in use
for dtype, H, KV, D, S, pos in [(torch.float32, 32, 2, 128, 200, [0, 63, 64, 150]),
                                (torch.float16, 32, 2, 128, 200, [5, 129]), (torch.float32, 4, 2, 16, 40, [3, 17, 0])]:
    B = len(pos)
    kc = torch.randn(B + 1, KV, S, D, generator=g).to(dtype)
    vc = torch.randn(B + 1, KV, S, D, generator=g).to(dtype)
    qkv = torch.randn(B, 1, H + 2 * KV, D, generator=g).to(dtype)     # views of one projection, as the model has them
    q, k, v = (qkv[:, :, a:z].transpose(1, 2) for a, z in ((0, H), (H, H + KV), (H + KV, H + 2 * KV)))
    p = torch.tensor(pos)
    want_k, want_v = kc.clone(), vc.clone()
    for b in range(B):
        want_k[b, :, pos[b]] = k[b, :, 0]
        want_v[b, :, pos[b]] = v[b, :, 0]
    out = decode_attention(q, k, v, kc, vc, p)
    assert torch.equal(kc, want_k) and torch.equal(vc, want_v), "the new K/V go to each row's position, nothing else"
    want = reference(q, want_k, want_v, p)
    err = ((out.float() - want).abs().max() / want.abs().max()).item()
    assert err <= (1e-5 if dtype == torch.float32 else 2e-3), (dtype, H, D, pos, err)

    # the same step with q and k as projected and the rotary factors of each row's position: the kernel rotates
    # them as the decoder's apply_rotary does, so cache and output are those of the pre-rotated call
    table = RotaryTable(D, 256)
    table.build()
    factors = table(p[:, None], dtype)
    raw = torch.randn(B, 1, H + 2 * KV, D, generator=g).to(dtype)
    rotated = torch.cat((apply_rotary(raw[:, :, :H + KV], factors), raw[:, :, H + KV:]), 2)
    kc_a, vc_a, kc_b, vc_b = kc.clone(), vc.clone(), kc.clone(), vc.clone()
    heads = lambda t: (t[:, :, a:z].transpose(1, 2) for a, z in ((0, H), (H, H + KV), (H + KV, H + 2 * KV)))
    plain = decode_attention(*heads(rotated), kc_a, vc_a, p)
    fused = decode_attention(*heads(raw), kc_b, vc_b, p, rotary=factors)
    assert torch.equal(kc_a, kc_b) and torch.equal(vc_a, vc_b), "the cache gets the rotated k"
    assert torch.equal(plain, fused), (dtype, H, D, pos, (plain.float() - fused.float()).abs().max())
print("ok")
"""

ENGINE = r"""
import sys
sys.path.insert(0, "tests")
import torch
from vlmserve.engine import Engine, EngineConfig
from vlmserve.engine.triton_decode import decode_attention
from vlmserve.tokenizer import Tokenizer
from vlmserve.weights import load_model
from test_engine import reference, requests, run, tokens
from test_engine_scheduling import image

model, _ = load_model(sys.argv[1], "cpu", "float32")
tok = Tokenizer.from_dir(sys.argv[1])
engine = Engine(model, tok, EngineConfig(max_batch=2, slot_len=256))
assert engine.attn._fused_decode is decode_attention
calls = []
engine.attn._fused_decode = lambda *a: calls.append(a[-1] is not None) or decode_attention(*a)
engine.start()
try:
    reqs = requests(tok, image(model, (200, 40, 90)), 6)
    got = run(engine, reqs)
finally:
    engine.stop()
for r in reqs:
    assert tokens(got[r.request_id]) == reference(model, r.prompt_ids, r.pixel_values, 6), r.request_id
assert calls and all(calls), "every decode step's attention rotates q and k in the kernel"
print("ok")
"""


def interpreted(script: str, *args: str) -> None:
    env = dict(os.environ, TRITON_INTERPRET="1", VLMSERVE_DECODE_ATTENTION="triton", PYTHONPATH=str(INFERENCE))
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=INFERENCE, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


def test_kernel_against_a_float32_reference():
    interpreted(KERNEL)


def test_engine_with_the_kernel_gives_the_reference_tokens(tiny_dir):
    interpreted(ENGINE, str(tiny_dir))
