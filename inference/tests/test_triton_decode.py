"""The one-kernel decode attention (vlmserve.engine.triton_decode) in Triton's interpreter on CPU: against a float32
reference over each row's own length (new token included, cache written at its position), rotating q and k itself
as the decoder would, and inside the engine on the
tiny model, where the greedy tokens must be the reference's whatever the batching and slot moves. The GPU run (bf16,
and its speed against the torch path) is bench/gpu_session.sh decode_attn's."""
import pytest
from triton_interpreter import run_interpreted

pytest.importorskip("triton")

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
    want = reference(q, want_k, want_v, p)
    # whole contexts, and contexts cut into 64-key splits merged by the second kernel (with S = 200: splits that
    # hold the new token only, empty ones, partly filled ones)
    for splits in (1, 4):
        kc_s, vc_s = kc.clone(), vc.clone()
        out = decode_attention(q, k, v, kc_s, vc_s, p, splits=splits)
        assert torch.equal(kc_s, want_k) and torch.equal(vc_s, want_v), "the new K/V go to each row's position only"
        err = ((out.float() - want).abs().max() / want.abs().max()).item()
        assert err <= (1e-5 if dtype == torch.float32 else 2e-3), (dtype, H, D, pos, splits, err)

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
engine.attn._fused_decode = lambda *a, **kw: calls.append(a[6] is not None) or decode_attention(*a, **kw)
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


SPLITS = r"""
from vlmserve.engine.triton_decode import context_splits
# batch 1 on GLM-4V-9B's 2 kv heads over a 2,048 bucket: 16 splits of 128 keys (not more: each costs a merge)
assert context_splits(2, 2048, 132) == 16
assert context_splits(32, 2048, 132) == 9           # batch 16: 288 programs, twice 132 SMs over
assert context_splits(128, 2048, 132) == 3          # batch 64
assert context_splits(256, 2048, 132) == 2          # batch 128: 2 x 256 programs
assert context_splits(264, 2048, 132) == 1          # batch 132 fills the GPU twice over by itself
assert context_splits(2, 100, 132) == 1             # too short to cut
print("ok")
"""


def interpreted(script: str, *args: str) -> None:
    # the switch unset: the kernel is the default wherever Triton runs
    run_interpreted(script, *args, drop_env=("VLMSERVE_DECODE_ATTENTION",))


def test_kernel_against_a_float32_reference():
    interpreted(KERNEL)


def test_the_context_is_split_only_while_the_gpu_is_not_full():
    interpreted(SPLITS)


def test_engine_with_the_kernel_gives_the_reference_tokens(tiny_dir):
    interpreted(ENGINE, str(tiny_dir))
