"""GLM-4V-9B configuration, read from the official ``config.json`` keys.

Only the variant of ChatGLM that GLM-4V-9B uses is implemented; a config asking for another
variant (LayerNorm instead of RMSNorm, split-half rotary, ...) is rejected rather than run wrong.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

# Rotary tables are built for at least this many positions: the model card states an 8K
# context while the published config.json says seq_length 2048; the larger of the two is safe.
MIN_ROTARY_POSITIONS = 8192


_VISION_REQUIRED = ("image_size", "patch_size", "num_positions", "hidden_size", "num_hidden_layers", "num_heads",
                    "intermediate_size")
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string"}


@dataclass(frozen=True)
class VisionConfig:
    image_size: int = 1120
    patch_size: int = 14
    num_positions: int = 6401
    hidden_size: int = 1792
    num_hidden_layers: int = 63
    num_heads: int = 16
    intermediate_size: int = 15360
    layer_norm_eps: float = 1e-6
    in_channels: int = 3
    scaling_factor: float = 8.0
    hidden_act: str = "gelu"

    @classmethod
    def from_json(cls, v: dict) -> "VisionConfig":
        """From config.json's vision_config: the shape keys are required, the rest default to GLM-4V-9B's."""
        if not isinstance(v, dict):
            raise ValueError("config.json: 'vision_config' is not an object")
        if v.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"vision_config.hidden_act={v['hidden_act']!r} is not supported (expected 'gelu')")
        values = {}
        for f in fields(cls):
            if f.name not in v:
                if f.name in _VISION_REQUIRED:
                    raise ValueError(f"config.json: vision_config has no {f.name!r}")
                continue
            kind = type(f.default)   # every field has GLM-4V-9B's value as default: int, float or str
            try:
                values[f.name] = kind(v[f.name])
            except (TypeError, ValueError):
                raise ValueError(f"config.json: vision_config.{f.name}={v[f.name]!r} is not {_KIND_NAMES[kind]}") from None
            if kind is int and values[f.name] < 1:   # every count and size; a negative patch would pass the grid checks
                raise ValueError(f"config.json: vision_config.{f.name}={v[f.name]!r} must be at least 1")
        return cls(**values)

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def n_image_tokens(self) -> int:
        """Image tokens after the 2x2 stride-2 downsample (1600 for the real model)."""
        return (self.grid // 2) ** 2


@dataclass(frozen=True)
class ModelConfig:
    hidden_size: int = 4096
    num_layers: int = 40
    num_attention_heads: int = 32
    kv_channels: int = 128
    multi_query_group_num: int = 2
    ffn_hidden_size: int = 13696
    padded_vocab_size: int = 151552
    seq_length: int = 2048
    layernorm_epsilon: float = 1.5625e-07
    add_qkv_bias: bool = True
    rope_ratio: float = 1.0
    eos_token_ids: tuple[int, ...] = (151329, 151336, 151338)
    pad_token_id: int = 151329
    boi_token_id: int = 151339
    eoi_token_id: int = 151340
    torch_dtype: str = "bfloat16"
    vision: VisionConfig = field(default_factory=VisionConfig)

    @property
    def n_kv_heads(self) -> int:
        return self.multi_query_group_num

    @property
    def head_dim(self) -> int:
        return self.kv_channels

    @property
    def rotary_positions(self) -> int:
        return max(self.seq_length, MIN_ROTARY_POSITIONS)

    @property
    def n_vision_embeds(self) -> int:
        """Vectors the vision tower returns per image: boi + image tokens + eoi."""
        return self.vision.n_image_tokens + 2

    @classmethod
    def from_json(cls, cfg: dict) -> "ModelConfig":
        def need(key):
            if key not in cfg:
                raise ValueError(f"config.json: missing key {key!r}")
            return cfg[key]

        unsupported = {
            "rmsnorm": True, "post_layer_norm": True, "original_rope": True,
            "add_bias_linear": False, "apply_residual_connection_post_layernorm": False,
        }
        for key, wanted in unsupported.items():
            if key in cfg and bool(cfg[key]) != wanted:
                raise ValueError(f"config.json: {key}={cfg[key]!r} is not supported (GLM-4V-9B uses {wanted})")
        if "vision_config" not in cfg:
            raise ValueError("config.json: no 'vision_config'; this is not a GLM-4V checkpoint")
        vision = VisionConfig.from_json(cfg["vision_config"])
        if vision.grid ** 2 + 1 != vision.num_positions:
            raise ValueError(
                f"vision_config: num_positions {vision.num_positions} != (image_size/patch_size)^2 + 1")
        if vision.grid % 2:
            raise ValueError("vision_config: the patch grid must be even for the 2x2 downsample")
        heads = int(need("num_attention_heads"))
        multi_query = bool(cfg.get("multi_query_attention", False))
        groups = int(cfg.get("multi_query_group_num", heads)) if multi_query else heads
        eos = need("eos_token_id")
        eos = tuple(eos) if isinstance(eos, list) else (int(eos),)
        out = cls(
            hidden_size=int(need("hidden_size")), num_layers=int(need("num_layers")),
            num_attention_heads=heads,
            kv_channels=int(cfg.get("kv_channels", int(cfg["hidden_size"]) // heads)),
            multi_query_group_num=groups, ffn_hidden_size=int(need("ffn_hidden_size")),
            padded_vocab_size=int(need("padded_vocab_size")), seq_length=int(cfg.get("seq_length", 2048)),
            layernorm_epsilon=float(cfg.get("layernorm_epsilon", 1e-5)),
            add_qkv_bias=bool(cfg.get("add_qkv_bias", False)),
            rope_ratio=float(cfg.get("rope_ratio") or 1.0),
            eos_token_ids=eos, pad_token_id=int(cfg.get("pad_token_id", eos[0])),
            boi_token_id=int(need("boi_token_id")), eoi_token_id=int(need("eoi_token_id")),
            torch_dtype=str(cfg.get("torch_dtype", "bfloat16")), vision=vision,
        )
        if heads % groups:
            raise ValueError(f"config.json: {heads} attention heads do not split into {groups} groups")
        return out

    @classmethod
    def from_dir(cls, path: str | Path) -> "ModelConfig":
        f = Path(path) / "config.json"
        if not f.is_file():
            raise FileNotFoundError(f"no config.json in {path}")
        return cls.from_json(json.loads(f.read_text()))

    def to_json(self) -> dict:
        """The official config.json layout (what make-tiny writes)."""
        v = asdict(self.vision)
        return {
            "model_type": "chatglm", "architectures": ["ChatGLMModel"],
            "vision_config": {**v, "dropout_prob": 0.0},
            "add_bias_linear": False, "add_qkv_bias": self.add_qkv_bias,
            "apply_query_key_layer_scaling": True, "apply_residual_connection_post_layernorm": False,
            "attention_dropout": 0.0, "attention_softmax_in_fp32": True, "hidden_dropout": 0.0,
            "ffn_hidden_size": self.ffn_hidden_size, "hidden_size": self.hidden_size,
            "kv_channels": self.kv_channels, "layernorm_epsilon": self.layernorm_epsilon,
            "multi_query_attention": True, "multi_query_group_num": self.multi_query_group_num,
            "num_attention_heads": self.num_attention_heads, "num_layers": self.num_layers,
            "original_rope": True, "padded_vocab_size": self.padded_vocab_size, "post_layer_norm": True,
            "rmsnorm": True, "seq_length": self.seq_length, "tie_word_embeddings": False,
            "torch_dtype": self.torch_dtype, "eos_token_id": list(self.eos_token_ids),
            "pad_token_id": self.pad_token_id, "boi_token_id": self.boi_token_id,
            "eoi_token_id": self.eoi_token_id,
        }


def glm4v_9b() -> ModelConfig:
    """The real GLM-4V-9B shapes (its published config.json), for building the model without a checkpoint."""
    return ModelConfig()
