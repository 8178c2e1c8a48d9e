"""GLM-4V-9B: vision tower + ChatGLM4 decoder, with the image splice and position rules.

Split into the steps a serving engine schedules separately:
  encode_images -> embed (splice + positions) -> forward_embeds (decoder, attention via a
  backend) -> logits. ``forward`` chains them for a whole sequence (parity tests, ``logits``).
"""
from __future__ import annotations

import torch
from torch import nn

from vlmserve.attention import AttentionBackend, DynamicKVCache
from vlmserve.config import ModelConfig
from vlmserve.decoder import Embedding, Encoder
from vlmserve.rotary import RotaryTable
from vlmserve.vision import VisionTower


class ImageTokens:
    """GLM-4V's image-token arithmetic, for code that schedules a prompt in pieces (the engine).

    In the prompt ids an image is 3 ids: <|begin_of_image|>, a placeholder, <|end_of_image|>. The
    model replaces them by the vision tower's n vectors (boi, the image tokens, eoi), so the prompt
    takes n - 3 more K/V entries than it has ids. Rotary positions do NOT grow with the image: the
    boi vector keeps the boi id's position, every image vector the placeholder's, the eoi vector the
    eoi id's, so a token's rotary position is its index in the UNexpanded ids (the official GLM-4V
    code numbers positions this way; `GLM4V._splice_plan` applies it to whole sequences).
    """

    def __init__(self, cfg: ModelConfig):
        self.n_vectors = cfg.n_vision_embeds
        self.boi_id, self.eoi_id = cfg.boi_token_id, cfg.eoi_token_id

    def expanded_len(self, n_ids: int, has_image: bool) -> int:
        """K/V entries taken by a prompt of n_ids ids (the image counted as its vectors)."""
        return n_ids + (self.n_vectors - 3 if has_image else 0)

    def split(self, prompt_ids: list[int]) -> tuple[list[int], list[int]]:
        """The prompt cut right after the image: (ids up to and with <|end_of_image|>, the rest)."""
        try:
            cut = prompt_ids.index(self.eoi_id) + 1
        except ValueError:
            raise ValueError("the prompt has no <|end_of_image|> id, so it carries no image") from None
        return list(prompt_ids[:cut]), list(prompt_ids[cut:])

    @staticmethod
    def position_after(n_ids: int) -> int:
        """Rotary position of the token that follows the first n_ids prompt ids, image or not."""
        return n_ids


class ChatGLMTransformer(nn.Module):
    """Container that gives the official ``transformer.*`` parameter names."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embedding = Embedding(cfg)
        self.rotary = RotaryTable(cfg.head_dim, cfg.rotary_positions, base=10000.0 * cfg.rope_ratio)
        self.encoder = Encoder(cfg)
        self.output_layer = nn.Linear(cfg.hidden_size, cfg.padded_vocab_size, bias=False)
        self.vision = VisionTower(cfg)


class GLM4V(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.transformer = ChatGLMTransformer(cfg)
        self.image_tokens = ImageTokens(cfg)

    @property
    def device(self) -> torch.device:
        """The compute device (the embedding table may be kept in host memory: Embedding.keep_on_host)."""
        return self.transformer.encoder.final_layernorm.weight.device

    @property
    def vision(self) -> VisionTower:
        return self.transformer.vision

    @property
    def n_vision_embeds(self) -> int:
        return self.config.n_vision_embeds

    # -- images -------------------------------------------------------------------------------
    def encode_images(self, pixel_values: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        """[B, 3, S, S] of any float dtype/device -> [B, n_img + 2, hidden] (boi, image, eoi) / scale.

        The image is cast to the tower's dtype and device as they are NOW (a bf16 tower fed a fp16
        image is the official demo's "Input type and bias type should be the same" crash)."""
        w = self.vision.input_weight
        return self.vision(pixel_values.to(device=w.device, dtype=w.dtype), trace=trace)

    # -- splice ---------------------------------------------------------------------------------
    def _splice_plan(self, input_ids: torch.Tensor):
        """Index maps for replacing each row's 3 image ids (boi, placeholder, eoi) by the
        n = n_img + 2 vision vectors, with the position rule of `ImageTokens`. All rows have the same length L, so every
        expanded row has L' = L - 3 + n. Returns (in_image, vision_idx, text_src, pos_src), [B, L']."""
        cfg = self.config
        B, L = input_ids.shape
        n = self.n_vision_embeds
        is_boi = input_ids == cfg.boi_token_id
        p = is_boi.int().argmax(dim=1)                                   # first boi per row
        eoi_pos = (p + 2).clamp(max=L - 1)
        ok = is_boi.any(dim=1) & (input_ids.gather(1, eoi_pos[:, None])[:, 0] == cfg.eoi_token_id) & (p + 2 < L)
        if not bool(ok.all()):
            bad = [i for i, good in enumerate(ok.tolist()) if not good]
            raise ValueError(f"rows {bad}: an image needs the ids <|begin_of_image|> <|endoftext|> "
                             f"<|end_of_image|> ({cfg.boi_token_id}, {cfg.pad_token_id}, {cfg.eoi_token_id}) "
                             "in a row, once per row")
        j = torch.arange(L - 3 + n, device=input_ids.device)[None, :]
        rel = j - p[:, None]                                             # index inside the image span
        in_image = (rel >= 0) & (rel < n)
        text_src = torch.where(rel < 0, j, j - (n - 3)).clamp(0, L - 1)
        # boi keeps the boi's position, every image token the placeholder's, eoi the eoi's
        pos_src = torch.where(in_image, p[:, None] + (rel >= 1).long() + (rel == n - 1).long(), text_src)
        return in_image, rel.clamp(0, n - 1), text_src, pos_src

    def embed(self, input_ids: torch.Tensor, vision_embeds: torch.Tensor | None = None,
              position_ids: torch.Tensor | None = None):
        """Token embeddings with the image spliced in, and their rotary positions.

        input_ids [B, L]; vision_embeds [B, n, H] or None; position_ids [B, L] or None (0..L-1).
        Returns (embeds [B, L', H], positions [B, L']) with L' = L + n - 3 when there is an image, both on the
        compute device, wherever the ids are."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [B, L], got {list(input_ids.shape)}")
        B, L = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(L, device=input_ids.device).expand(B, L)
        if position_ids.shape != input_ids.shape:
            raise ValueError(f"position_ids {list(position_ids.shape)} != input_ids {list(input_ids.shape)}")
        position_ids = position_ids.to(input_ids.device)
        tokens = self.transformer.embedding(input_ids)
        to = tokens.device
        if vision_embeds is None:
            return tokens, position_ids.to(to, non_blocking=True)
        if vision_embeds.shape[0] != B or vision_embeds.shape[1] != self.n_vision_embeds:
            raise ValueError(f"vision_embeds {list(vision_embeds.shape)} do not fit {B} rows of "
                             f"{self.n_vision_embeds} vectors (one image per row)")
        # The plan is made where the ids are: host ids (the engine's) cost the GPU no synchronisation for its check.
        in_image, vis_idx, text_src, pos_src = (t.to(to, non_blocking=True) for t in self._splice_plan(input_ids))
        H = tokens.shape[-1]
        text = tokens.gather(1, text_src[..., None].expand(-1, -1, H))
        vis = vision_embeds.to(tokens.dtype).to(to).gather(1, vis_idx[..., None].expand(-1, -1, H))
        return torch.where(in_image[..., None], vis, text), position_ids.to(to, non_blocking=True).gather(1, pos_src)

    def expand_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The [B, L] attention mask stretched over the spliced sequence (image span = 1)."""
        in_image, _, text_src, _ = self._splice_plan(input_ids)
        return torch.where(in_image, torch.ones_like(text_src), attention_mask.to(text_src.device).gather(1, text_src))

    # -- decoder --------------------------------------------------------------------------------
    def forward_embeds(self, embeds: torch.Tensor, positions: torch.Tensor, attn: AttentionBackend,
                       trace: dict | None = None) -> torch.Tensor:
        """Decoder over [B, T, H] embeddings at rotary ``positions`` [B, T]; K/V and masking are the
        backend's business. Returns hidden states after the final RMSNorm."""
        cos_sin = self.transformer.rotary(positions, embeds.dtype)
        return self.transformer.encoder(embeds, cos_sin, attn, trace=trace)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.transformer.output_layer(hidden)

    def new_cache(self, key_padding_mask: torch.Tensor | None = None) -> DynamicKVCache:
        return DynamicKVCache(self.config.num_layers, key_padding_mask)

    def prefill(self, input_ids, pixel_values=None, attention_mask=None, position_ids=None,
                trace: dict | None = None):
        """Whole-prompt pass. Returns (hidden [B, L', H], positions [B, L'], cache).

        Left padding: give ``attention_mask`` (0 on pads). Without ``position_ids`` they are
        derived from the mask the way the official tokenizer makes them (0 on pads, 0..n-1 on
        the real tokens), which is 0..L-1 when there is no padding."""
        if attention_mask is not None:
            attention_mask = attention_mask.to(input_ids.device)
            if attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask {list(attention_mask.shape)} != input_ids {list(input_ids.shape)}")
            if position_ids is None:
                position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        vision_embeds = None
        if pixel_values is not None:
            vision_embeds = self.encode_images(pixel_values, trace=trace)
            if trace is not None:
                trace["vision_embeds"] = vision_embeds.detach()
        elif bool((input_ids == self.config.boi_token_id).any()):
            raise ValueError("input_ids contain <|begin_of_image|> but no pixel_values were given")
        embeds, positions = self.embed(input_ids, vision_embeds, position_ids)
        mask = None
        if attention_mask is not None:
            mask = attention_mask if vision_embeds is None else self.expand_mask(input_ids, attention_mask)
        if trace is not None:
            trace["inputs_embeds_merged"] = embeds.detach()
            trace["position_ids"] = positions
            trace["attention_mask"] = mask
        cache = self.new_cache(mask)
        return self.forward_embeds(embeds, positions, cache, trace=trace), positions, cache

    def forward(self, input_ids, pixel_values=None, attention_mask=None, position_ids=None,
                trace: dict | None = None) -> torch.Tensor:
        """Logits at every position of the (spliced) sequence, [B, L', V]."""
        hidden, _, _ = self.prefill(input_ids, pixel_values, attention_mask, position_ids, trace=trace)
        return self.logits(hidden)
