"""Two CUDA streams, so that decode steps run while a prefill round is on the GPU.

A prefill round (the vision tower and the decoder over a few new image prompts) is compute-bound and takes most
of a second; a decode step reads every weight for one token per running row and is memory-bound. One after the
other, every running sequence waits for the whole round. Here the round is queued on its own stream and the decode
steps go on beside it on a high-priority stream, whose kernels take multiprocessors as the round's blocks finish.
bench/overlap_check.py measured the pair on an H100 (decode steps replayed beside a four-image round).

Off CUDA there is one stream: the round has run when `launch` returns, and `done` says so at once.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch

# Lower numbers run first. The decode step's CUDA graphs are captured at this priority too: a captured kernel keeps
# the priority of its capture stream.
DECODE_PRIORITY = -1


class Overlap:
    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        if self.cuda:
            self.prefill_stream = torch.cuda.Stream(device)
            self.decode_stream = torch.cuda.Stream(device, priority=DECODE_PRIORITY)
        self._done: torch.cuda.Event | None = None

    @contextmanager
    def prefill(self):
        """Work queued inside goes on the prefill stream, after everything queued so far on the current one."""
        if not self.cuda:
            yield
            return
        self.prefill_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.prefill_stream):
            yield
            self._done = torch.cuda.Event()
            self._done.record()

    def done(self) -> bool:
        """Whether the GPU has finished the work queued by the last `prefill` block (no waiting)."""
        return self._done is None or self._done.query()

    @contextmanager
    def decode(self):
        """Work queued inside goes on the decode stream, after everything queued so far on the current one."""
        if not self.cuda:
            yield
            return
        self.decode_stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(self.decode_stream):
            yield

    def join(self) -> None:
        """Work queued on the current stream from now on runs after both streams' work."""
        if self.cuda:
            current = torch.cuda.current_stream()
            current.wait_stream(self.prefill_stream)
            current.wait_stream(self.decode_stream)
        self._done = None
