"""Marlin-style NF4 x bf16 decode matmul in Triton's Gluon: a probe against the repo's tuned Triton kernel.

What: out[M, N] = x[M, K] @ dequant(W)[N, K]^T for decode rows (M <= 64), W in bitsandbytes' NF4 (uint8, two
4-bit indices per byte, the first in the high nibble; one float32 absmax per 64 values). The weight is operand A
of mma.m16n8k16 (W's rows are the MMA's M), x's rows its N. K is split over program_id(1); each split writes
float32 partials [SPLIT, M, N] that the repo's reduce kernel (triton_tiles.add_splits) sums.

Why (the Marlin idea): the repo's Triton kernel decodes NF4 in registers but the compiler picks where the weight's
bytes go, so they pass through shared memory or byte gathers on their way to the tensor cores. Here the weight is
repacked once, offline (`repack`), so that each thread's one 16-byte load per 16-row group per quant block holds
exactly the four 32-bit words that the repo's PRMT decode (vlmserve.quant.nf4_prmt, unchanged) turns into that
thread's mma_v2 operand-A fragments: no shared-memory round trip, no shuffles, no per-weight index math. The
kernel's reshape / permute / join only relabel registers and the final convert_layout is asserted trivial (a
compile error otherwise). Two pipelines keep bytes in flight:
  - "async": Marlin's ring of DEPTH shared-memory slots filled by cp.async (weights, x tile, scales), DEPTH - 1
    quant blocks in flight whatever the occupancy (registers do not hold them); each thread copies exactly the
    bytes it later reads back (one LDS.128, no bank conflicts, no layout change), x reaches the B operand by
    ldmatrix;
  - "regs": DEPTH quant blocks prefetched global -> registers, loop-carried (no shared memory for the weight; x
    goes through shared memory by convert_layout).
SCALE_W multiplies the block scale into the decoded weights (bf16, before the MMA) instead of into a per-block
partial product (float32, after it): fewer instructions at 64 rows, a second bf16 rounding.

Repacked layout, group-major (independent of the kernels' tile width BN): 512 contiguous bytes per 16-row group
g = n // 16 and quant block b (64 columns), one warp's 32 16-byte loads; a group's K/64 blocks follow each other:
    offset = (g * K/64 + b) * 512 + lane * 16 + word * 4 + byte
    row n  = g*16 + (byte >> 1)*8 + lane // 4
    column = b*64 + (word >> 1)*32 + (word & 1)*16 + 2*(lane % 4) + (byte & 1); high nibble that column,
             low nibble column + 8
A program of BN rows reads groups pid_n * BN/16 + rep * NW + warp (NW = 4 warps, rep < BN/64): per block each warp
loads 512 contiguous bytes, the tile's warps K/64 * 512 bytes apart. So one repacked weight serves every BN: it
needs N % 16 == 0 (and the grid N % BN == 0), and could be the stored layout whatever tile wins.
Scales are transposed to [K/64, N] so that a block's scales for consecutive rows are contiguous: the float32 absmax,
or with DOUBLE_QUANT (bitsandbytes' nested absmax, the serving default) its uint8 codes, the scale then being
code2[q] * nested[(n * K/64 + b) // 256] + offset as in triton_nf4._block_scale (code2 float32 [256], nested and
offset as stored: nested is indexed by the original flat block n * K/64 + b, its blocks of 256 crossing rows).

Run:
    PYTHONPATH=inference:bench python bench/nf4_gluon_probe.py --cpu [--variants async-d4-bn128] [--double-quant both]
        no GPU needed: compiles each variant for sm_90 with Triton's ptxas and prints registers, spills, shared
        memory and the SASS main-loop instructions per weight (bench/nf4_sass.py's loop_mix)
    PYTHONPATH=inference:bench VLMSERVE_TUNING_CACHE=off python bench/nf4_gluon_probe.py [--seconds 180]
        [--shapes lm.qkv,output_layer] [--rows 16,64] [--variants ...] [--waves 2,4] [--double-quant {0,1,both}]
        [--out PATH]
        GPU: on GLM-4V-9B's five decoder shapes (random weights; absmax double quantized by default as in serving,
        float32 with --double-quant 0, both forms in turn with both), every variant checked against dequant +
        F.linear (a failure is listed, not timed) and timed (CUDA-graph replays, L2 flushed: gpu_timing, as the
        tuner times) with its reduce and alone, against the tuned Triton kernel on the same weight and bf16
        cuBLAS; markdown tables, and JSON to bench/results/nf4_gluon_probe.json ($OUT when set, see
        result_path.py) after every (shape, absmax form, rows). --seconds bounds the run: no new shape, absmax
        form, row count or variant starts after it. Cold, the first shape pays the compiles (the tuner's ~18
        candidates per row bucket and absmax form, 12 Gluon kernels per row tile and absmax form).
The CPU index checks are inference/tests/test_nf4_gluon_layout.py.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "inference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from triton.experimental import gluon  # noqa: E402
from triton.experimental.gluon import language as gl  # noqa: E402
from triton.experimental.gluon.language.nvidia.ampere import async_copy, mma_v2  # noqa: E402

NUM_WARPS = 4          # the kernels' tile: 16 rows per warp, BN = 16 * NUM_WARPS * REPS (the repack is BN-free)
QBLOCK = 64
GROUP_WORDS = gl.constexpr(128)   # int32 words per 16-row group per quant block: one warp's 512 contiguous bytes


# ----------------------------------------------------------------------------------------------- variants

@dataclasses.dataclass(frozen=True)
class Variant:
    pipe: str            # "async" (cp.async ring) or "regs" (register prefetch)
    depth: int           # quant blocks in flight (ring slots / prefetched register sets)
    bn: int              # weight rows per program: 64 or 128
    scale_w: bool        # block scale on the decoded weights (bf16) instead of on the partial product
    waves: int = 4       # K split so that about waves * SMs programs run (triton_tiles._split_k)

    @property
    def reps(self) -> int:
        return self.bn // (16 * NUM_WARPS)

    @property
    def name(self) -> str:
        return f"{self.pipe}-d{self.depth}-bn{self.bn}{'-sw' if self.scale_w else ''}"

    @property
    def label(self) -> str:
        return f"{self.name}-v{self.waves}"


def variants(names: str = "", waves: str = "4") -> list[Variant]:
    """The variants worth timing (ring DEPTH 4 and 8, register prefetch DEPTH 2; BN 64 and 128; SCALE_W off and
    on), or those whose name is in the comma-separated `names`, each at every K-split `waves`."""
    out = []
    for pipe, depth in (("async", 4), ("async", 8), ("regs", 2)):
        for bn in (64, 128):
            for sw in (False, True):
                for w in (int(v) for v in waves.split(",") if v):
                    v = Variant(pipe, depth, bn, sw, w)
                    if not names or v.name in names.split(","):
                        out.append(v)
    return out


# ----------------------------------------------------------------------------------------------- host side

def repack_index(n_rows: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The layout in plain index math (numpy; tests and small sizes): for each byte of the repacked buffer, the
    (row, column) of the weight whose index is its high nibble; its low nibble is (row, column + 8)."""
    assert n_rows % 16 == 0 and k % QBLOCK == 0
    off = np.arange(n_rows * k // 2, dtype=np.int64)
    byte, word, lane = off & 3, (off >> 2) & 3, (off >> 4) & 31
    group, blk = np.divmod(off >> 9, k // QBLOCK)      # 512-byte units, (16-row group, quant block) row-major
    row = group * 16 + (byte >> 1) * 8 + (lane >> 2)
    col = blk * QBLOCK + (word >> 1) * 32 + (word & 1) * 16 + 2 * (lane & 3) + (byte & 1)
    return row, col


def repack(packed: torch.Tensor, absmax: torch.Tensor, n_rows: int, k: int):
    """bitsandbytes NF4 (packed uint8 [N*K/2], absmax [N*K/64]: float32, or the uint8 codes of a double-quantized
    one) -> (repacked uint8 [N*K/2], absmax transposed to [K/64, N], float32 or uint8 as given), on the tensors'
    device. The layout is `repack_index`'s, as one permutation of the nibbles (a reshape and a permute: seconds for
    the output layer on a GPU where numpy gathers would take minutes)."""
    assert n_rows % 16 == 0 and k % QBLOCK == 0
    nib = torch.stack((packed.reshape(-1) >> 4, packed.reshape(-1) & 15), -1).reshape(n_rows, k)
    # row = (group, byte bit 1, lane // 4); column = (block, word bit 1, word bit 0, nibble, lane % 4, byte bit 0)
    t = nib.view(n_rows // 16, 2, 8, k // QBLOCK, 2, 2, 2, 4, 2)
    # -> group, block | lane // 4, lane % 4 | word bit 1, word bit 0 | byte bit 1, byte bit 0 | nibble
    t = t.permute(0, 3, 2, 7, 4, 5, 1, 8, 6).reshape(-1, 2)
    out = (t[:, 0] << 4 | t[:, 1]).contiguous()
    amax_t = absmax.reshape(n_rows, k // QBLOCK).t().contiguous()
    return out, amax_t if amax_t.dtype == torch.uint8 else amax_t.to(torch.float32)


@dataclasses.dataclass
class Repacked:
    """One NF4 weight as the kernels read it, whatever their BN."""
    weight: torch.Tensor                  # uint8 [N*K/2], the module docstring's layout
    scales: torch.Tensor                  # [K/64, N]: float32 absmax, or its uint8 codes (double quantized)
    n: int
    k: int
    code2: torch.Tensor | None = None     # double quantized: float32 [256], the codes' values
    nested: torch.Tensor | None = None    # float32 [ceil(N*K/64 / 256)], by the flat block n * K/64 + b
    offset: float = 0.0

    @property
    def double_quant(self) -> bool:
        return self.code2 is not None

    def nbytes(self) -> int:
        extra = (self.code2.numel() + self.nested.numel()) * 4 if self.double_quant else 0
        return self.weight.numel() + self.scales.numel() * self.scales.element_size() + extra


def repack_linear(lin) -> Repacked:
    """An NF4Linear's weight (float32 or double-quantized absmax) in the kernels' layout."""
    n, k = lin.out_features, lin.in_features
    if not lin.double_quant:
        return Repacked(*repack(lin.packed, lin.absmax, n, k), n, k)
    assert lin.nested_blocksize == 256, "the kernels index nested absmax by blocks of 256 (as triton_nf4)"
    rp, q_t = repack(lin.packed, lin.absmax_q, n, k)
    return Repacked(rp, q_t, n, k, lin.nested_code, lin.nested_absmax, lin.nested_offset)


def split_plan(k_blocks: int, n_tiles: int, v: Variant, sms: int) -> tuple[int, int]:
    """(splits, quant blocks per split): about v.waves programs per SM, each split at least DEPTH blocks (a ring
    never shorter than its fill). The last split may be shorter, and any split's count need not be a multiple of
    DEPTH (the kernels' tails)."""
    from vlmserve.quant.triton_tiles import _split_k
    split = _split_k(n_tiles, -(-k_blocks // v.depth), sms, 1, v.waves)
    per = -(-k_blocks // split)
    return -(-k_blocks // per), per


def schedule(b0: int, b1: int, depth: int) -> list[tuple[str, int, int]]:
    """The blocks one split computes, in the kernels' order, as (part, ring slot / register set, block): full
    groups of DEPTH in the unrolled main loop, then the tail of fewer than DEPTH. For the numpy simulation."""
    n = b1 - b0
    n_main = n - n % depth
    out = [("main", i, g + i) for g in range(b0, b0 + n_main, depth) for i in range(depth)]
    return out + [("tail", i, b0 + n_main + i) for i in range(n % depth)]


# ----------------------------------------------------------------------------------------------- kernels

@gluon.jit
def _split16(v):
    # one 32-bit register as its two bf16 halves: register renaming, no instruction
    return gl.inline_asm_elementwise("mov.b32 {$0, $1}, $2;", "=h,=h,r", [v], dtype=(gl.bfloat16, gl.bfloat16),
                                     is_pure=True, pack=1)


@gluon.jit
def _decode_tile(wv, PRMT_ASM: gl.constexpr, BN: gl.constexpr, REPS: gl.constexpr, NW: gl.constexpr,
                 A_LAYOUT: gl.constexpr):
    # wv: int32 [BN * 8], 4 contiguous words per thread (one 16-byte load). The PRMT program turns one word into
    # $0 = (a0, a1) of the m16n8k16 A fragment, $1 = (a2, a3) (row + 8), $2 = (a4, a5), $3 = (a6, a7) (column + 8).
    o0, o1, o2, o3 = gl.inline_asm_elementwise(PRMT_ASM, "=r,=r,=r,=r,r", [wv],
                                               dtype=(gl.int32, gl.int32, gl.int32, gl.int32), is_pure=True, pack=1)
    l0, h0 = _split16(o0)
    l1, h1 = _split16(o1)
    l2, h2 = _split16(o2)
    l3, h3 = _split16(o3)
    # join puts its new dimension as the fastest register: this nesting gives the operand layout's per-thread
    # register order (k+1, n+8, k+8) within each word
    lo = gl.join(gl.join(l0, l2), gl.join(l1, l3))
    hi = gl.join(gl.join(h0, h2), gl.join(h1, h3))
    f = gl.join(lo, hi)                                            # [BN*8, 2 (k8), 2 (n8), 2 (k1)]
    f = gl.reshape(f, [REPS, NW, 8, 4, 2, 2, 2, 2, 2])             # rep, warp, g, t, w1, w0, k8, n8, k1
    f = gl.permute(f, [0, 1, 7, 2, 4, 5, 6, 3, 8])                 # rep, warp, n8, g | w1, w0, k8, t, k1
    a = gl.reshape(f, [BN, 64])
    # relabelling only: the compiler must find the data already in place (it fails to compile otherwise)
    return gl.convert_layout(a, A_LAYOUT, assert_trivial=True)


@gluon.jit
def _dot_block(acc, a, xb, s, SCALE_W: gl.constexpr, mma: gl.constexpr):
    # one quant block's product with its scale, on the weights (bf16) or on the block's partial product (float32)
    if SCALE_W:
        a = a * s.to(gl.bfloat16)[:, None]
        acc = mma_v2(a, xb, acc)
    else:
        part = mma_v2(a, xb, gl.zeros(acc.shape, gl.float32, layout=mma))
        acc = acc + part * s[:, None]
    return acc


@gluon.jit
def _store_partial(acc, out_ptr, pid_n, pid_k, M, N, BN: gl.constexpr, BM: gl.constexpr, mma: gl.constexpr):
    om = gl.arange(0, BM, layout=gl.SliceLayout(0, mma))
    rn = pid_n * BN + gl.arange(0, BN, layout=gl.SliceLayout(1, mma))
    o_ptrs = out_ptr + pid_k * M * N + om[None, :] * N + rn[:, None]
    gl.store(o_ptrs, acc, mask=(om[None, :] < M) & (rn[:, None] < N))


@gluon.jit
def _weight_base(w_ptr, pid_n, k_blocks, BN: gl.constexpr, w_l: gl.constexpr):
    # each thread's first weight word of its tile in quant block 0 (block b: + b * GROUP_WORDS). Word j of the
    # tile is word j % 128 of 16-row group pid_n * BN/16 + j // 128 (w_l gives j // 128 = rep * NW + warp), and a
    # group's blocks are contiguous, so the tile's groups lie k_blocks * 128 words apart (group-major layout)
    j = gl.arange(0, BN * 8, layout=w_l)
    tile = pid_n.to(gl.int64) * (BN // 16 * k_blocks * GROUP_WORDS)
    return w_ptr + tile + (j // GROUP_WORDS) * (k_blocks * GROUP_WORDS) + j % GROUP_WORDS


@gluon.jit
def _block_scales(raw, b, scl, DOUBLE_QUANT: gl.constexpr):
    # quant block b's float32 scales for the rows scl[0] (raw: their float32 absmax, or with DOUBLE_QUANT their
    # uint8 codes); scl = (rows, k_blocks, code2_ptr, nested_ptr, offset). Only the codes stream from memory with
    # the weight: code2 (1 KB) and nested (one float per 256 blocks) stay cache-resident, so they are read here.
    if DOUBLE_QUANT:
        rows, k_blocks, code2_ptr, nested_ptr, offset = scl
        nested = gl.load(nested_ptr + ((rows * k_blocks + b) >> 8))     # flat block // 256 (non-negative)
        s = gl.load(code2_ptr + raw.to(gl.int32)) * nested + offset
    else:
        s = raw
    return s


@gluon.jit
def _regs_step(acc, wv, xt, s, w_base, x_base, x_mask, s_base, scl, b, last, N, REFILL: gl.constexpr,
               PRMT_ASM: gl.constexpr, BN: gl.constexpr, REPS: gl.constexpr, NW: gl.constexpr, DEPTH: gl.constexpr,
               SCALE_W: gl.constexpr, DOUBLE_QUANT: gl.constexpr, a_l: gl.constexpr, b_l: gl.constexpr,
               mma: gl.constexpr):
    # block b from the registers wv / xt / s; x and scales of block b + 1 loaded now, used next step (so the
    # double-quant gathers behind the codes have a step to land); wv refilled with block b + DEPTH right after use
    # (clamped to the split's last block: a redundant cached read at the end)
    nb = gl.minimum(b + 1, last)
    x_next = gl.load(x_base + nb * 64, mask=x_mask, other=0.0)
    s_next = _block_scales(gl.load(s_base + nb * N), nb, scl, DOUBLE_QUANT)
    a = _decode_tile(wv, PRMT_ASM, BN, REPS, NW, a_l)
    acc = _dot_block(acc, a, gl.convert_layout(xt, b_l), s, SCALE_W, mma)
    if REFILL:
        wv = gl.load(w_base + gl.minimum(b + DEPTH, last) * GROUP_WORDS)
    return acc, wv, x_next, s_next


@gluon.constexpr_function
def _mma_layout(num_warps):
    """mma.m16n8k16's accumulator layout, the warps stacked along the weight's rows."""
    return gl.NVMMADistributedLayout(version=[2, 0], warps_per_cta=[num_warps, 1], instr_shape=[16, 8])


@gluon.constexpr_function
def _operand_layout(index, num_warps):
    """Operand A (the weight) or B (x) of that MMA, two 16-bit values per 32-bit register."""
    return gl.DotOperandLayout(operand_index=index, parent=_mma_layout(num_warps), k_width=2)


@gluon.constexpr_function
def _scale_layout(scale_w, num_warps):
    """The block scales per weight row: beside the decoded weights (SCALE_W) or beside the block's product."""
    return gl.SliceLayout(1, _operand_layout(0, num_warps) if scale_w else _mma_layout(num_warps))


@gluon.jit
def _split_blocks(K, PER, DEPTH: gl.constexpr):
    """This program's quant blocks [b0, b1) of split program_id(1), its last block, where the DEPTH-unrolled main
    loop stops (n_main) and the r < DEPTH tail blocks after it."""
    k_blocks = K // 64
    b0 = gl.program_id(1) * PER
    b1 = gl.minimum(b0 + PER, k_blocks)
    n_main = b0 + (b1 - b0) // DEPTH * DEPTH
    return k_blocks, b0, b1, b1 - 1, n_main, b1 - n_main


@gluon.jit
def nf4_marlin_regs_kernel(x_ptr, w_ptr, s_ptr, code2_ptr, nested_ptr, offset, out_ptr, M, N, K, stride_xm, PER,
                           BM: gl.constexpr, REPS: gl.constexpr, DEPTH: gl.constexpr, PRMT_ASM: gl.constexpr,
                           SCALE_W: gl.constexpr, DOUBLE_QUANT: gl.constexpr):
    # grid (N / BN, SPLIT); split pid_k computes quant blocks [pid_k * PER, min(+PER, K/64)). DEPTH <= 4 register
    # sets of weight bytes, one per unrolled step, so a set is refilled in place (no register moves). s_ptr: the
    # transposed absmax [K/64, N], float32 or (DOUBLE_QUANT) uint8 codes; code2_ptr / nested_ptr / offset unused
    # without DOUBLE_QUANT.
    NW: gl.constexpr = gl.num_warps()
    BN: gl.constexpr = 16 * NW * REPS
    mma: gl.constexpr = _mma_layout(NW)
    a_l: gl.constexpr = _operand_layout(0, NW)
    b_l: gl.constexpr = _operand_layout(1, NW)
    w_l: gl.constexpr = gl.BlockedLayout([4], [32], [NW], [0])
    x_l: gl.constexpr = gl.BlockedLayout([8, 1], [8, 4], [1, NW], [0, 1])   # x tile [64 (k), BM (m)]
    s_l: gl.constexpr = _scale_layout(SCALE_W, NW)

    pid_n = gl.program_id(0)
    k_blocks, b0, b1, last, n_main, r = _split_blocks(K, PER, DEPTH)

    w_base = _weight_base(w_ptr, pid_n, k_blocks, BN, w_l)
    kk = gl.arange(0, 64, layout=gl.SliceLayout(1, x_l))
    mm = gl.arange(0, BM, layout=gl.SliceLayout(0, x_l))
    x_base = x_ptr + mm[None, :] * stride_xm + kk[:, None]
    x_mask = (mm[None, :] < M) & (kk[:, None] < 64)
    rows = pid_n * BN + gl.arange(0, BN, layout=s_l)
    s_base = s_ptr + rows
    scl = (rows, k_blocks, code2_ptr, nested_ptr, offset)

    acc = gl.zeros([BN, BM], gl.float32, layout=mma)
    w0 = gl.load(w_base + b0 * GROUP_WORDS)
    if DEPTH >= 2:
        w1 = gl.load(w_base + gl.minimum(b0 + 1, last) * GROUP_WORDS)
    if DEPTH >= 3:
        w2 = gl.load(w_base + gl.minimum(b0 + 2, last) * GROUP_WORDS)
    if DEPTH >= 4:
        w3 = gl.load(w_base + gl.minimum(b0 + 3, last) * GROUP_WORDS)
    xt = gl.load(x_base + b0 * 64, mask=x_mask, other=0.0)
    s = _block_scales(gl.load(s_base + b0 * N), b0, scl, DOUBLE_QUANT)
    for g in range(b0, n_main, DEPTH):
        for i in gl.static_range(DEPTH):
            if i == 0:
                acc, w0, xt, s = _regs_step(acc, w0, xt, s, w_base, x_base, x_mask, s_base, scl, g + i, last, N,
                                            True, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l, b_l, mma)
            elif i == 1:
                acc, w1, xt, s = _regs_step(acc, w1, xt, s, w_base, x_base, x_mask, s_base, scl, g + i, last, N,
                                            True, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l, b_l, mma)
            elif i == 2:
                acc, w2, xt, s = _regs_step(acc, w2, xt, s, w_base, x_base, x_mask, s_base, scl, g + i, last, N,
                                            True, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l, b_l, mma)
            else:
                acc, w3, xt, s = _regs_step(acc, w3, xt, s, w_base, x_base, x_mask, s_base, scl, g + i, last, N,
                                            True, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l, b_l, mma)
    # tail: r < DEPTH blocks, already in w0.. (the last group's refills); branches uniform per program
    for i in gl.static_range(DEPTH - 1):
        if i < r:
            if i == 0:
                acc, w0, xt, s = _regs_step(acc, w0, xt, s, w_base, x_base, x_mask, s_base, scl, n_main + i, last,
                                            N, False, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l,
                                            b_l, mma)
            elif i == 1:
                acc, w1, xt, s = _regs_step(acc, w1, xt, s, w_base, x_base, x_mask, s_base, scl, n_main + i, last,
                                            N, False, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l,
                                            b_l, mma)
            else:
                acc, w2, xt, s = _regs_step(acc, w2, xt, s, w_base, x_base, x_mask, s_base, scl, n_main + i, last,
                                            N, False, PRMT_ASM, BN, REPS, NW, DEPTH, SCALE_W, DOUBLE_QUANT, a_l,
                                            b_l, mma)
    _store_partial(acc, out_ptr, pid_n, gl.program_id(1), M, N, BN, BM, mma)


@gluon.jit
def _ring_block(acc, w_s, x_s, c_s, i: gl.constexpr, b, scl, PRMT_ASM: gl.constexpr, BN: gl.constexpr,
                REPS: gl.constexpr, NW: gl.constexpr, SCALE_W: gl.constexpr, DOUBLE_QUANT: gl.constexpr,
                w_l: gl.constexpr, s_l: gl.constexpr, a_l: gl.constexpr, b_l: gl.constexpr, mma: gl.constexpr):
    # slot i (block b): the thread's own 16 weight bytes per 16-row group (LDS.128), x by ldmatrix, the scales
    wv = w_s.index(i).load(w_l)
    xb = x_s.index(i).permute([1, 0]).load(b_l)
    s = _block_scales(c_s.index(i).load(s_l), b, scl, DOUBLE_QUANT)
    a = _decode_tile(wv, PRMT_ASM, BN, REPS, NW, a_l)
    return _dot_block(acc, a, xb, s, SCALE_W, mma)


@gluon.jit
def _ring_fill(w_s, x_s, c_s, slot: gl.constexpr, b, w_base, x_base, x_mask, c_base, N):
    # one cp.async group: block b's weight words, x tile and scale codes / absmax into ring slot `slot`
    async_copy.async_copy_global_to_shared(w_s.index(slot), w_base + b * GROUP_WORDS)
    async_copy.async_copy_global_to_shared(x_s.index(slot), x_base + b * 64, mask=x_mask)
    async_copy.async_copy_global_to_shared(c_s.index(slot), c_base + b * N)
    async_copy.commit_group()


@gluon.jit
def nf4_marlin_async_kernel(x_ptr, w_ptr, s_ptr, code2_ptr, nested_ptr, offset, out_ptr, M, N, K, stride_xm, PER,
                            BM: gl.constexpr, REPS: gl.constexpr, DEPTH: gl.constexpr, PRMT_ASM: gl.constexpr,
                            SCALE_W: gl.constexpr, DOUBLE_QUANT: gl.constexpr):
    # grid (N / BN, SPLIT); split pid_k computes quant blocks [pid_k * PER, min(+PER, K/64)). A ring of DEPTH
    # shared-memory slots, DEPTH - 1 blocks in flight; the main loop is unrolled DEPTH times so that slot indices
    # are compile-time constants. Arguments as nf4_marlin_regs_kernel's.
    NW: gl.constexpr = gl.num_warps()
    BN: gl.constexpr = 16 * NW * REPS
    WB: gl.constexpr = BN * 8
    mma: gl.constexpr = _mma_layout(NW)
    a_l: gl.constexpr = _operand_layout(0, NW)
    b_l: gl.constexpr = _operand_layout(1, NW)
    w_l: gl.constexpr = gl.BlockedLayout([4], [32], [NW], [0])
    x_l: gl.constexpr = gl.BlockedLayout([1, 8], [4, 8], [NW, 1], [1, 0])    # x tile [BM, 64], 16 B per copy
    # The scale slot holds what streams from memory with the weight, as it is: the float32 absmax, or with
    # DOUBLE_QUANT the uint8 codes (a quarter of the bytes, the point of double quantization). Storing computed
    # float scales instead would need the codes in registers when the copy is issued (a load DEPTH - 1 blocks
    # ahead, its latency exposed) and a shared-memory store per block; the gathers from code2 / nested after the
    # slot's read hit cache (_block_scales). 4 bytes per cp.async either way (its smallest copy): with codes,
    # BN / 4 threads copy and the rest are the layout's replicas.
    if DOUBLE_QUANT:
        c_l: gl.constexpr = gl.BlockedLayout([4], [32], [NW], [0])
    else:
        c_l: gl.constexpr = gl.BlockedLayout([1], [32], [NW], [0])
    s_l: gl.constexpr = _scale_layout(SCALE_W, NW)
    w_sl: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])
    x_sl: gl.constexpr = gl.NVMMASharedLayout(swizzle_byte_width=128, element_bitwidth=16, rank=2)
    c_sl: gl.constexpr = gl.SwizzledSharedLayout(1, 1, 1, [0])

    pid_n = gl.program_id(0)
    k_blocks, b0, b1, last, n_main, r = _split_blocks(K, PER, DEPTH)

    w_base = _weight_base(w_ptr, pid_n, k_blocks, BN, w_l)
    xm = gl.arange(0, BM, layout=gl.SliceLayout(1, x_l))
    xk = gl.arange(0, 64, layout=gl.SliceLayout(0, x_l))
    x_base = x_ptr + xm[:, None] * stride_xm + xk[None, :]
    x_mask = (xm[:, None] < M) & (xk[None, :] < 64)         # rows past M: zero-filled by the copy
    c_base = s_ptr + pid_n * BN + gl.arange(0, BN, layout=c_l)
    scl = (pid_n * BN + gl.arange(0, BN, layout=s_l), k_blocks, code2_ptr, nested_ptr, offset)

    w_s = gl.allocate_shared_memory(gl.int32, [DEPTH, WB], w_sl)
    x_s = gl.allocate_shared_memory(gl.bfloat16, [DEPTH, BM, 64], x_sl)
    c_s = gl.allocate_shared_memory(s_ptr.dtype.element_ty, [DEPTH, BN], c_sl)

    for i in gl.static_range(DEPTH - 1):
        _ring_fill(w_s, x_s, c_s, i, gl.minimum(b0 + i, last), w_base, x_base, x_mask, c_base, N)

    acc = gl.zeros([BN, BM], gl.float32, layout=mma)
    for g in range(b0, n_main, DEPTH):
        for i in gl.static_range(DEPTH):
            async_copy.wait_group(DEPTH - 2)
            gl.thread_barrier()         # slot i complete for every thread; slot i - 1 read by every thread
            _ring_fill(w_s, x_s, c_s, (i + DEPTH - 1) % DEPTH, gl.minimum(g + i + DEPTH - 1, last), w_base, x_base,
                       x_mask, c_base, N)
            acc = _ring_block(acc, w_s, x_s, c_s, i, g + i, scl, PRMT_ASM, BN, REPS, NW, SCALE_W, DOUBLE_QUANT, w_l,
                              s_l, a_l, b_l, mma)
    # tail: r < DEPTH blocks, already in flight in slots 0..r-1 (the last DEPTH - 1 groups committed); nothing
    # more to copy, wait for one group more each step
    for i in gl.static_range(DEPTH - 1):
        if i < r:
            async_copy.wait_group(DEPTH - 2 - i)
            gl.thread_barrier()
            acc = _ring_block(acc, w_s, x_s, c_s, i, n_main + i, scl, PRMT_ASM, BN, REPS, NW, SCALE_W, DOUBLE_QUANT,
                              w_l, s_l, a_l, b_l, mma)
    async_copy.wait_group(0)
    _store_partial(acc, out_ptr, pid_n, gl.program_id(1), M, N, BN, BM, mma)


_ASM: dict[str, str] = {}


def prmt_asm() -> str:
    """The repo's PRMT decode for the NF4 code book into bf16 (the same PTX the Triton dot kernel inlines)."""
    if "bf16" not in _ASM:
        from vlmserve.quant import nf4, nf4_prmt
        code = torch.tensor(nf4.NF4_CODE_VALUES, dtype=torch.float32)
        _ASM["bf16"] = nf4_prmt.ptx(nf4_prmt.table_bits(code, torch.bfloat16))
    return _ASM["bf16"]


def kernel_of(v: Variant):
    if v.pipe == "regs":
        assert 1 <= v.depth <= 4, "the register pipeline has four named register sets"
        return nf4_marlin_regs_kernel
    return nf4_marlin_async_kernel


def block_rows(m: int) -> int:
    assert 1 <= m <= 64, "decode tiles: 16 or 64 rows"
    return 16 if m <= 16 else 64


def _scale_args(pk: Repacked) -> tuple:
    """The kernels' (s_ptr, code2_ptr, nested_ptr, offset): without double quantization code2 / nested are not
    read (the scales stand in as pointers)."""
    if pk.double_quant:
        return pk.scales, pk.code2, pk.nested, pk.offset
    return pk.scales, pk.scales, pk.scales, 0.0


def gluon_matmul(x: torch.Tensor, pk: Repacked, v: Variant, out: torch.Tensor | None = None,
                 reduce: bool = True) -> torch.Tensor:
    """x [M <= 64, K] bf16 @ W^T -> out [M, N] bf16, W repacked (any BN). Rows past M are masked (x zero-filled, not
    stored); the split-K partials summed by the repo's reduce kernel, also for one split (then an extra pass the
    tuned Triton kernel does not make), or with reduce=False returned as they are."""
    from vlmserve.quant.triton_tiles import add_splits, num_sms
    m, k = x.shape
    n = pk.n
    assert n % v.bn == 0 and k == pk.k and k % QBLOCK == 0 and x.stride(1) == 1
    split, per = split_plan(k // QBLOCK, n // v.bn, v, num_sms(x.device))
    part = torch.empty(split, m, n, dtype=torch.float32, device=x.device)
    kernel_of(v)[(n // v.bn, split)](x, pk.weight.view(torch.int32), *_scale_args(pk), part, m, n, k, x.stride(0),
                                     per, BM=block_rows(m), REPS=v.reps, DEPTH=v.depth, PRMT_ASM=prmt_asm(),
                                     SCALE_W=v.scale_w, DOUBLE_QUANT=pk.double_quant, num_warps=NUM_WARPS)
    if not reduce:
        return part
    if out is None:
        out = torch.empty(m, n, dtype=x.dtype, device=x.device)
    add_splits(part, None, out)
    return out


# ----------------------------------------------------------------------------------------------- CPU: sm_90 SASS

def compile_sm90(v: Variant, bm: int, double_quant: bool = False, arch: int = 90):
    """The variant compiled for sm_{arch}a on this machine (no GPU): (compiled kernel, ptxas -v text, SASS). Pointers,
    M, N, K and the row stride are marked 16-divisible, as the JIT specializes them at the benchmark's launches."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.experimental.gluon._runtime import GluonASTSource

    fn = kernel_of(v)
    sig = {"x_ptr": "*bf16", "w_ptr": "*i32", "s_ptr": "*u8" if double_quant else "*fp32", "code2_ptr": "*fp32",
           "nested_ptr": "*fp32", "offset": "fp32", "out_ptr": "*fp32", "M": "i32", "N": "i32", "K": "i32",
           "stride_xm": "i32", "PER": "i32"}
    const = dict(BM=bm, REPS=v.reps, DEPTH=v.depth, PRMT_ASM=prmt_asm(), SCALE_W=v.scale_w,
                 DOUBLE_QUANT=double_quant)
    sig.update({k: "constexpr" for k in const})
    aligned = ("x_ptr", "w_ptr", "s_ptr", "code2_ptr", "nested_ptr", "out_ptr", "M", "N", "K", "stride_xm")
    attrs = {(fn.arg_names.index(a),): [["tt.divisibility", 16]] for a in aligned}
    src = GluonASTSource(fn, sig, constexprs={(fn.arg_names.index(c),): val for c, val in const.items()},
                         attrs=attrs)
    kernel = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=dict(num_warps=NUM_WARPS))
    info, sass = _ptxas_sass(kernel.asm["ptx"], arch)
    return kernel, info, sass


def _ptxas_sass(ptx_text: str, arch: int) -> tuple[str, str]:
    """ptxas -v's report and the SASS, with the ptxas and cuobjdump that Triton ships (as bench/nf4_sass.py)."""
    import subprocess
    import tempfile

    import triton
    bin_dir = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    with tempfile.TemporaryDirectory() as tmp:
        ptx, cubin = os.path.join(tmp, "k.ptx"), os.path.join(tmp, "k.cubin")
        with open(ptx, "w") as f:
            f.write(ptx_text)
        info = subprocess.run([os.path.join(bin_dir, "ptxas"), f"-arch=sm_{arch}a", "-v", ptx, "-o", cubin],
                              capture_output=True, text=True, check=True).stderr
        sass = subprocess.run([os.path.join(bin_dir, "cuobjdump"), "-sass", cubin], capture_output=True, text=True,
                              check=True).stdout
    return info, sass


def absmax_label(double_quant: bool) -> str:
    return "8-bit" if double_quant else "f32"


def sass_report(v: Variant, bm: int, double_quant: bool = False) -> dict:
    from nf4_sass import loop_mix
    kernel, info, sass = compile_sm90(v, bm, double_quant)
    mix = loop_mix(sass)
    weights = v.bn * QBLOCK * v.depth / (32 * NUM_WARPS)   # both pipelines: DEPTH quant blocks per loop body
    total = sum(mix.values())
    num = lambda pat: int(m.group(1)) if (m := re.search(pat, info)) else None  # noqa: E731
    return dict(variant=v.name, rows=bm, double_quant=double_quant, registers=num(r"Used (\d+) registers"),
                spill_stores=num(r"(\d+) bytes spill stores"), spill_loads=num(r"(\d+) bytes spill loads"),
                shared=kernel.metadata.shared, loop_instructions=total, weights_per_thread=weights,
                per_weight=total / weights if weights else None, mix=dict(mix))


def run_cpu(vs: list[Variant], rows: list[int], forms: list[bool]) -> list[dict]:
    seen, out = set(), []
    print("| variant | absmax | rows | registers | spills (B) | shared (B) | loop instr | per weight | PRMT | HMMA | "
          "LDS | STS | SHFL | LDGSTS | LDG |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in vs:
        for dq in forms:
            for m in rows:
                key = (v.name, dq, block_rows(m))
                if key in seen:        # waves change the grid, not the code
                    continue
                seen.add(key)
                r = sass_report(v, block_rows(m), dq)
                out.append(r)
                mix = r["mix"]
                print(f"| {v.name} | {absmax_label(dq)} | {r['rows']} | {r['registers']} | "
                      f"{r['spill_stores']}/{r['spill_loads']} | {r['shared']} | {r['loop_instructions']} | "
                      f"{r['per_weight']:.2f} | "
                      + " | ".join(str(mix.get(op, 0)) for op in ("PRMT", "HMMA", "LDS", "STS", "SHFL", "LDGSTS",
                                                                  "LDG")) + " |", flush=True)
    return out


# ----------------------------------------------------------------------------------------------- GPU

DECODE_SHAPES = (("lm.qkv", 4608, 4096), ("lm.dense", 4096, 4096), ("lm.h_to_4h", 27392, 4096),
                 ("lm.4h_to_h", 4096, 13696), ("output_layer", 151552, 4096))


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """triton_nf4.agrees' measure: largest difference over the reference's largest magnitude."""
    return ((out.float() - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()


TOLERANCE = 1e-2       # agrees' bound for a 16-bit output: the same dequantized values, another order of additions


def _out_of_time(deadline: float, results: list[dict], **where) -> bool:
    """Past the deadline: `where` (shape, N, K, double_quant[, M]) listed as not run."""
    if time.monotonic() <= deadline:
        return False
    results.append(dict(where, error="out of time"))
    print(f"| {where['shape']} | {absmax_label(where['double_quant'])} | {where.get('M', '-')} | - | - | - | - | "
          "out of time |", flush=True)
    return True


def _check_and_time(x: torch.Tensor, ref: torch.Tensor, pk: Repacked, v: Variant, out: torch.Tensor,
                    dev: torch.device) -> dict:
    """One variant on one weight and row count: its error against the reference, and if it agrees its time (with
    the reduce and alone) and split."""
    from vlmserve.gpu_timing import KERNEL_TIMING, graph_time_us
    from vlmserve.quant.triton_tiles import num_sms
    rec = dict(variant=v.label, us=None)
    out.zero_()
    gluon_matmul(x, pk, v, out)
    rec["err"] = err = rel_err(out, ref)
    if not err <= TOLERANCE:          # NaN fails too
        rec["error"] = f"differs from dequant + F.linear: rel err {err:.2e}"
        return rec
    rec["us"] = t = graph_time_us(lambda: gluon_matmul(x, pk, v, out), **KERNEL_TIMING, device=dev)
    rec["GBps"] = pk.nbytes() / (t * 1e-6) / 1e9           # NF4 bytes + absmax (float32, or codes + nested)
    # the kernel alone: how much of `us` the float32 partials' reduce takes (all of it extra where K is not
    # split: the tuned kernel then stores bf16 itself)
    rec["kernel_us"] = graph_time_us(lambda: gluon_matmul(x, pk, v, reduce=False), **KERNEL_TIMING, device=dev)
    rec["split"] = split_plan(pk.k // QBLOCK, pk.n // v.bn, v, num_sms(dev))[0]
    return rec


def run_gpu(vs: list[Variant], rows: list[int], shapes: set[str], forms: list[bool], deadline: float,
            save=lambda rows: None, device: str = "cuda") -> list[dict]:
    """Per shape, absmax form (double quantized or float32: `forms`) and row count: bf16 cuBLAS, the tuned Triton
    kernel on the same NF4 weight, then every variant checked and timed on one repacked weight (the layout serves
    every BN); save(results) after each, so a run cut short keeps what it finished."""
    import torch.nn.functional as F

    from nf4_kernel_sweep import label as config_label
    from vlmserve.gpu_timing import KERNEL_TIMING, graph_time_us
    from vlmserve.quant import triton_nf4 as T
    from vlmserve.quant.linear import NF4Linear

    dev = torch.device(device)
    bf = torch.bfloat16
    torch.manual_seed(0)
    results = []
    print("| shape | absmax | rows | variant | us (kernel alone, K splits) | x tuned Triton (its us / us) | x bf16 | "
          "check (rel err) |")
    print("|---|---|---:|---|---:|---:|---:|---|")
    for name, n, k in DECODE_SHAPES:
        if shapes and name not in shapes:
            continue
        w16 = torch.randn(n, k, device=dev, dtype=bf) * 0.02      # one weight per shape, in each absmax form
        for dq in forms:
            if _out_of_time(deadline, results, shape=name, N=n, K=k, double_quant=dq):
                continue
            lin = NF4Linear.from_weight(w16, None, bf, double_quant=dq)
            op = lin._operand()
            wdq = lin.dequantize(bf)
            pk = repack_linear(lin)
            absmax = absmax_label(dq)
            for m in rows:
                if _out_of_time(deadline, results, shape=name, M=m, N=n, K=k, double_quant=dq):
                    continue
                x = torch.randn(m, k, device=dev, dtype=bf)
                ref = F.linear(x.float(), wdq.float())
                t16 = graph_time_us(lambda: F.linear(x, w16), **KERNEL_TIMING, device=dev)
                t0 = time.monotonic()
                tuned_out = T.nf4_matmul(x, op, None)          # the first call tunes (compiles and times candidates)
                tune_s = time.monotonic() - t0
                cfg = T.tuned_configs().get(T.tuning_key(m, op, bf, False))
                t_tuned = graph_time_us(lambda: T.nf4_matmul(x, op, None), **KERNEL_TIMING, device=dev)
                tuned_err = rel_err(tuned_out, ref)
                row = dict(shape=name, M=m, N=n, K=k, double_quant=dq, bf16_us=t16, tuned_us=t_tuned,
                           tuned_config=config_label(cfg) if cfg is not None else None, tuned_err=tuned_err,
                           tune_s=tune_s, variants=[])
                print(f"| {name} | {absmax} | {m} | bf16 cuBLAS | {t16:.1f} | {t_tuned / t16:.2f} | 1.00 | |",
                      flush=True)
                print(f"| {name} | {absmax} | {m} | tuned Triton {row['tuned_config']} | {t_tuned:.1f} | 1.00 | "
                      f"{t16 / t_tuned:.2f} | {'ok' if tuned_err <= TOLERANCE else 'FAIL'} ({tuned_err:.1e}) |",
                      flush=True)
                out = torch.empty(m, n, device=dev, dtype=bf)
                for v in vs:
                    if time.monotonic() > deadline:
                        row["variants"].append(dict(variant=v.label, us=None, error="out of time"))
                        continue
                    try:
                        rec = _check_and_time(x, ref, pk, v, out, dev)
                    except Exception as exc:      # a variant that does not build or launch here: listed, not timed
                        rec = dict(variant=v.label, us=None, error=f"{type(exc).__name__}: {str(exc)[:200]}")
                    row["variants"].append(rec)
                    if rec["us"] is None:
                        print(f"| {name} | {absmax} | {m} | {v.label} | - | - | - | {rec['error'][:80]} |", flush=True)
                    else:
                        print(f"| {name} | {absmax} | {m} | {v.label} | {rec['us']:.1f} ({rec['kernel_us']:.1f}, "
                              f"{rec['split']}) | {t_tuned / rec['us']:.2f} | {t16 / rec['us']:.2f} | "
                              f"ok ({rec['err']:.1e}) |", flush=True)
                timed = [r for r in row["variants"] if r["us"] is not None]
                row["best"] = min(timed, key=lambda r: r["us"]) if timed else None
                results.append(row)
                save(results)
            lin = op = wdq = pk = x = ref = out = None      # the next weight's room (the output layer: GBs)
            torch.cuda.empty_cache()
        w16 = None
    return results


def summary(decode: list[dict]) -> None:
    """The best variant per shape, absmax form and row count against the tuned Triton kernel and bf16."""
    print("\n| shape | absmax | rows | bf16 us | tuned Triton us | best Gluon | us | x tuned | x bf16 | GB/s | "
          "failed |")
    print("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for row in decode:
        head = f"| {row['shape']} | {absmax_label(row['double_quant'])} | {row.get('M', '-')} | "
        if "variants" not in row:
            print(head + f"{row.get('error')} |||||||", flush=True)
            continue
        b = row["best"]
        failed = sum(1 for v in row["variants"] if v.get("error") not in (None, "out of time"))
        print(head + f"{row['bf16_us']:.1f} | {row['tuned_us']:.1f} | "
              + (f"{b['variant']} | {b['us']:.1f} | {row['tuned_us'] / b['us']:.2f} | {row['bf16_us'] / b['us']:.2f} "
                 f"| {b['GBps']:.0f} | " if b else "none | - | - | - | - | ") + f"{failed} |", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="compile for sm_90 and print the SASS figures (the default "
                                                       "without CUDA)")
    ap.add_argument("--rows", default="16,64", help="decode row counts (comma separated, at most 64)")
    ap.add_argument("--shapes", default="", help="only these shapes (comma separated: lm.qkv, lm.dense, "
                                                 "lm.h_to_4h, lm.4h_to_h, output_layer)")
    ap.add_argument("--variants", default="", help="only these variants by name, e.g. async-d8-bn128-sw")
    ap.add_argument("--waves", default="2,4", help="K split for about this many programs per SM (comma "
                                                   "separated; each variant at each)")
    ap.add_argument("--double-quant", choices=("0", "1", "both"), default="1",
                    help="absmax form: 1 8-bit double quantized (serving's default), 0 float32, both each in turn")
    ap.add_argument("--seconds", type=float, default=180.0, help="GPU: start no new shape, absmax form, row count "
                                                                 "or variant after this")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "nf4_gluon_probe.json"))
    args = ap.parse_args(argv)
    deadline = time.monotonic() + args.seconds
    rows = [int(r) for r in args.rows.split(",") if r]
    vs = variants(args.variants, args.waves)
    if not vs:
        ap.error(f"no variant named {args.variants!r}: {', '.join(v.name for v in variants(waves='4'))}")
    forms = {"0": [False], "1": [True], "both": [True, False]}[args.double_quant]
    if args.cpu or not torch.cuda.is_available():
        run_cpu(vs, rows, forms)
        return 0
    import json

    import triton

    from result_path import result_path

    result = dict(machine=dict(gpu=torch.cuda.get_device_name(), torch=torch.__version__,
                               triton=triton.__version__),
                  command=" ".join(["python"] + sys.argv), tolerance=TOLERANCE)
    dest = result_path(args.out)

    def save(decode: list[dict]) -> None:
        result["decode"] = decode
        with open(dest, "w") as f:
            json.dump(result, f, indent=1)

    decode = run_gpu(vs, rows, {s for s in args.shapes.split(",") if s}, forms, deadline, save)
    save(decode)
    summary(decode)
    print(f"wrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
