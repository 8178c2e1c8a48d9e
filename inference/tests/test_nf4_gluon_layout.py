"""bench/nf4_gluon_probe.py without a GPU: the Marlin-style NF4 kernel's index math against Triton's own linear
layouts, its block arithmetic (tails included) in numpy, the repack, and its sm_90 machine code.

Layouts come from Triton's linear-layout conversion (GluonOpBuilder.to_linear_layout): the weight load layout
(BlockedLayout([4], [32], [NW], [0]) over a tile's int32 words) and the mma_v2 operand-A layout. Per thread, the
tests take its words from the repacked buffer, decode them with nf4_prmt.emulate (the PTX program, instruction by
instruction), place the 16-bit halves in the register order the kernel's join nesting gives, and check each
register against the weight at the (row, column) the operand layout assigns to it. The kernel itself (inline PTX,
cp.async) runs on a GPU only: `python bench/nf4_gluon_probe.py` there checks it against dequant + F.linear.
"""
from __future__ import annotations

import re

import pytest

pytest.importorskip("triton")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from conftest import bench_module  # noqa: E402
from vlmserve.quant import nf4, nf4_prmt  # noqa: E402

P = bench_module("nf4_gluon_probe")
NW = P.NUM_WARPS
CODE = torch.tensor(nf4.NF4_CODE_VALUES, dtype=torch.float32)
TABLE = nf4_prmt.table_bits(CODE, torch.bfloat16)


def _layouts(bn: int):
    from triton._C.libtriton import gluon_ir, ir
    from triton.experimental.gluon import language as gl
    ctx = ir.context()
    ir.load_dialects(ctx)
    b = gluon_ir.GluonOpBuilder(ctx)
    mma = gl.NVMMADistributedLayout(version=[2, 0], warps_per_cta=[NW, 1], instr_shape=[16, 8])
    la = b.to_linear_layout(gl.DotOperandLayout(0, mma, 2)._to_ir(b), [bn, 64])
    lw = b.to_linear_layout(gl.BlockedLayout([4], [32], [NW], [0])._to_ir(b), [bn * 8])
    return la, lw


def _apply(layout, reg: int, lane: int, warp: int) -> tuple[int, ...]:
    out = [0] * len(layout.shape)
    for bases, idx in ((layout.reg_bases, reg), (layout.lane_bases, lane), (layout.warp_bases, warp)):
        for i, basis in enumerate(bases):
            if idx >> i & 1:
                out = [o ^ v for o, v in zip(out, basis)]
    return tuple(out)


def _bnb_pack(idx: np.ndarray) -> torch.Tensor:
    """[N, K] 4-bit indices -> bitsandbytes' packed bytes (even column in the high nibble)."""
    flat = idx.reshape(-1)
    return torch.from_numpy((flat[0::2] << 4 | flat[1::2]).astype(np.uint8))


def _bf16(v: np.ndarray) -> np.ndarray:
    return torch.from_numpy(np.asarray(v, dtype=np.float32)).to(torch.bfloat16).to(torch.float32).numpy()


def _bits_to_f32(bits: int) -> float:
    return float(torch.tensor([bits], dtype=torch.int32).to(torch.int16).view(torch.bfloat16).float())


def _thread_registers(words: np.ndarray, base: int, lw, reps: int, lane: int, warp: int):
    """One thread's decoded 16-bit values in the kernel's register order, and the PTX output words."""
    mine = [_apply(lw, r, lane, warp)[0] for r in range(4 * reps)]
    for q in range(reps):   # one 16-byte load per 16-row group: 4 consecutive, aligned words
        assert mine[4 * q:4 * q + 4] == list(range(mine[4 * q], mine[4 * q] + 4)) and mine[4 * q] % 4 == 0
    regs, out32 = [], []
    for w in mine:
        o = nf4_prmt.emulate(TABLE, int(words[base + w]), tid=warp * 32 + lane)
        out32.append(o)
        # join(join(join(l0, l2), join(l1, l3)), join(join(h0, h2), join(h1, h3))): register index bits (LSB
        # first) = 16-bit half, output bit 0, output bit 1
        for j in range(8):
            regs.append(o[(j >> 1 & 1) | (j >> 2 & 1) << 1] >> (16 * (j & 1)) & 0xFFFF)
    return regs, out32


def test_mma_fragment_definition():
    """The compiler's operand-A layout is PTX's mma.m16n8k16 A fragment: lane 4g + t holds (g, 2t..2t+1),
    (g+8, 2t..), (g, 2t+8..), (g+8, 2t+8..) in a0..a7 (PTX ISA, 'Matrix Fragments for mma.m16n8k16')."""
    la, _ = _layouts(64)
    for lane in range(32):
        g, t = lane // 4, lane % 4
        want = [(g, 2 * t), (g, 2 * t + 1), (g + 8, 2 * t), (g + 8, 2 * t + 1),
                (g, 2 * t + 8), (g, 2 * t + 9), (g + 8, 2 * t + 8), (g + 8, 2 * t + 9)]
        assert [_apply(la, r, lane, 0) for r in range(8)] == want


@pytest.mark.parametrize("bn", [64, 128])
def test_decode_lands_on_operand_registers(bn):
    """Every decoded register holds the weight at the (row, column) the operand layout gives it, and each 32-bit
    operand register is one PTX output register as is (no repacking between the decode and the MMA)."""
    rng = np.random.default_rng(bn)
    reps = bn // (16 * NW)
    n_rows, k = 2 * bn, 128                                  # two tiles, two quant blocks
    idx = rng.integers(0, 16, size=(n_rows, k))
    rp, _ = P.repack(_bnb_pack(idx), torch.ones(n_rows * k // 64), n_rows, k, bn)
    words = rp.numpy().view(np.uint32)                       # little-endian: byte i of a word = bits 8i..8i+7
    la, lw = _layouts(bn)
    assert la.shape == [bn, 64] and len(la.reg_bases) == 5 + (reps - 1).bit_length()
    code_bits = np.array(TABLE)
    for tile in range(n_rows // bn):
        for blk in range(k // 64):
            base = (tile * (k // 64) + blk) * bn * 8
            for warp in range(NW):
                for lane in range(32):
                    regs, out32 = _thread_registers(words, base, lw, reps, lane, warp)
                    assert len(regs) == 2 ** len(la.reg_bases)
                    for r, bits in enumerate(regs):
                        n, kk = _apply(la, r, lane, warp)
                        assert bits == code_bits[idx[tile * bn + n, blk * 64 + kk]], (tile, blk, warp, lane, r)
                    for m in range(len(regs) // 2):
                        w_i, o_sel = divmod(m, 4)
                        assert regs[2 * m] | regs[2 * m + 1] << 16 == out32[w_i][(o_sel & 1) | (o_sel >> 1) << 1]


@pytest.mark.parametrize("bn", [64, 128])
def test_repack_round_trips(bn):
    """The torch repack is repack_index's layout, holds every weight exactly once, and the absmax transposed."""
    rng = np.random.default_rng(3)
    n_rows, k = 256, 192
    idx = rng.integers(0, 16, size=(n_rows, k))
    absmax = torch.from_numpy(rng.uniform(0.01, 0.1, size=n_rows * k // 64).astype(np.float32))
    rp, amax_t = P.repack(_bnb_pack(idx), absmax, n_rows, k, bn)
    row, col = P.repack_index(n_rows, k, bn)
    b = rp.numpy().astype(np.int64)
    assert (b >> 4 == idx[row, col]).all() and (b & 15 == idx[row, col + 8]).all()
    seen = np.zeros((n_rows, k), dtype=np.int64)
    np.add.at(seen, (row, col), 1)
    np.add.at(seen, (row, col + 8), 1)
    assert (seen == 1).all()
    assert torch.equal(amax_t, absmax.reshape(n_rows, k // 64).t())


def _decoded_tile(words: np.ndarray, tile: int, blk: int, k: int, bn: int, la, lw) -> np.ndarray:
    """One quant block of one tile as the kernel holds it after the decode, placed by the operand layout."""
    reps = bn // (16 * NW)
    base = (tile * (k // 64) + blk) * bn * 8
    a = np.full((bn, 64), np.nan, dtype=np.float32)
    for warp in range(NW):
        for lane in range(32):
            regs, _ = _thread_registers(words, base, lw, reps, lane, warp)
            for r, bits in enumerate(regs):
                n, kk = _apply(la, r, lane, warp)
                a[n, kk] = _bits_to_f32(bits)
    assert not np.isnan(a).any()
    return a


def _simulate(x: np.ndarray, rp: torch.Tensor, amax_t: torch.Tensor, n_rows: int, k: int, v, sms: int):
    """The kernel's arithmetic on logical tensors, split by split in the kernels' block order (main loop, tail):
    the float32 partials [SPLIT, M, N]."""
    la, lw = _layouts(v.bn)
    words = rp.numpy().view(np.uint32)
    k_blocks = k // 64
    split, per = P.split_plan(k_blocks, n_rows // v.bn, v, sms)
    out = np.zeros((split, x.shape[0], n_rows), dtype=np.float32)
    done = np.zeros((n_rows // v.bn, k_blocks), dtype=np.int64)
    parts = set()
    for t in range(n_rows // v.bn):
        for sp in range(split):
            acc = np.zeros((v.bn, x.shape[0]), dtype=np.float32)
            b0 = sp * per
            for part, slot, blk in P.schedule(b0, min(b0 + per, k_blocks), v.depth):
                assert slot == (blk - b0) % v.depth       # ring slot / register set of the block
                parts.add(part)
                done[t, blk] += 1
                a = _decoded_tile(words, t, blk, k, v.bn, la, lw)
                s = amax_t[blk, t * v.bn:(t + 1) * v.bn].numpy()
                xb = x[:, blk * 64:(blk + 1) * 64]
                if v.scale_w:
                    acc += _bf16(a * _bf16(s)[:, None]) @ xb.T
                else:
                    acc += (a @ xb.T) * s[:, None]
            out[sp, :, t * v.bn:(t + 1) * v.bn] = acc.T
    assert (done == 1).all()          # every quant block once, across splits and tails
    return out, parts


@pytest.mark.parametrize("pipe,depth,scale_w,k,tail", [("async", 4, False, 256, False), ("async", 4, True, 448, True),
                                                       ("regs", 2, False, 320, True), ("async", 8, True, 832, True),
                                                       ("async", 8, False, 960, True)])
def test_block_arithmetic_equals_dequant_product(pipe, depth, scale_w, k, tail):
    """The partials of the simulated kernel sum to dequant(W) x^T, also where a split's block count is not a
    multiple of DEPTH and the tail runs: K = 448 (7 blocks, splits of 4 + 3), 320 (5: 3 + 2), 832 (13: 7 + 6,
    tails only) and 960 (15: 8 + 7, main loop then tail)."""
    rng = np.random.default_rng(7)
    v = P.Variant(pipe, depth, 64, scale_w, waves=2)
    n_rows, m = 2 * v.bn, 16
    idx = rng.integers(0, 16, size=(n_rows, k))
    absmax = torch.from_numpy(rng.uniform(0.01, 0.1, size=n_rows * k // 64).astype(np.float32))
    x = _bf16(rng.standard_normal((m, k)).astype(np.float32))
    rp, amax_t = P.repack(_bnb_pack(idx), absmax, n_rows, k, v.bn)
    got, parts = _simulate(x, rp, amax_t, n_rows, k, v, sms=2)
    assert ("tail" in parts) == tail
    w = _bf16(CODE.numpy()[idx] * np.repeat(absmax.numpy().reshape(n_rows, k // 64), 64, axis=1))
    ref = x @ w.T
    # the reference rounds code * absmax once to bf16; the kernel scales the bf16 code after the dot (float32) or
    # in bf16 (SCALE_W): a few bf16 ulps apart
    np.testing.assert_allclose(got.sum(0), ref, rtol=2e-2, atol=2e-2 * np.abs(ref).max())


def test_split_plan_covers_k_with_tails():
    """Decoder shapes: splits cover K's blocks once, none empty; 4h_to_h's 214 blocks leave tails."""
    for k_blocks in (64, 214):
        for v in P.variants(waves="2,4"):
            for n in (4096, 151552):
                split, per = P.split_plan(k_blocks, n // v.bn, v, 132)
                assert 1 <= split <= 16 and (split - 1) * per < k_blocks <= split * per
                blocks = [b for sp in range(split)
                          for _, _, b in P.schedule(sp * per, min(sp * per + per, k_blocks), v.depth)]
                assert blocks == list(range(k_blocks))


_COMPILED: dict = {}


def _compiled(v, bm: int):
    key = (v.name, bm)
    if key not in _COMPILED:
        _COMPILED[key] = P.compile_sm90(v, bm)
    return _COMPILED[key]


def _loop_text(sass: str) -> list[str]:
    """The main loop's instructions with their modifiers (loop_mix's range)."""
    ins = [(int(a, 16), t.strip()) for a, t in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    for addr, text in ins:
        target = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", text)
        if target and int(target.group(1), 16) < addr:
            return [re.sub(r"^@!?U?P\w+\s+", "", t) for a, t in ins if int(target.group(1), 16) <= a <= addr]
    return []


# At 64 rows: the SCALE_W variants (the ones that fit: without it the 128-row tiles use all 255 registers and
# spill, the per-block float32 partial product doubling the accumulator; still timed on the GPU). The 64-row tiles
# without SCALE_W fit too (--cpu lists them), not compiled here to keep this file under a minute.
_CASES = [(v, 16) for v in P.variants(waves="4")] + [(v, 64) for v in P.variants(waves="4") if v.scale_w]


@pytest.mark.parametrize("v,bm", _CASES, ids=[f"{v.name}-m{bm}" for v, bm in _CASES])
def test_variant_compiles_for_sm90_without_spills_or_weight_shuffles(v, bm):
    """Each variant builds for sm_90 (the operand conversion asserted trivial: the decode lands in place), spills
    nothing, and its weight bytes go global -> registers (regs) or global -> shared by cp.async -> registers by one
    LDS.128 per 16-row group per block (async): no shuffles, no shared-memory stores, the PRMT program's 14 permutes
    per word."""
    sass_mod = bench_module("nf4_sass")
    kernel, info, sass = _compiled(v, bm)
    assert "0 bytes spill stores" in info and "0 bytes spill loads" in info, info
    body = _loop_text(sass)
    ops = [t.split()[0] for t in body]
    mix = sass_mod.loop_mix(sass)
    assert mix["SHFL"] == 0
    words = v.depth * v.reps * 4                      # 32-bit weight words decoded per thread per loop body
    if v.pipe == "async":
        assert mix["STS"] == 0
        assert ops.count("LDS.128") == v.depth * v.reps
        assert mix["PRMT"] == words * 14
    else:
        assert mix["LDS"] == 0                        # x goes through shared memory by STS + ldmatrix, not W
        assert ops.count("LDG.E.128") >= v.depth * v.reps
        assert mix["PRMT"] >= words * 14
    # per warp and quant block: (16-row groups) x (8-row slices of x) x (4 steps of 16 along K) m16n8k16
    assert mix["HMMA"] == v.depth * v.reps * (bm // 8) * 4


def test_join_puts_new_dim_fastest():
    """The register order the tests assume: each tt.join's result layout has the joined dimension as its fastest
    register dimension, so join(a, b) interleaves a's and b's registers."""
    kernel, _, _ = _compiled(P.Variant("async", 4, 128, True), 16)
    ttgir = kernel.asm["ttgir"]
    layouts = dict(re.findall(r"^(#\w+) = (#ttg\.\w+<.*>)$", ttgir, re.M))
    joins = re.findall(r"tt\.join .*-> tensor<([0-9x]+)x\w+, (#\w+)>", ttgir)
    assert len(joins) >= 7
    for shape, name in joins:
        rank = shape.count("x") + 1
        order = re.search(r"order = \[([0-9, ]+)\]", layouts[name]).group(1)
        assert int(order.split(",")[0]) == rank - 1, (shape, layouts[name])
