"""Which GLM-4V-9B weights become NF4 by default.

Quantized: every linear weight — vision attention `query_key_value`, `dense`, MLP `fc1`, `fc2`;
projector `linear_proj`, `gate_proj`, `dense_h_to_4h`, `dense_4h_to_h`; decoder `query_key_value`,
`dense`, `dense_h_to_4h`, `dense_4h_to_h`; and `output_layer`.
Kept in the compute dtype: embeddings, convolutions, norms, biases, boi/eoi, cls/position tables.

`keep_16bit` patterns name modules the user keeps in 16-bit. A pattern is an fnmatch glob over the dotted
module path that may also match a run of whole path components anywhere: "output_layer",
"vision", "mlp.fc1", "encoder.layers.3?.*" and the full "transformer.output_layer" all work;
"fc" does not match "fc1" (write "fc*").
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from fnmatch import fnmatchcase

_QUANTIZED = re.compile(
    r"(?:^|\.)(?:"
    r"vision\.transformer\.layers\.\d+\.(?:attention\.(?:query_key_value|dense)|mlp\.(?:fc1|fc2))"
    r"|vision\.linear_proj\.(?:linear_proj|gate_proj|dense_h_to_4h|dense_4h_to_h)"
    r"|encoder\.layers\.\d+\.(?:self_attention\.(?:query_key_value|dense)|mlp\.(?:dense_h_to_4h|dense_4h_to_h))"
    r"|output_layer"
    r")\.weight$"
)


def module_path(param_name: str) -> str:
    return param_name[: -len(".weight")] if param_name.endswith(".weight") else param_name


def pattern_matches(pattern: str, path: str) -> bool:
    return any(
        fnmatchcase(path, p) for p in (pattern, f"*.{pattern}", f"{pattern}.*", f"*.{pattern}.*")
    )


def should_quantize(param_name: str, keep_16bit: Iterable[str] = ()) -> bool:
    """True when `param_name` (official name, e.g. "transformer.encoder.layers.0.mlp.dense_h_to_4h.weight")
    is a linear weight of the default NF4 policy and no keep_16bit pattern names its module."""
    if not _QUANTIZED.search(param_name):
        return False
    path = module_path(param_name)
    return not any(pattern_matches(p, path) for p in keep_16bit)


def unmatched_patterns(param_names: Iterable[str], keep_16bit: Iterable[str]) -> list[str]:
    """keep_16bit patterns that name no quantizable weight (a typo would otherwise be silently ignored)."""
    paths = [module_path(n) for n in param_names if _QUANTIZED.search(n)]
    return [p for p in keep_16bit if not any(pattern_matches(p, path) for path in paths)]
