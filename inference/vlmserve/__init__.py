"""vlmserve: our own PyTorch GLM-4V-9B inference server (model, NF4, OpenAI-compatible HTTP API)."""

__version__ = "0.1.0"
