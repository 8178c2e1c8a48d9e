"""The Gluon ring kernel (vlmserve.quant.gluon_nf4) without a GPU: its index math against Triton's own linear
layouts, its block arithmetic (tails, both tile widths on one weight in the kernel layout, float32 and double-quantized
absmax) in numpy, the layout itself (vlmserve.quant.nf4_layout), and its sm_90 machine code (bench/nf4_gluon_probe.py
compiles it).

Layouts come from Triton's linear-layout conversion (GluonOpBuilder.to_linear_layout): the weight load layout
(BlockedLayout([4], [32], [NW], [0]) over a tile's int32 words) and the mma_v2 operand-A layout. Per thread, the
tests take its words from the repacked buffer, decode them with nf4_prmt.emulate (the PTX program, instruction by
instruction), place the 16-bit halves in the register order the kernel's join nesting gives, and check each
register against the weight at the (row, column) the operand layout assigns to it. The kernel itself (inline PTX,
cp.async) runs on a GPU only: test_nf4_gpu and `python bench/nf4_gluon_probe.py` there check it against dequant +
F.linear.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

pytest.importorskip("triton")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from conftest import bench_module  # noqa: E402
from vlmserve.quant import nf4, nf4_layout, nf4_prmt  # noqa: E402

G = pytest.importorskip("vlmserve.quant.gluon_nf4")
T = pytest.importorskip("vlmserve.quant.triton_nf4")
P = bench_module("nf4_gluon_probe")
NW = G.NUM_WARPS


@dataclass(frozen=True)
class Variant:
    """A ring candidate's code-shaping parameters (triton_nf4.Config's block_n, num_stages, scale_w, waves)."""
    depth: int
    bn: int
    scale_w: bool
    waves: int = 4

    @property
    def name(self) -> str:
        return f"bn{self.bn}-d{self.depth}{'-sw' if self.scale_w else ''}"


def _variants() -> list[Variant]:
    """Every distinct ring kernel of the tuner's candidates (waves change the grid, not the code)."""
    seen = {}
    for c in T.RING_CONFIGS[16] + T.RING_CONFIGS[64]:
        if c.ring:
            seen.setdefault((c.num_stages, c.block_n, c.scale_w), Variant(c.num_stages, c.block_n, c.scale_w))
    return list(seen.values())


@dataclass
class Packed:
    """One weight as the kernel reads it: the kernel layout's bytes, the transposed scales and the nested absmax."""
    weight: torch.Tensor
    scales: torch.Tensor
    n: int
    k: int
    code2: torch.Tensor | None = None
    nested: torch.Tensor | None = None
    offset: float = 0.0

    @property
    def double_quant(self) -> bool:
        return self.code2 is not None


def _packed_linear(lin) -> Packed:
    """An NF4Linear moved into the kernel layout (on the CPU: the same permutation the GPU's first use makes)."""
    lin._to_kernel_layout()
    if lin.double_quant:
        return Packed(lin.packed, lin.absmax_q, lin.out_features, lin.in_features, lin.nested_code,
                      lin.nested_absmax, lin.nested_offset)
    return Packed(lin.packed, lin.absmax, lin.out_features, lin.in_features)
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


def _tile_words(tile: int, blk: int, k: int, bn: int) -> np.ndarray:
    """The int32 word address of each of a tile's BN * 8 load elements j in quant block blk, as the kernels'
    _weight_base computes it: word j % 128 of 16-row group tile * BN/16 + j // 128, group-major."""
    j = np.arange(bn * 8)
    return ((tile * (bn // 16) + j // 128) * (k // 64) + blk) * 128 + j % 128


def _thread_registers(words: np.ndarray, addr: np.ndarray, lw, reps: int, lane: int, warp: int):
    """One thread's decoded 16-bit values in the kernel's register order, and the PTX output words; addr: the
    tile's word addresses (_tile_words)."""
    mine = [addr[_apply(lw, r, lane, warp)[0]] for r in range(4 * reps)]
    for q in range(reps):   # one 16-byte load per 16-row group: 4 consecutive, aligned words
        assert mine[4 * q:4 * q + 4] == list(range(mine[4 * q], mine[4 * q] + 4)) and mine[4 * q] % 4 == 0
    regs, out32 = [], []
    for w in mine:
        o = nf4_prmt.emulate(TABLE, int(words[w]), tid=warp * 32 + lane)
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
    rp, _ = nf4_layout.to_kernel_layout(_bnb_pack(idx), torch.ones(n_rows * k // 64), n_rows, k)
    words = rp.numpy().view(np.uint32)                       # little-endian: byte i of a word = bits 8i..8i+7
    la, lw = _layouts(bn)
    assert la.shape == [bn, 64] and len(la.reg_bases) == 5 + (reps - 1).bit_length()
    code_bits = np.array(TABLE)
    for tile in range(n_rows // bn):
        for blk in range(k // 64):
            addr = _tile_words(tile, blk, k, bn)
            for warp in range(NW):
                for rep in range(reps):   # each warp's 16-row group: one contiguous, aligned 512-byte run
                    lanes = sorted(addr[_apply(lw, 4 * rep + w, lane, warp)[0]] for lane in range(32) for w in range(4))
                    assert lanes == list(range(lanes[0], lanes[0] + 128)) and lanes[0] % 128 == 0
                for lane in range(32):
                    regs, out32 = _thread_registers(words, addr, lw, reps, lane, warp)
                    assert len(regs) == 2 ** len(la.reg_bases)
                    for r, bits in enumerate(regs):
                        n, kk = _apply(la, r, lane, warp)
                        assert bits == code_bits[idx[tile * bn + n, blk * 64 + kk]], (tile, blk, warp, lane, r)
                    for m in range(len(regs) // 2):
                        w_i, o_sel = divmod(m, 4)
                        assert regs[2 * m] | regs[2 * m + 1] << 16 == out32[w_i][(o_sel & 1) | (o_sel >> 1) << 1]


def test_repack_is_the_group_major_formula():
    """Each weight (n, c), c's nibble high (c % 16 < 8), sits at offset (g * K/64 + b) * 512 + lane * 16 + word * 4
    + byte with g = n // 16, b = c // 64 and, within the block, word = c % 64 // 16, lane = 4 * (n % 8) + c % 8 // 2,
    byte = 2 * (n % 16 // 8) + c % 2; column c + 8 in the same byte's low nibble."""
    rng = np.random.default_rng(5)
    n_rows, k = 64, 192
    idx = rng.integers(0, 16, size=(n_rows, k))
    rp, _ = nf4_layout.to_kernel_layout(_bnb_pack(idx), torch.ones(n_rows * k // 64), n_rows, k)
    n, c = np.meshgrid(np.arange(n_rows), np.arange(k), indexing="ij")
    n, c = n[c % 16 < 8], c[c % 16 < 8]
    cb = c % 64
    off = ((n // 16) * (k // 64) + c // 64) * 512 + (4 * (n % 8) + cb % 8 // 2) * 16 + cb // 16 * 4 \
        + 2 * (n % 16 // 8) + cb % 2
    b = rp.numpy().astype(np.int64)[off]
    assert (b >> 4 == idx[n, c]).all() and (b & 15 == idx[n, c + 8]).all()


@pytest.mark.parametrize("double_quant", [False, True])
def test_repack_round_trips(double_quant):
    """The torch repack is repack_index's layout, holds every weight exactly once, and the absmax (float32, or the
    uint8 codes of a double-quantized one) transposed to [K/64, N] in its dtype."""
    rng = np.random.default_rng(3)
    n_rows, k = 320, 192
    idx = rng.integers(0, 16, size=(n_rows, k))
    absmax = torch.from_numpy(rng.uniform(0.01, 0.1, size=n_rows * k // 64).astype(np.float32))
    if double_quant:
        absmax = nf4.double_quantize_absmax(absmax).q
    rp, amax_t = nf4_layout.to_kernel_layout(_bnb_pack(idx), absmax, n_rows, k)
    row, col = nf4_layout.index(n_rows, k)
    b = rp.numpy().astype(np.int64)
    assert (b >> 4 == idx[row, col]).all() and (b & 15 == idx[row, col + 8]).all()
    seen = np.zeros((n_rows, k), dtype=np.int64)
    np.add.at(seen, (row, col), 1)
    np.add.at(seen, (row, col + 8), 1)
    assert (seen == 1).all()
    assert amax_t.dtype == absmax.dtype and torch.equal(amax_t, absmax.reshape(n_rows, k // 64).t())


@pytest.mark.parametrize("double_quant", [False, True])
def test_kernel_layout_scales_are_the_layers_absmax(double_quant):
    """An NF4Linear moved into the kernel layout (as on its first GPU use): the kernel's scale formula on its
    transposed codes / absmax gives the layer's own float32 absmax for every (row, block), nested blocks crossing
    rows; and the layer still hands out bitsandbytes' layout (nf4_weight)."""
    from vlmserve.quant.linear import NF4Linear
    n_rows, k = 64, 320                                   # 5 blocks per row: nested blocks of 256 end mid-row
    lin = NF4Linear.from_weight(torch.randn(n_rows, k) * 0.02, None, torch.bfloat16, double_quant=double_quant)
    before = lin.nf4_weight()
    want = before.absmax_f32().reshape(n_rows, k // 64).numpy()
    pk = _packed_linear(lin)
    assert lin.kernel_layout and pk.double_quant == double_quant and pk.n == n_rows and pk.k == k
    after = lin.nf4_weight()
    assert torch.equal(after.packed, before.packed) and torch.equal(after.dequantize(), before.dequantize())
    got = np.stack([_block_scales(pk, b, np.arange(n_rows)) for b in range(k // 64)], axis=1)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _decoded_tile(words: np.ndarray, tile: int, blk: int, k: int, bn: int, la, lw) -> np.ndarray:
    """One quant block of one tile as the kernel holds it after the decode, placed by the operand layout."""
    reps = bn // (16 * NW)
    addr = _tile_words(tile, blk, k, bn)
    a = np.full((bn, 64), np.nan, dtype=np.float32)
    for warp in range(NW):
        for lane in range(32):
            regs, _ = _thread_registers(words, addr, lw, reps, lane, warp)
            for r, bits in enumerate(regs):
                n, kk = _apply(la, r, lane, warp)
                a[n, kk] = _bits_to_f32(bits)
    assert not np.isnan(a).any()
    return a


def _block_scales(pk, blk: int, rows: np.ndarray) -> np.ndarray:
    """The kernels' _block_scales: the transposed absmax, or code2[codes] * nested[flat block // 256] + offset with
    the flat block n * K/64 + b of the original (untransposed) order."""
    raw = pk.scales[blk, rows].numpy()
    if not pk.double_quant:
        return raw
    nested = pk.nested.numpy()[(rows * (pk.k // 64) + blk) >> 8]
    return pk.code2.numpy()[raw] * nested + np.float32(pk.offset)


def _simulate(x: np.ndarray, pk, v, sms: int):
    """The kernel's arithmetic on logical tensors, split by split in the kernels' block order (main loop, tail):
    the float32 partials [SPLIT, M, N]."""
    la, lw = _layouts(v.bn)
    words = pk.weight.numpy().view(np.uint32)
    n_rows, k_blocks = pk.n, pk.k // 64
    p = G.plan(x.shape[0], n_rows, pk.k, v.bn, v.depth, v.waves, sms)
    split, per = p.split, p.per
    out = np.zeros((split, x.shape[0], n_rows), dtype=np.float32)
    done = np.zeros((n_rows // v.bn, k_blocks), dtype=np.int64)
    parts = set()
    for t in range(n_rows // v.bn):
        for sp in range(split):
            acc = np.zeros((v.bn, x.shape[0]), dtype=np.float32)
            b0 = sp * per
            for part, slot, blk in G.schedule(b0, min(b0 + per, k_blocks), v.depth):
                assert slot == (blk - b0) % v.depth       # ring slot / register set of the block
                parts.add(part)
                done[t, blk] += 1
                a = _decoded_tile(words, t, blk, pk.k, v.bn, la, lw)
                s = _block_scales(pk, blk, np.arange(t * v.bn, (t + 1) * v.bn))
                xb = x[:, blk * 64:(blk + 1) * 64]
                if v.scale_w:
                    acc += _bf16(a * _bf16(s)[:, None]) @ xb.T
                else:
                    acc += (a @ xb.T) * s[:, None]
            out[sp, :, t * v.bn:(t + 1) * v.bn] = acc.T
    assert (done == 1).all()          # every quant block once, across splits and tails
    return out, parts


def _random_weight(rng, n_rows: int, k: int, double_quant: bool):
    """Random NF4 indices and absmax (nested when double_quant) repacked as the kernels read it, and the float32
    dequantized weight (bf16-rounded, as the reference matmul uses it)."""
    idx = rng.integers(0, 16, size=(n_rows, k))
    absmax = torch.from_numpy(rng.uniform(0.01, 0.1, size=n_rows * k // 64).astype(np.float32))
    if double_quant:
        nq = nf4.double_quantize_absmax(absmax)
        rp, q_t = nf4_layout.to_kernel_layout(_bnb_pack(idx), nq.q, n_rows, k)
        pk = Packed(rp, q_t, n_rows, k, nq.code, nq.nested_absmax, nq.offset)
        absmax = nq.dequantize()
    else:
        pk = Packed(*nf4_layout.to_kernel_layout(_bnb_pack(idx), absmax, n_rows, k), n_rows, k)
    w = _bf16(CODE.numpy()[idx] * np.repeat(absmax.numpy().reshape(n_rows, k // 64), 64, axis=1))
    return pk, w


def _check_product(got: np.ndarray, x: np.ndarray, w: np.ndarray) -> None:
    # the reference rounds code * absmax once to bf16; the kernel scales the bf16 code after the dot (float32) or
    # in bf16 (SCALE_W): a few bf16 ulps apart
    ref = x @ w.T
    np.testing.assert_allclose(got.sum(0), ref, rtol=2e-2, atol=2e-2 * np.abs(ref).max())


@pytest.mark.parametrize("depth,scale_w,k,tail,dq", [(4, False, 256, False, False), (4, True, 448, True, True),
                                                     (4, False, 320, True, True), (8, True, 832, True, False),
                                                     (8, False, 960, True, True)])
def test_block_arithmetic_equals_dequant_product(depth, scale_w, k, tail, dq):
    """The partials of the simulated kernel sum to dequant(W) x^T, also where a split's block count is not a
    multiple of DEPTH and the tail runs: K = 448 (7 blocks, splits of 4 + 3), 320 (5: 3 + 2), 832 (13: 7 + 6,
    tails only) and 960 (15: 8 + 7, main loop then tail); with float32 or double-quantized absmax (dq: nested
    blocks of 256 that cross rows, 7, 5 and 15 blocks per row)."""
    rng = np.random.default_rng(7)
    v = Variant(depth, 64, scale_w, waves=2)
    n_rows, m = 2 * v.bn, 16
    pk, w = _random_weight(rng, n_rows, k, dq)
    x = _bf16(rng.standard_normal((m, k)).astype(np.float32))
    got, parts = _simulate(x, pk, v, sms=2)
    assert ("tail" in parts) == tail
    _check_product(got, x, w)


def test_one_repack_serves_both_tile_widths():
    """One repacked weight (double-quantized absmax, serving's form) read by the BN = 64 and the BN = 128 kernels
    gives dequant(W) x^T for both: the layout does not depend on the tile width."""
    rng = np.random.default_rng(11)
    n_rows, k, m = 256, 192, 16
    pk, w = _random_weight(rng, n_rows, k, True)
    x = _bf16(rng.standard_normal((m, k)).astype(np.float32))
    for bn in (64, 128):
        got, _ = _simulate(x, pk, Variant(4, bn, False, waves=2), sms=2)
        _check_product(got, x, w)


def test_split_plan_covers_k_with_tails():
    """Decoder shapes: splits cover K's blocks once, none empty; 4h_to_h's 214 blocks leave tails; more rows than one
    tile take more row tiles, and fewer splits for the same fill."""
    for k_blocks in (64, 214):
        for v in _variants():
            for n in (4096, 151552):
                for m in (1, 16, 64, 256):
                    p = G.plan(m, n, k_blocks * 64, v.bn, v.depth, v.waves, 132)
                    assert p.bm == (16 if m <= 16 else 64) and p.m_tiles * p.bm >= m > (p.m_tiles - 1) * p.bm
                    assert 1 <= p.split <= 16 and (p.split - 1) * p.per < k_blocks <= p.split * p.per
                    blocks = [b for sp in range(p.split)
                              for _, _, b in G.schedule(sp * p.per, min(sp * p.per + p.per, k_blocks), v.depth)]
                    assert blocks == list(range(k_blocks))


_COMPILED: dict = {}


def _compiled(v, bm: int, dq: bool = False):
    key = (v.name, bm, dq)
    if key not in _COMPILED:
        _COMPILED[key] = P.compile_sm90(v.bn, v.depth, v.scale_w, bm, dq)
    return _COMPILED[key]


def _loop_text(sass: str) -> list[str]:
    """The main loop's instructions with their modifiers (loop_mix's range)."""
    ins = [(int(a, 16), t.strip()) for a, t in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", sass)]
    for addr, text in ins:
        target = re.search(r"\bBRA\b.*?0x([0-9a-f]+)", text)
        if target and int(target.group(1), 16) < addr:
            return [re.sub(r"^@!?U?P\w+\s+", "", t) for a, t in ins if int(target.group(1), 16) <= a <= addr]
    return []


# Every ring candidate at 16 rows with both absmax forms; at 64 rows the SCALE_W ones with the 8-bit absmax of
# serving (without SCALE_W the 128-wide tiles use all 255 registers and spill, the per-block float32 partial product
# doubling the accumulator: not candidates; the 64-wide ones fit, --cpu lists them). With float32 absmax bn128-d4-sw
# spills 8 bytes at 64 rows since the row tiles' int64 x offsets (--cpu): not asserted here.
_CASES = ([(v, 16, False) for v in _variants()] + [(v, 64, True) for v in _variants() if v.scale_w]
          + [(v, 16, True) for v in _variants()])


@pytest.mark.parametrize("v,bm,dq", _CASES, ids=[f"{v.name}-m{bm}{'-dq' if dq else ''}" for v, bm, dq in _CASES])
def test_variant_compiles_for_sm90_without_spills_or_weight_shuffles(v, bm, dq):
    """Each variant builds for sm_90 (the operand conversion asserted trivial: the decode lands in place), spills
    nothing, and its weight bytes go global -> shared by cp.async -> registers by one LDS.128 per 16-row group per
    block: no shuffles, no shared-memory stores, the PRMT program's 14 permutes per word. With double quantization
    the same, the scales' gathers added."""
    sass_mod = bench_module("nf4_sass")
    kernel, info, sass = _compiled(v, bm, dq)
    assert "0 bytes spill stores" in info and "0 bytes spill loads" in info, info
    body = _loop_text(sass)
    ops = [t.split()[0] for t in body]
    mix = sass_mod.loop_mix(sass)
    assert mix["SHFL"] == 0
    reps = v.bn // (16 * NW)
    words = v.depth * reps * 4                        # 32-bit weight words decoded per thread per loop body
    assert mix["STS"] == 0
    assert ops.count("LDS.128") == v.depth * reps
    assert mix["PRMT"] == words * 14
    # per warp and quant block: (16-row groups) x (8-row slices of x) x (4 steps of 16 along K) m16n8k16
    assert mix["HMMA"] == v.depth * reps * (bm // 8) * 4


def test_unsplit_store_with_bias_compiles():
    """Where K is not split the kernel stores the output in the compute dtype with the bias added (the output layer's
    296 tiles at 64 rows fill the GPU alone): that epilogue builds for sm_90 without spills too."""
    _, info, sass = P.compile_sm90(128, 4, True, 64, double_quant=True, is_split=False, has_bias=True)
    assert "0 bytes spill stores" in info and "0 bytes spill loads" in info, info
    assert "F2FP.BF16" in sass                        # the float32 accumulator rounded to bf16 before the store


def test_join_puts_new_dim_fastest():
    """The register order the tests assume: each tt.join's result layout has the joined dimension as its fastest
    register dimension, so join(a, b) interleaves a's and b's registers."""
    kernel, _, _ = _compiled(Variant(4, 128, True), 16)
    ttgir = kernel.asm["ttgir"]
    layouts = dict(re.findall(r"^(#\w+) = (#ttg\.\w+<.*>)$", ttgir, re.M))
    joins = re.findall(r"tt\.join .*-> tensor<([0-9x]+)x\w+, (#\w+)>", ttgir)
    assert len(joins) >= 7
    for shape, name in joins:
        rank = shape.count("x") + 1
        order = re.search(r"order = \[([0-9, ]+)\]", layouts[name]).group(1)
        assert int(order.split(",")[0]) == rank - 1, (shape, layouts[name])
