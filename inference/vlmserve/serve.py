"""`python -m vlmserve serve`: its flags, and starting the engine and the HTTP app under uvicorn."""
from __future__ import annotations

import argparse
import logging
import os

from .model_flags import add_model_flags, load_from_flags

log = logging.getLogger("vlmserve.server")


def add_serve_flags(p: argparse.ArgumentParser) -> None:
    add_model_flags(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", action="append", default=None,
                   help="name clients use in 'model' (repeatable; default: glm-4v-9b and the folder name)")
    p.add_argument("--allow-local-files", action="store_true", help="accept image_url as a local path or file:// URL")
    p.add_argument("--allow-http-images", action="store_true", help="fetch http(s) image URLs")
    p.add_argument("--max-image-bytes", type=int, default=20 * 1024 * 1024)
    p.add_argument("--max-image-pixels", type=int, default=64_000_000,
                   help="pixels an image may have once decoded (JPEGs far larger than the model's input are decoded at reduced size)")
    p.add_argument("--max-body-bytes", type=int, default=None,
                   help="request body limit (default: room for one image of --max-image-bytes as base64, plus 4 MiB)")
    p.add_argument("--read-timeout", type=float, default=30.0,
                   help="seconds a client may take to send a request's headers, and again its body")
    p.add_argument("--prep-workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="threads that decode images and tokenize (bounds that work; the event loop never does it)")
    p.add_argument("--max-connections", type=int, default=1024, help="open connections before new ones get 503")
    p.add_argument("--api-key", default=os.environ.get("VLMSERVE_API_KEY") or None,
                   help="require 'Authorization: Bearer KEY' on every route but /health (default: $VLMSERVE_API_KEY; "
                        "the environment keeps it out of the process list)")
    p.add_argument("--enable-docs", action="store_true", help="serve FastAPI's /docs, /redoc and /openapi.json")
    p.add_argument("--max-batch", type=int, default=64, help="sequence slots (concurrent sequences)")
    p.add_argument("--kv-budget-tokens", type=int, default=None,
                   help="KV cache size in tokens (default on GPU: what vlmserve.engine.memory_plan leaves after the "
                        "weights, activations and caches; on CPU: max-batch x context)")
    p.add_argument("--max-model-len", type=int, default=None, help="context length per sequence, image included")
    p.add_argument("--max-waiting", type=int, default=None, help="requests allowed to wait before 429")
    p.add_argument("--no-prefix-cache", action="store_true", help="compute every image and prefix anew")
    p.add_argument("--no-cuda-graphs", action="store_true")
    p.add_argument("--log-level", default="info")


def served_names(args, model_dir) -> list[str]:
    if args.served_model_name:
        return args.served_model_name
    return list(dict.fromkeys(["glm-4v-9b", args.model if args.model == "tiny-random" else model_dir.name]))


def http_limits(args: argparse.Namespace):
    from .http_app import HttpLimits
    from .http_guard import is_loopback

    for name in ("max_image_bytes", "max_image_pixels", "prep_workers", "max_connections"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if args.read_timeout <= 0:
        raise ValueError("--read-timeout must be positive")
    body = args.max_body_bytes or (args.max_image_bytes * 4 // 3 + 4 * 2**20)
    return HttpLimits(max_body_bytes=body, read_timeout_s=args.read_timeout, prep_workers=args.prep_workers,
                      api_key=args.api_key, loopback_only=is_loopback(args.host), docs=args.enable_docs)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from .engine import Engine, EngineConfig
    from .http_app import build_app
    from .images_in import ImagePolicy
    from .read_timeout import with_header_timeout

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    limits = http_limits(args)      # bad flags fail before the model loads
    loaded = load_from_flags(args)
    names = served_names(args, loaded.model_dir)
    config = EngineConfig(max_batch=args.max_batch, slot_len=args.max_model_len,
                          kv_budget_tokens=args.kv_budget_tokens, max_waiting=args.max_waiting,
                          prefix_cache=not args.no_prefix_cache, cuda_graphs=not args.no_cuda_graphs)
    engine = Engine(loaded.model, loaded.tokenizer, config)
    policy = ImagePolicy(allow_local_files=args.allow_local_files, allow_http=args.allow_http_images,
                         max_bytes=args.max_image_bytes, max_pixels=args.max_image_pixels,
                         target_size=engine.image_size)
    app = build_app(engine, loaded.tokenizer, names, policy, limits)
    if not limits.loopback_only and not limits.api_key:
        log.warning("listening on %s without an API key: anyone who can reach this address can use the server "
                    "(set VLMSERVE_API_KEY, or keep it on 127.0.0.1 behind a proxy)", args.host or "all interfaces")
    log.info("serving %s on http://%s:%d (models: %s)", loaded.model_dir, args.host, args.port, names)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                http=with_header_timeout(args.read_timeout), limit_concurrency=args.max_connections)
    return 0
