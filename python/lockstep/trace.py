"""A module trace of one step of any torch.nn.Module, in Lockstep's module-trace format
(formats/doc/module_trace_format.md), so `lockstep diff a.json b.json` names the first module
where two of your runs part (fp32 against bf16 autocast, 1 thread against 2, two machines):

    with lockstep.trace(model, "trace_a.json", step=global_step):
        for batch in window:                  # every micro-batch of the step
            model(**batch).loss.backward()

Forward hooks record each module's output as it completes (children before their parent, as
they finish), one micro-batch per call of the model itself; on leaving the block every
parameter's gradient is recorded, in parameter order, and the trace is written. Each tensor
is summarized as float32: its XXH3-128 digest (equal digests, equal bits), min, max, mean and
mean |x| as float32 bits, NaN and Inf counts, and 16 evenly spaced elements. A module whose
output holds several floating-point tensors (a tuple, a dict, a ModelOutput) gets one entry per
tensor: "h.0.attn[0]", "model.logits". Integer tensors are not traced."""
from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, TypedDict

import torch

from lockstep.steplog import xxh3_128_hex

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

KIND = "lockstep-module-trace"
FORMAT_VERSION = 1
SAMPLES = 16
ROOT = "model"  # the name of the traced module itself


class TraceEntry(TypedDict):
    """One entry of a module trace (formats/doc/module_trace_format.md). Each float32 statistic
    is its bits ("0x3f800000"), null where it is not finite."""

    kind: str  # "forward" or "grad"
    name: str
    micro_batch: int  # -1 for a gradient
    shape: list[int]
    numel: int
    xxh3_128: str
    min: str | None
    max: str | None
    mean: str | None
    mean_abs: str | None
    nan: int
    inf: int
    sample: list[str]


def _bits(value: float) -> str:
    return "0x%08x" % struct.unpack("<I", struct.pack("<f", value))[0]


def _f32(value: float) -> str | None:
    return _bits(value) if math.isfinite(value) else None


def entry(kind: str, name: str, micro_batch: int, tensor: torch.Tensor) -> TraceEntry:
    """One trace entry for `tensor`, as formats/module_trace.h's ModuleTraceEntry makes it."""
    t = tensor.detach().to("cpu", torch.float32).contiguous()
    flat = t.reshape(-1)
    finite = flat[torch.isfinite(flat)].double()
    count = finite.numel()
    numel = flat.numel()
    samples = min(numel, SAMPLES)
    return {"kind": kind, "name": name, "micro_batch": micro_batch, "shape": list(t.shape), "numel": numel,
            "xxh3_128": xxh3_128_hex(flat.numpy().tobytes()),
            "min": _f32(finite.min().item() if count else math.inf),
            "max": _f32(finite.max().item() if count else -math.inf),
            "mean": _f32(finite.sum().item() / count if count else 0.0),
            "mean_abs": _f32(finite.abs().sum().item() / count if count else 0.0),
            "nan": int(torch.isnan(flat).sum()), "inf": int(torch.isinf(flat).sum()),
            "sample": [_bits(flat[k * numel // samples].item()) for k in range(samples)]}


def _tensors(name: str, output: object) -> Iterator[tuple[str, torch.Tensor]]:
    """The floating-point tensors of a module's output, each with its entry name."""
    if isinstance(output, torch.Tensor):
        if output.is_floating_point():
            yield name, output
    elif isinstance(output, dict):  # ModelOutput is a dict too
        for key, value in output.items():
            yield from _tensors("%s.%s" % (name, key), value)
    elif isinstance(output, (tuple, list)):
        parts = [(i, v) for i, v in enumerate(output) if v is not None]
        for i, value in parts:
            yield from _tensors(name if len(parts) == 1 else "%s[%d]" % (name, i), value)


class trace:  # noqa: N801 - used as `with lockstep.trace(...)`, like torch.no_grad
    """Traces `model` until the block ends, then writes the trace to `path` durably."""

    def __init__(self, model: torch.nn.Module, path: str | os.PathLike[str], step: int | None = None,
                 **context: object) -> None:
        self.model, self.path, self.step, self.context = model, os.fspath(path), step, context
        self.entries: list[TraceEntry] = []
        self.micro_batch = 0
        self._hooks: list[RemovableHandle] = []

    def _hook(self, name: str) -> Callable[[torch.nn.Module, tuple[object, ...], object], None]:
        def record(module: torch.nn.Module, inputs: tuple[object, ...], output: object) -> None:
            for entry_name, tensor in _tensors(name, output):
                self.entries.append(entry("forward", entry_name, self.micro_batch, tensor))
            if module is self.model:
                self.micro_batch += 1  # the model's own call ends a micro-batch
        return record

    def __enter__(self) -> trace:
        for name, module in self.model.named_modules():
            self._hooks.append(module.register_forward_hook(self._hook(name or ROOT)))
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for h in self._hooks:
            h.remove()
        self._hooks.clear()
        if kind is not None:
            return  # the step failed: no trace of half a step
        for name, p in self.model.named_parameters():
            if p.grad is not None:
                self.entries.append(entry("grad", name, -1, p.grad))
        self.write()

    def write(self) -> None:
        device = next((p.device.type for p in self.model.parameters()), "cpu")
        doc = {"kind": KIND, "format_version": FORMAT_VERSION, "step": self.step, "device": device,
               "num_threads": torch.get_num_threads(), "torch_version": torch.__version__, **self.context,
               "entries": self.entries}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
