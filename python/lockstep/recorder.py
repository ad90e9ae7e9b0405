"""lockstep.Recorder: a plain PyTorch loop's steps in Lockstep's step log.

Per optimizer step: the sample ids, the generator states as the step began (torch's CPU and
CUDA generators, Python's `random`, NumPy's global generator), the loss, lr and gradient norm
with their float32 bits. Full states every `rng_full_state_every` steps (and step 1); their
128-bit digests otherwise, as the C++ trainer does.

In a torch.distributed job (DDP under torchrun, FSDP, accelerate) every rank makes a Recorder
and records its own steps: each rank's sample ids and generator states are gathered to rank
0 through the job's process group, whose one log holds them all (`batches_other_ranks`,
`rng_other_ranks`), as the reference trainer's does. The other ranks write nothing.
"""
from __future__ import annotations

import array
import base64
import ctypes
import math
import os
import random
import struct
from collections.abc import Iterable, Mapping
from typing import Any, SupportsFloat, SupportsInt, TypedDict, TypeVar

import torch
import torch.distributed as dist

from lockstep.steplog import StepLogWriter, float_bits, read_frames, xxh3_128_hex

try:
    import numpy
except ImportError:  # NumPy's generator is recorded when NumPy is there
    numpy = None  # type: ignore[assignment]  # used only where it is not None

STEP_LOG_FILE = "steps.jsonl.zst"

_R = TypeVar("_R", bound="Recorder")


class _GeneratorDigest(TypedDict):
    size: int
    xxh3_128: str


class GeneratorState(_GeneratorDigest, total=False):
    """A generator's state in a step record: its size and digest, and on full-state steps the
    state itself, base64-encoded."""

    base64: str


class _StepRecordFields(TypedDict):
    step: int
    batches: list[list[int]]
    rng: dict[str, GeneratorState]  # "cpu", "python", and "cuda", "numpy" where there
    loss: float | None  # NaN and infinities are null; the bits keep them
    loss_bits: str
    lr: float | None
    grad_norm: float | None
    grad_norm_bits: str


class StepRecord(_StepRecordFields, total=False):
    """The record Recorder.end_step() writes for one optimizer step ("kind": "step" is added by
    the writer)."""

    epoch: float | None


def _python_state() -> bytes:
    """Python's `random` state as bytes: version, the 625 words, and the Gaussian cache."""
    version, words, gauss = random.getstate()
    return (struct.pack("<i", version) + array.array("I", words).tobytes() +
            struct.pack("<d", gauss if gauss is not None else float("nan")))


def _numpy_state() -> bytes:
    state = numpy.random.get_state(legacy=False)  # the global RandomState: key, pos, Gaussian cache
    mt = state["state"]
    key: bytes = mt["key"].astype("<u4").tobytes()
    return b"MT19937" + key + struct.pack("<iid", mt["pos"], state["has_gauss"], state["gauss"])


class _NumpyState:
    """_numpy_state(), fast when NumPy's generator has not moved. get_state() costs about 30 us
    (it builds a dict around a copy of the key); the bit generator's MT19937 words and position
    are read through its ctypes address in about one, and the state is rebuilt only when they
    changed. The Gaussian cache can only change with them (a draw consumes words), unless
    set_state() puts back the same words with another cache."""

    _WORDS = 624 * 4 + 4  # numpy's mt19937_state: uint32 key[624], int pos

    def __init__(self) -> None:
        bit_generator = getattr(numpy.random.mtrand._rand, "_bit_generator", None)
        self._address: int | None = getattr(getattr(bit_generator, "ctypes", None), "state_address", None)
        self._words: bytes | None = None
        self._state = b""  # read whenever _words is None, so never returned as it is

    def __call__(self) -> bytes:
        if self._address is None:
            return _numpy_state()
        words = ctypes.string_at(self._address, self._WORDS)
        if words != self._words:
            self._words, self._state = words, _numpy_state()
        return self._state


def _state(raw: bytes, full: bool) -> GeneratorState:
    """A generator state as the record holds it: its digest, and every `full` step the state."""
    state: GeneratorState = {"size": len(raw), "xxh3_128": xxh3_128_hex(raw)}
    if full:
        state["base64"] = base64.b64encode(raw).decode()
    return state


def _json_float(value: float) -> float | None:
    """As nlohmann::json writes a double: NaN and infinities are null."""
    return value if math.isfinite(value) else None


def _f32(value: SupportsFloat) -> float:
    rounded: float = struct.unpack("<f", struct.pack("<f", float(value)))[0]
    return rounded


def _job() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed job this process belongs to; (0, 1) alone."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class Recorder:
    def __init__(self, run_dir: str | os.PathLike[str], settings: Mapping[str, object] | None = None,
                 rng_full_state_every: int = 100, records_per_frame: int = 16, start_after: int = 0,
                 dataset_size: SupportsInt | None = None, grad_norm_measured: str | None = None) -> None:
        """Starts run_dir/steps.jsonl.zst (refusing an existing log), its header holding
        `settings` (a dict of whatever decides your run) under "training_args". `start_after`
        is for a run resumed from step N into a directory with no log: its first record is
        step N + 1, after a "resume" event. `dataset_size`, the number of training samples,
        lets `lockstep inspect` say which ids an epoch never drew. `grad_norm_measured` says
        what the grad_norm you pass is ("before clipping", "after clipping"): `lockstep
        report` labels its chart by it."""
        if rng_full_state_every < 1:
            raise ValueError("rng_full_state_every must be >= 1")
        self._rank, self._world = _job()
        self._numpy_state = _NumpyState() if numpy is not None else None
        self._every = rng_full_state_every
        self._last_step = start_after
        self._rng: dict[str, GeneratorState] | None = None
        self._log: StepLogWriter | None = None
        if self._rank != 0:
            return  # rank 0 writes the job's one log
        os.makedirs(run_dir, exist_ok=True)
        header: dict[str, object] = {
            "recorder": "lockstep.Recorder (python)", "torch_version": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "training_args": dict(settings or {}), "rng_full_state_every": rng_full_state_every}
        if start_after:
            header["resumed_from_step"] = start_after
        if dataset_size is not None:
            header["dataset"] = {"train_samples": int(dataset_size)}  # the C++ trainer's key
        if grad_norm_measured is not None:
            header["grad_norm_measured"] = str(grad_norm_measured)
        if self._world > 1:
            header["distributed"] = {"world_size": self._world, "backend": str(dist.get_backend())}
        path = os.path.join(run_dir, STEP_LOG_FILE)
        if os.path.exists(path):
            raise FileExistsError(path + " exists: choose another run_dir")
        self._log = StepLogWriter(path, header, records_per_frame=records_per_frame)
        if start_after:
            self._log.append_event("resume", {"after_step": start_after})

    @classmethod
    def resume(cls: type[_R], run_dir: str | os.PathLike[str], step: int, rng_full_state_every: int = 100,
               records_per_frame: int = 16) -> _R:
        """Continues run_dir's log after its record of `step`, for a run resumed from a
        checkpoint saved at `step`: records a killed run wrote past it are cut off, and a
        "resume" event marks the place (with the world size, where the job resuming has
        another size than the log's header says). Call flush() when you checkpoint, so the
        cut falls on a frame boundary. In a job, every rank calls it; rank 0 continues the log."""
        self = cls.__new__(cls)
        self._rank, self._world = _job()
        self._numpy_state = _NumpyState() if numpy is not None else None
        self._every, self._last_step, self._rng, self._log = rng_full_state_every, step, None, None
        if self._rank != 0:
            return self
        path = os.path.join(run_dir, STEP_LOG_FILE)
        frames = read_frames(path)
        if not frames:
            raise ValueError(path + ": no header frame")
        keep = frames[0][1]
        again: list[dict[str, Any]] = []
        if step > 0:
            at = [f for f in frames[1:] if any(r.get("kind") == "step" and r.get("step") == step for r in f[2])]
            if not at:
                raise LookupError("%s: no record of step %d to resume after" % (path, step))
            keep = at[0][0]
            for r in at[0][2]:
                again.append(r)
                if r.get("kind") == "step" and r.get("step") == step:
                    break
        # The size of the job that wrote the kept records: the header's, or the last resume's
        # before the cut that changed it.
        saved_world = int(frames[0][2][0].get("distributed", {}).get("world_size", 1)) if frames[0][2] else 1
        kept = [r for f in frames[1:] if f[1] <= keep for r in f[2]] + again
        for r in kept:
            if r.get("kind") == "resume" and isinstance(r.get("world_size"), dict):
                saved_world = int(r["world_size"].get("to", saved_world))
        self._log = StepLogWriter.open_for_append(path, keep, records_per_frame=records_per_frame)
        for r in again:
            kind = r.pop("kind", "step")
            if kind == "step":
                self._log.append(r)
            else:
                self._log.append_event(kind, r)
        event: dict[str, object] = {"after_step": step}
        if saved_world != self._world:
            event["world_size"] = {"from": saved_world, "to": self._world}
        self._log.append_event("resume", event)
        return self

    def begin_step(self) -> None:
        """Captures the generator states as the step begins: call it before the step's first
        random draw (dropout, shuffling, augmentation)."""
        step = self._last_step + 1
        full = step == 1 or (step - 1) % self._every == 0
        rng: dict[str, GeneratorState] = {"cpu": _state(torch.get_rng_state().numpy().tobytes(), full),
                                          "python": _state(_python_state(), full)}
        if torch.cuda.is_available():
            rng["cuda"] = _state(torch.cuda.get_rng_state().numpy().tobytes(), full)
        if self._numpy_state is not None:
            rng["numpy"] = _state(self._numpy_state(), full)
        self._rng = rng

    def end_step(self, step: int, batches: Iterable[Iterable[SupportsInt]], loss: SupportsFloat, lr: SupportsFloat,
                 grad_norm: SupportsFloat, epoch: SupportsFloat | None = None) -> None:
        """Records optimizer step `step` (1, 2, ...): `batches` is the sample ids of each
        micro-batch of the step, in order (this rank's, in a job). `epoch`, when given, is the
        Hugging Face Trainer's fractional epoch counted after the step: epoch index + the
        share of the epoch's batches consumed so far (0.25 after its first quarter, 1.0 after
        its last step), which `lockstep inspect` reads to split the sample coverage by epoch.
        Without it, the coverage has no epochs to split by."""
        if self._rng is None:
            raise ValueError("step %d ended without begin_step()" % step)
        if step != self._last_step + 1:
            raise ValueError("step %d after step %d: steps are recorded in order, one each" % (step, self._last_step))
        loss32, grad_norm32 = _f32(loss), _f32(grad_norm)
        record: StepRecord = {"step": step, "batches": [[int(i) for i in b] for b in batches], "rng": self._rng,
                              "loss": _json_float(loss32), "loss_bits": float_bits(loss32),
                              "lr": _json_float(float(lr)), "grad_norm": _json_float(grad_norm32),
                              "grad_norm_bits": float_bits(grad_norm32)}
        if epoch is not None:
            record["epoch"] = _json_float(float(epoch))
        self._rng = None
        self._last_step = step
        if self._world > 1:  # every rank's part, in rank order, to rank 0's record
            parts: list[Any] = [None] * self._world if self._rank == 0 else []
            dist.gather_object((record["batches"], record["rng"]), parts if self._rank == 0 else None, dst=0)
            if self._rank != 0:
                return
            record["batches_other_ranks"] = [p[0] for p in parts[1:]]  # type: ignore[typeddict-unknown-key]
            record["rng_other_ranks"] = [p[1] for p in parts[1:]]  # type: ignore[typeddict-unknown-key]
        assert self._log is not None
        self._log.append(record, plain=True)  # built of JSON values only: dumped as it is

    def event(self, kind: str, body: Mapping[str, object]) -> None:
        """Notes something about the run between steps ("note", "resume", ...): `lockstep
        inspect` shows events, `lockstep diff` compares steps. Rank 0's are kept."""
        if self._log is not None:
            self._log.append_event(kind, dict(body))

    def flush(self) -> None:
        """Writes every recorded step and fsyncs: call it when you save a checkpoint."""
        if self._log is not None:
            self._log.flush(sync=True)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
