"""Continuous-batching engine for GLM-4V: request queue, shared image prefixes, slot KV cache,
CUDA-graph decode. `Engine` runs on its own thread; `submit` is the asyncio side."""
from .engine import ContextTooLong, Engine
from .stream import submit
from .types import EngineConfig, GenerationRequest, Output, Overloaded

__all__ = ["ContextTooLong", "Engine", "EngineConfig", "GenerationRequest", "Output", "Overloaded", "submit"]
