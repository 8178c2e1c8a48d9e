"""Where the memory of a card goes when the engine serves on it: weights, the activation reserve, the caches, and
the KV cache in what is left. The one rule that sizes the KV cache: the engine applies it to the card it runs on
(`measure_device`, when no --kv-budget-tokens is given) and bench/serve_throughput.py --budget-gib to an emulated
card. `plan_memory` is pure arithmetic (no GPU), so a plan for a 16 GB card can be checked anywhere.

What the cap holds, in the order it is taken:
  weights        what torch holds when the engine starts (the model, and the NF4 dequantization scratch, which
                 the engine allocates before it measures)
  activations    the vision tower's peak for one micro-batch of `vision_batch` images, prefill's peak for one
                 micro-batch of `prefill_tokens` tokens, and a fixed reserve for library scratch (cuBLAS, Triton,
                 CUDA graph pools); micro-batches run one after another, so these add once
  decode         each KV slot's decode transient (logits, sampling, graph-captured activations per row)
  fragmentation  a share of the cap the caching allocator cannot hand out
  caches         the image-prefix KV store and the vision-embedding cache, both preallocated or bounded
  KV cache       whole slots of `slot_len` tokens in what is left, at most max_batch

Everything is in bytes. The per-unit activation peaks are the H200 measurements in bench/results
(serve_profile.json: the vision tower's extra memory per micro-batch of images; nf4_memory_speed_h200.json:
prefill's extra memory per prompt token, and decode's transient peak per running row during graph capture
and tuning); the plan adds a fragmentation allowance on top, since a capped pool cannot borrow from the rest
of the GPU.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .kv_cache import SlotKVCache

GIB = 2**30
MIB = 2**20

VISION_PER_IMAGE = int(0.16 * GIB)    # +0.30 GiB at 2 images, +1.20 at 8, +2.39 at 16 (bf16 and NF4 alike)
MEASURED_CHUNK = 2048                 # tokens per vision MLP chunk when VISION_PER_IMAGE was measured
PREFILL_PER_TOKEN = int(0.2 * MIB)    # 0.31 GiB for one 1,611-token prompt; 3.8 GiB for 16 of them at once
DECODE_PER_ROW = 12 * MIB             # decode peak above what it holds: 0.74 GiB at 64 rows, 0.16 GiB at 16
FIXED_RESERVE = int(0.25 * GIB)       # cuBLAS workspaces, Triton launch buffers, CUDA graph pools
FRAGMENTATION = 0.10                  # of the cap: a capped caching allocator cannot use every free byte
MARGIN = int(0.25 * GIB)              # of the card, kept free of torch for other users of the device (NCCL, drivers)
PREFIX_ROOM = 64                      # tokens an image-prefix entry holds besides the image: a short system prompt

# The engine settings of a small card (12-16 GB with NF4 weights), where the default micro-batches alone leave no
# KV slot: smaller vision and prefill micro-batches, fewer cached prefixes, 2,048-token slots (an image's 1,600
# vectors, the prompt and a few hundred answer tokens). The engine falls back to them by itself (fit_engine_config);
# the 16 GB budget benchmark measures them.
SMALL_CARD = dict(slot_len=2048, prefill_tokens=4096, round_tokens=4096, vision_batch=2, round_images=2,
                  prefix_cache_entries=4, image_cache_entries=8)


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class MemoryPlan:
    cap: int                # what torch may hold (set as its per-process memory fraction)
    weights: int
    activations: int        # vision micro-batch + prefill micro-batch + fixed reserve
    decode: int             # per running row, for the slots planned
    fragmentation: int
    prefix_store: int
    image_cache: int
    kv: int                 # the KV cache of the planned slots
    slots: int
    slot_len: int

    @property
    def kv_budget_tokens(self) -> int:
        return self.slots * self.slot_len

    @property
    def unplanned(self) -> int:
        """Bytes of the cap left over (less than one more slot)."""
        return self.cap - (self.weights + self.activations + self.decode + self.fragmentation + self.prefix_store
                           + self.image_cache + self.kv)

    def rows(self) -> list[tuple[str, float]]:
        """(part, GiB) in the order they are taken from the cap."""
        return [("torch cap", self.cap / GIB), ("weights", self.weights / GIB),
                ("activations (vision + prefill micro-batches, fixed)", self.activations / GIB),
                (f"decode transients ({self.slots} rows)", self.decode / GIB),
                ("fragmentation allowance", self.fragmentation / GIB), ("prefix store", self.prefix_store / GIB),
                ("image cache", self.image_cache / GIB),
                (f"KV cache ({self.slots} slots x {self.slot_len} tokens)", self.kv / GIB),
                ("left over", self.unplanned / GIB)]

    def table(self) -> str:
        return "\n".join(f"  {name:<52} {gib:7.2f} GiB" for name, gib in self.rows())


def plan_memory(*, card_bytes: int, context_bytes: int, weights_bytes: int, kv_bytes_per_token: int,
                slot_len: int, max_slots: int, vision_batch: int, prefill_tokens: int, prefix_entries: int,
                prefix_len: int, image_entries: int, image_bytes: int, margin_bytes: int = MARGIN,
                vision_chunk_bytes: int = 0) -> MemoryPlan:
    """The plan for a card of card_bytes: torch's cap is the card less the CUDA context and a margin; from it the
    weights, the activation reserve for the given micro-batch sizes, a fragmentation allowance and the caches;
    the rest holds as many KV slots (each with its decode transient) as fit, up to max_slots. vision_chunk_bytes: what
    the vision MLP's chunks hold beyond the chunks VISION_PER_IMAGE was measured with (vision_chunk_extra).
    Raises PlanError when not even one slot fits (with the numbers, so the caller can say what to shrink)."""
    for name, value in (("card_bytes", card_bytes), ("kv_bytes_per_token", kv_bytes_per_token),
                        ("slot_len", slot_len), ("max_slots", max_slots), ("vision_batch", vision_batch),
                        ("prefill_tokens", prefill_tokens)):
        if value <= 0:
            raise PlanError(f"{name} must be positive, got {value}")
    for name, value in (("context_bytes", context_bytes), ("weights_bytes", weights_bytes),
                        ("prefix_entries", prefix_entries), ("prefix_len", prefix_len),
                        ("image_entries", image_entries), ("image_bytes", image_bytes),
                        ("margin_bytes", margin_bytes)):
        if value < 0:
            raise PlanError(f"{name} must not be negative, got {value}")
    cap = card_bytes - context_bytes - margin_bytes
    if cap <= 0:
        raise PlanError(f"a {card_bytes / GIB:.2f} GiB card leaves nothing after the CUDA context "
                        f"({context_bytes / GIB:.2f} GiB) and margin ({margin_bytes / GIB:.2f} GiB)")
    activations = (vision_batch * VISION_PER_IMAGE + vision_chunk_bytes + prefill_tokens * PREFILL_PER_TOKEN
                   + FIXED_RESERVE)
    fragmentation = int(cap * FRAGMENTATION)
    prefix_store = prefix_entries * prefix_len * kv_bytes_per_token
    image_cache = image_entries * image_bytes
    left = cap - weights_bytes - activations - fragmentation - prefix_store - image_cache
    per_slot = slot_len * kv_bytes_per_token + DECODE_PER_ROW
    slots = min(max_slots, max(0, left) // per_slot)
    if slots < 1:
        raise PlanError(
            f"no KV slot fits: cap {cap / GIB:.2f} GiB - weights {weights_bytes / GIB:.2f} - activations "
            f"{activations / GIB:.2f} - fragmentation {fragmentation / GIB:.2f} - prefix store "
            f"{prefix_store / GIB:.2f} - image cache {image_cache / GIB:.2f} = {left / GIB:.2f} GiB < one slot "
            f"({per_slot / GIB:.3f} GiB); shrink slot_len, the micro-batches or the caches")
    return MemoryPlan(cap=cap, weights=weights_bytes, activations=activations, decode=slots * DECODE_PER_ROW,
                      fragmentation=fragmentation, prefix_store=prefix_store, image_cache=image_cache,
                      kv=slots * slot_len * kv_bytes_per_token, slots=int(slots), slot_len=slot_len)


@dataclass(frozen=True)
class DeviceMemory:
    card_bytes: int      # what the device has
    context_bytes: int   # used outside torch's pools: the CUDA context, loaded kernels, other processes
    weights_bytes: int   # what torch holds now (before the engine allocates: the model)


def measure_device(device: torch.device) -> DeviceMemory:
    """The device's memory as the plan needs it; torch's cached but unused blocks count as free."""
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(device).total_memory
    free, _ = torch.cuda.mem_get_info(device)
    return DeviceMemory(card_bytes=total, context_bytes=(total - free) - torch.cuda.memory_reserved(device),
                        weights_bytes=torch.cuda.memory_allocated(device))


def prefix_entry_len(model_cfg) -> int:
    """Tokens one image-prefix store entry holds: the image's vectors and room for a short system prompt."""
    return model_cfg.n_vision_embeds + PREFIX_ROOM


def engine_slot_len(model_cfg, config) -> int:
    """Tokens per KV slot: the configured length, at most what the rotary table covers (None: that maximum)."""
    return min(config.slot_len or model_cfg.rotary_positions, model_cfg.rotary_positions)


def vision_chunk_extra(model_cfg, vision_batch: int, chunk_tokens: int) -> int:
    """Bytes the vision MLP's chunks of `chunk_tokens` hold beyond MEASURED_CHUNK-token ones, for a micro-batch of
    `vision_batch` images: fc1's output in 16 bits and, for FP8 layers, its e4m3 copy (3 bytes per value)."""
    v = model_cfg.vision
    tokens = min(vision_batch * (v.grid ** 2 + 1), chunk_tokens)
    return max(0, tokens - MEASURED_CHUNK) * v.intermediate_size * 3


def engine_plan(model_cfg, config, dtype: torch.dtype, memory: DeviceMemory,
                vision_chunk_tokens: int = MEASURED_CHUNK) -> MemoryPlan:
    """The plan for an engine of `config` (an EngineConfig) serving a model of `model_cfg` with KV and activations
    in `dtype`: the micro-batch sizes, cache entries, slot length and slot count are the engine's own, so the
    slots planned are the slots the engine will allocate. vision_chunk_tokens: the vision MLP's chunk size for the
    model's weights (vision.MLP.chunk_tokens)."""
    per_token = SlotKVCache.bytes_per_token(model_cfg.num_layers, model_cfg.n_kv_heads, model_cfg.head_dim, dtype)
    caches = config.prefix_cache
    return plan_memory(card_bytes=memory.card_bytes, context_bytes=memory.context_bytes,
                       weights_bytes=memory.weights_bytes, kv_bytes_per_token=per_token,
                       slot_len=engine_slot_len(model_cfg, config), max_slots=config.max_batch,
                       vision_batch=config.vision_batch, prefill_tokens=config.prefill_tokens,
                       prefix_entries=config.prefix_cache_entries if caches else 0,
                       prefix_len=prefix_entry_len(model_cfg),
                       image_entries=config.image_cache_entries if caches else 0,
                       image_bytes=model_cfg.n_vision_embeds * model_cfg.hidden_size
                       * torch.tensor([], dtype=dtype).element_size(),
                       vision_chunk_bytes=vision_chunk_extra(model_cfg, config.vision_batch, vision_chunk_tokens))


def small_card_config(config):
    """`config` with the small-card settings wherever it asks for more (what it asks for less of stays)."""
    return replace(config, **{k: v if getattr(config, k) is None else min(getattr(config, k), v)
                              for k, v in SMALL_CARD.items()})


def fit_engine_config(model_cfg, config, dtype: torch.dtype, memory: DeviceMemory,
                      vision_chunk_tokens: int = MEASURED_CHUNK):
    """(config, plan, shrunk): the engine's plan for `config`; when not one KV slot fits, the plan for the
    small-card settings instead (shrunk True), so a 16 GB card serves with defaults rather than refusing to start.
    A context length that was asked for (slot_len, --max-model-len) is kept: the fallback shrinks only the
    micro-batches and caches, and if that is not enough the error names it, rather than serving shorter contexts
    than the user asked for. Raises the first PlanError when even the small-card settings leave no slot."""
    try:
        return config, engine_plan(model_cfg, config, dtype, memory, vision_chunk_tokens), False
    except PlanError as first:
        shortest = small_card_config(config)
        small = shortest if config.slot_len is None else replace(shortest, slot_len=config.slot_len)
        if small == config:
            raise
        try:
            return small, engine_plan(model_cfg, small, dtype, memory, vision_chunk_tokens), True
        except PlanError:
            if small == shortest:
                raise first from None
            try:
                shorter = engine_plan(model_cfg, shortest, dtype, memory, vision_chunk_tokens)
            except PlanError:
                raise first from None
            raise PlanError(f"{first}; with the small-card micro-batches no slot of the {config.slot_len} tokens asked "
                            f"for (--max-model-len) fits either, while {shorter.slots} of {shorter.slot_len} would: "
                            f"ask for fewer tokens") from None
