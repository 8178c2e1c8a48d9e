"""NF4 x bf16/fp16 matmul for 1..256 rows on tensor cores, Marlin-style, in Triton's Gluon.

out[M, N] = x[M, K] @ dequant(W)[N, K]^T (+ bias), W in the kernel layout of vlmserve.quant.nf4_layout. The weight
is operand A of mma.m16n8k16 (its rows are the MMA's M), x's rows its N; a program computes BN weight rows
(64 or 128: four warps of 16 rows, REPS times) for BM rows of x (16 or 64; more rows: more programs along
program_id(2)) over one K split (program_id(1)).

Why this shape (the kernels of triton_nf4 read bitsandbytes' layout and let the compiler place the bytes, which then
pass through shared memory or byte gathers on their way to the tensor cores): in the kernel layout each thread's one
16-byte load per 16-row group per quant block holds exactly the four 32-bit words that the PRMT decoding
(vlmserve.quant.nf4_prmt) turns into that thread's mma_v2 operand-A registers: no shuffles, no per-weight index math.
The reshape / permute / join below only relabel registers, and the final convert_layout is asserted trivial (a
compile error otherwise). A ring of DEPTH shared-memory slots filled by cp.async (weights, x tile, scales) keeps
DEPTH - 1 quant blocks in flight whatever the occupancy; each thread copies exactly the bytes it later reads back
(one LDS.128, no bank conflicts), x reaches the B operand by ldmatrix. On an H100 this was 1.11-1.37x faster than
the tuned triton_nf4 kernels on every GLM-4V-9B decoder shape at 16 rows (bench/nf4_gluon_probe.py).

SCALE_W multiplies the block scale into the decoded weights (16-bit, before the MMA) instead of into the block's
partial product (float32, after it): fewer instructions at 64 rows, one more 16-bit rounding.
Split K: float32 partials [SPLIT, M, N] that triton_tiles.add_splits (or a consumer, quant.partials) sums; one split
stores the output (and bias) itself. Import only where Triton with Gluon exists (triton_nf4 imports it lazily).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from triton.experimental import gluon
from triton.experimental.gluon import language as gl
from triton.experimental.gluon.language.nvidia.ampere import async_copy, mma_v2

from .triton_tiles import _split_k

NUM_WARPS = 4
QBLOCK = 64
GROUP_WORDS = gl.constexpr(128)   # int32 words per 16-row group per quant block: one warp's 512 contiguous bytes


def usable(device: torch.device) -> bool:
    """cp.async and mma.m16n8k16 with bf16: Ampere and later."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def row_tile(m: int) -> int:
    """BM, the rows of x per program: 16 up to 16 rows, else 64 (triton_nf4.RING_CONFIGS is keyed by it)."""
    return 16 if m <= 16 else 64


@dataclass(frozen=True)
class Plan:
    """How one call is cut: programs (N / BN, split, M tiles), quant blocks per split."""
    bm: int
    split: int
    per: int
    m_tiles: int


def plan(m: int, n: int, k: int, bn: int, depth: int, waves: int, sms: int) -> Plan:
    """About `waves` programs per SM, each split at least DEPTH quant blocks (a ring never shorter than its fill).
    The last split may be shorter, and a split's block count need not be a multiple of DEPTH (the kernel's tail)."""
    bm = row_tile(m)
    m_tiles = -(-m // bm)
    k_blocks = k // QBLOCK
    split = _split_k(n // bn * m_tiles, -(-k_blocks // depth), sms, 1, waves)
    per = -(-k_blocks // split)
    return Plan(bm, -(-k_blocks // per), per, m_tiles)


def schedule(b0: int, b1: int, depth: int) -> list[tuple[str, int, int]]:
    """The blocks one split computes, in the kernel's order, as (part, ring slot, block): full groups of DEPTH in the
    unrolled main loop, then the tail of fewer than DEPTH (the CPU tests simulate the kernel with it)."""
    n = b1 - b0
    n_main = n - n % depth
    out = [("main", i, g + i) for g in range(b0, b0 + n_main, depth) for i in range(depth)]
    return out + [("tail", i, b0 + n_main + i) for i in range(n % depth)]


# ----------------------------------------------------------------------------------------------- kernel

@gluon.jit
def _split16(v, DT: gl.constexpr):
    # one 32-bit register as its two 16-bit halves (DT: the compute dtype): register renaming, no instruction
    if DT == gl.bfloat16:
        lo, hi = gl.inline_asm_elementwise("mov.b32 {$0, $1}, $2;", "=h,=h,r", [v], dtype=(gl.bfloat16, gl.bfloat16),
                                           is_pure=True, pack=1)
    else:
        lo, hi = gl.inline_asm_elementwise("mov.b32 {$0, $1}, $2;", "=h,=h,r", [v], dtype=(gl.float16, gl.float16),
                                           is_pure=True, pack=1)
    return lo, hi


@gluon.jit
def _decode_tile(wv, PRMT_ASM: gl.constexpr, DT: gl.constexpr, BN: gl.constexpr, REPS: gl.constexpr,
                 NW: gl.constexpr, A_LAYOUT: gl.constexpr):
    # wv: int32 [BN * 8], 4 contiguous words per thread (one 16-byte load). The PRMT program turns one word into
    # $0 = (a0, a1) of the m16n8k16 A fragment, $1 = (a2, a3) (row + 8), $2 = (a4, a5), $3 = (a6, a7) (column + 8).
    o0, o1, o2, o3 = gl.inline_asm_elementwise(PRMT_ASM, "=r,=r,=r,=r,r", [wv],
                                               dtype=(gl.int32, gl.int32, gl.int32, gl.int32), is_pure=True, pack=1)
    l0, h0 = _split16(o0, DT)
    l1, h1 = _split16(o1, DT)
    l2, h2 = _split16(o2, DT)
    l3, h3 = _split16(o3, DT)
    # join puts its new dimension as the fastest register: this nesting gives the operand layout's per-thread
    # register order (k+1, n+8, k+8) within each word
    lo = gl.join(gl.join(l0, l2), gl.join(l1, l3))
    hi = gl.join(gl.join(h0, h2), gl.join(h1, h3))
    f = gl.join(lo, hi)                                            # [BN*8, 2 (k8), 2 (n8), 2 (k1)]
    f = gl.reshape(f, [REPS, NW, 8, 4, 2, 2, 2, 2, 2])             # rep, warp, g, t, w1, w0, k8, n8, k1
    f = gl.permute(f, [0, 1, 7, 2, 4, 5, 6, 3, 8])                 # rep, warp, n8, g | w1, w0, k8, t, k1
    a = gl.reshape(f, [BN, 64])
    return gl.convert_layout(a, A_LAYOUT, assert_trivial=True)


@gluon.jit
def _dot_block(acc, a, xb, s, SCALE_W: gl.constexpr, mma: gl.constexpr):
    # one quant block's product with its scale, on the weights (16-bit) or on the block's partial product (float32)
    if SCALE_W:
        a = a * s.to(a.dtype)[:, None]
        acc = mma_v2(a, xb, acc)
    else:
        part = mma_v2(a, xb, gl.zeros(acc.shape, gl.float32, layout=mma))
        acc = acc + part * s[:, None]
    return acc


@gluon.jit
def _store(acc, out_ptr, bias_ptr, pid_n, pid_k, row0, M, N, BN: gl.constexpr, BM: gl.constexpr,
           IS_SPLIT: gl.constexpr, HAS_BIAS: gl.constexpr, mma: gl.constexpr):
    # acc [BN, BM] (weight rows x rows of x) into out [M, N], or into split pid_k's float32 partials [SPLIT, M, N]
    om = row0 + gl.arange(0, BM, layout=gl.SliceLayout(0, mma))
    rn = pid_n * BN + gl.arange(0, BN, layout=gl.SliceLayout(1, mma))
    offs = om[None, :] * N + rn[:, None]
    mask = (om[None, :] < M) & (rn[:, None] < N)
    if IS_SPLIT:
        gl.store(out_ptr + pid_k * M * N + offs, acc, mask=mask)
    else:
        if HAS_BIAS:
            acc = acc + gl.load(bias_ptr + rn).to(gl.float32)[:, None]
        gl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


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
def _ring_block(acc, w_s, x_s, c_s, i: gl.constexpr, b, scl, PRMT_ASM: gl.constexpr, DT: gl.constexpr,
                BN: gl.constexpr, REPS: gl.constexpr, NW: gl.constexpr, SCALE_W: gl.constexpr,
                DOUBLE_QUANT: gl.constexpr, w_l: gl.constexpr, s_l: gl.constexpr, a_l: gl.constexpr,
                b_l: gl.constexpr, mma: gl.constexpr):
    # slot i (block b): the thread's own 16 weight bytes per 16-row group (LDS.128), x by ldmatrix, the scales
    wv = w_s.index(i).load(w_l)
    xb = x_s.index(i).permute([1, 0]).load(b_l)
    s = _block_scales(c_s.index(i).load(s_l), b, scl, DOUBLE_QUANT)
    a = _decode_tile(wv, PRMT_ASM, DT, BN, REPS, NW, a_l)
    return _dot_block(acc, a, xb, s, SCALE_W, mma)


@gluon.jit
def _ring_fill(w_s, x_s, c_s, slot: gl.constexpr, b, w_base, x_base, x_mask, c_base, N):
    # one cp.async group: block b's weight words, x tile and scale codes / absmax into ring slot `slot`
    async_copy.async_copy_global_to_shared(w_s.index(slot), w_base + b * GROUP_WORDS)
    async_copy.async_copy_global_to_shared(x_s.index(slot), x_base + b * 64, mask=x_mask)
    async_copy.async_copy_global_to_shared(c_s.index(slot), c_base + b * N)
    async_copy.commit_group()


@gluon.jit
def nf4_ring_kernel(x_ptr, w_ptr, s_ptr, code2_ptr, nested_ptr, offset, bias_ptr, out_ptr, M, N, K, stride_xm, PER,
                    BM: gl.constexpr, REPS: gl.constexpr, DEPTH: gl.constexpr, PRMT_ASM: gl.constexpr,
                    SCALE_W: gl.constexpr, DOUBLE_QUANT: gl.constexpr, IS_SPLIT: gl.constexpr,
                    HAS_BIAS: gl.constexpr):
    # grid (N / BN, SPLIT, cdiv(M, BM)); split pid_k computes quant blocks [pid_k * PER, min(+PER, K/64)). A ring of
    # DEPTH shared-memory slots, DEPTH - 1 blocks in flight; the main loop is unrolled DEPTH times so that slot
    # indices are compile-time constants. s_ptr: the transposed scales [K/64, N], float32 absmax or (DOUBLE_QUANT)
    # uint8 codes; code2_ptr / nested_ptr / offset unused without DOUBLE_QUANT. out_ptr: out [M, N] in x's dtype, or
    # (IS_SPLIT) the float32 partials [SPLIT, M, N].
    NW: gl.constexpr = gl.num_warps()
    BN: gl.constexpr = 16 * NW * REPS
    WB: gl.constexpr = BN * 8
    DT: gl.constexpr = x_ptr.dtype.element_ty
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
    row0 = gl.program_id(2) * BM
    k_blocks, b0, b1, last, n_main, r = _split_blocks(K, PER, DEPTH)

    w_base = _weight_base(w_ptr, pid_n, k_blocks, BN, w_l)
    xm = row0 + gl.arange(0, BM, layout=gl.SliceLayout(1, x_l))
    xk = gl.arange(0, 64, layout=gl.SliceLayout(0, x_l))
    x_base = x_ptr + xm[:, None].to(gl.int64) * stride_xm + xk[None, :]
    x_mask = (xm[:, None] < M) & (xk[None, :] < 64)         # rows past M: zero-filled by the copy
    c_base = s_ptr + pid_n * BN + gl.arange(0, BN, layout=c_l)
    scl = (pid_n * BN + gl.arange(0, BN, layout=s_l), k_blocks, code2_ptr, nested_ptr, offset)

    w_s = gl.allocate_shared_memory(gl.int32, [DEPTH, WB], w_sl)
    x_s = gl.allocate_shared_memory(DT, [DEPTH, BM, 64], x_sl)
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
            acc = _ring_block(acc, w_s, x_s, c_s, i, g + i, scl, PRMT_ASM, DT, BN, REPS, NW, SCALE_W, DOUBLE_QUANT,
                              w_l, s_l, a_l, b_l, mma)
    # tail: r < DEPTH blocks, already in flight in slots 0..r-1 (the last DEPTH - 1 groups committed); nothing
    # more to copy, wait for one group more each step
    for i in gl.static_range(DEPTH - 1):
        if i < r:
            async_copy.wait_group(DEPTH - 2 - i)
            gl.thread_barrier()
            acc = _ring_block(acc, w_s, x_s, c_s, i, n_main + i, scl, PRMT_ASM, DT, BN, REPS, NW, SCALE_W,
                              DOUBLE_QUANT, w_l, s_l, a_l, b_l, mma)
    async_copy.wait_group(0)
    _store(acc, out_ptr, bias_ptr, pid_n, gl.program_id(1), row0, M, N, BN, BM, IS_SPLIT, HAS_BIAS, mma)


def launch(x: torch.Tensor, weight: torch.Tensor, scales: torch.Tensor, double_quant: tuple | None, n: int,
           bias: torch.Tensor | None, target: torch.Tensor, p: Plan, bn: int, depth: int, scale_w: bool,
           prmt_asm: str) -> None:
    """One call into target: out [M, N] (p.split == 1) or the float32 partials [p.split, M, N]. weight: the kernel
    layout's bytes; scales [K/64, N]; double_quant: (code2, nested, offset) when scales are uint8 codes."""
    m, k = x.shape
    code2, nested, offset = double_quant if double_quant is not None else (scales, scales, 0.0)
    nf4_ring_kernel[(n // bn, p.split, p.m_tiles)](
        x, weight.view(torch.int32), scales, code2, nested, offset, bias if bias is not None else scales, target,
        m, n, k, x.stride(0), p.per, BM=p.bm, REPS=bn // (16 * NUM_WARPS), DEPTH=depth, PRMT_ASM=prmt_asm,
        SCALE_W=scale_w, DOUBLE_QUANT=double_quant is not None, IS_SPLIT=p.split > 1, HAS_BIAS=bias is not None,
        num_warps=NUM_WARPS)
