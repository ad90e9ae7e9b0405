"""lockstep.Recorder: a plain PyTorch loop's steps in Lockstep's step log.

Per optimizer step: the sample ids, the generator states as the step began (torch's CPU and
CUDA generators, Python's `random`, NumPy's global generator), the loss, lr and gradient norm
with their float32 bits. Full states every `rng_full_state_every` steps (and step 1); their
128-bit digests otherwise, as the C++ trainer does.
"""
import array
import base64
import ctypes
import math
import os
import random
import struct

import torch

from lockstep.steplog import StepLogWriter, float_bits, read_frames, xxh3_128_hex

try:
    import numpy
except ImportError:  # NumPy's generator is recorded when NumPy is there
    numpy = None

STEP_LOG_FILE = "steps.jsonl.zst"


def _python_state():
    """Python's `random` state as bytes: version, the 625 words, and the Gaussian cache."""
    version, words, gauss = random.getstate()
    return (struct.pack("<i", version) + array.array("I", words).tobytes() +
            struct.pack("<d", gauss if gauss is not None else float("nan")))


def _numpy_state():
    state = numpy.random.get_state(legacy=False)  # the global RandomState: key, pos, Gaussian cache
    mt = state["state"]
    return (b"MT19937" + mt["key"].astype("<u4").tobytes() +
            struct.pack("<iid", mt["pos"], state["has_gauss"], state["gauss"]))


class _NumpyState:
    """_numpy_state(), fast when NumPy's generator has not moved. get_state() costs about 30 us
    (it builds a dict around a copy of the key); the bit generator's MT19937 words and position
    are read through its ctypes address in about one, and the state is rebuilt only when they
    changed. The Gaussian cache can only change with them (a draw consumes words), unless
    set_state() puts back the same words with another cache."""

    _WORDS = 624 * 4 + 4  # numpy's mt19937_state: uint32 key[624], int pos

    def __init__(self):
        bit_generator = getattr(numpy.random.mtrand._rand, "_bit_generator", None)
        self._address = getattr(getattr(bit_generator, "ctypes", None), "state_address", None)
        self._words, self._state = None, None

    def __call__(self):
        if self._address is None:
            return _numpy_state()
        words = ctypes.string_at(self._address, self._WORDS)
        if words != self._words:
            self._words, self._state = words, _numpy_state()
        return self._state


def _state(raw, full):
    """A generator state as the record holds it: its digest, and every `full` step the state."""
    state = {"size": len(raw), "xxh3_128": xxh3_128_hex(raw)}
    if full:
        state["base64"] = base64.b64encode(raw).decode()
    return state


def _json_float(value):
    """As nlohmann::json writes a double: NaN and infinities are null."""
    return value if math.isfinite(value) else None


def _f32(value):
    return struct.unpack("<f", struct.pack("<f", float(value)))[0]


class Recorder:
    def __init__(self, run_dir, settings=None, rng_full_state_every=100, records_per_frame=16, start_after=0,
                 dataset_size=None, grad_norm_measured=None):
        """Starts run_dir/steps.jsonl.zst (refusing an existing log), its header holding
        `settings` (a dict of whatever decides your run) under "training_args". `start_after`
        is for a run resumed from step N into a directory with no log: its first record is
        step N + 1, after a "resume" event. `dataset_size`, the number of training samples,
        lets `lockstep inspect` say which ids an epoch never drew. `grad_norm_measured` says
        what the grad_norm you pass is ("before clipping", "after clipping"): `lockstep
        report` labels its chart by it."""
        if rng_full_state_every < 1:
            raise ValueError("rng_full_state_every must be >= 1")
        os.makedirs(run_dir, exist_ok=True)
        header = {"recorder": "lockstep.Recorder (python)", "torch_version": torch.__version__,
                  "device": "cuda" if torch.cuda.is_available() else "cpu",
                  "training_args": dict(settings or {}), "rng_full_state_every": rng_full_state_every}
        if start_after:
            header["resumed_from_step"] = start_after
        if dataset_size is not None:
            header["dataset"] = {"train_samples": int(dataset_size)}  # the C++ trainer's key
        if grad_norm_measured is not None:
            header["grad_norm_measured"] = str(grad_norm_measured)
        path = os.path.join(run_dir, STEP_LOG_FILE)
        if os.path.exists(path):
            raise FileExistsError(path + " exists: choose another run_dir")
        self._log = StepLogWriter(path, header, records_per_frame=records_per_frame)
        self._numpy_state = _NumpyState() if numpy is not None else None
        self._every = rng_full_state_every
        self._last_step = start_after
        self._rng = None
        if start_after:
            self._log.append_event("resume", {"after_step": start_after})

    @classmethod
    def resume(cls, run_dir, step, rng_full_state_every=100, records_per_frame=16):
        """Continues run_dir's log after its record of `step`, for a run resumed from a
        checkpoint saved at `step`: records a killed run wrote past it are cut off, and a
        "resume" event marks the place. Call flush() when you checkpoint, so the cut falls
        on a frame boundary."""
        path = os.path.join(run_dir, STEP_LOG_FILE)
        frames = read_frames(path)
        if not frames:
            raise ValueError(path + ": no header frame")
        keep, again = frames[0][1], []
        if step > 0:
            at = [f for f in frames[1:] if any(r.get("kind") == "step" and r.get("step") == step for r in f[2])]
            if not at:
                raise LookupError("%s: no record of step %d to resume after" % (path, step))
            keep = at[0][0]
            for r in at[0][2]:
                again.append(r)
                if r.get("kind") == "step" and r.get("step") == step:
                    break
        self = cls.__new__(cls)
        self._log = StepLogWriter.open_for_append(path, keep, records_per_frame=records_per_frame)
        self._numpy_state = _NumpyState() if numpy is not None else None
        for r in again:
            kind = r.pop("kind", "step")
            (self._log.append(r) if kind == "step" else self._log.append_event(kind, r))
        self._log.append_event("resume", {"after_step": step})
        self._every, self._last_step, self._rng = rng_full_state_every, step, None
        return self

    def begin_step(self):
        """Captures the generator states as the step begins: call it before the step's first
        random draw (dropout, shuffling, augmentation)."""
        step = self._last_step + 1
        full = step == 1 or (step - 1) % self._every == 0
        rng = {"cpu": _state(torch.get_rng_state().numpy().tobytes(), full),
               "python": _state(_python_state(), full)}
        if torch.cuda.is_available():
            rng["cuda"] = _state(torch.cuda.get_rng_state().numpy().tobytes(), full)
        if self._numpy_state is not None:
            rng["numpy"] = _state(self._numpy_state(), full)
        self._rng = rng

    def end_step(self, step, batches, loss, lr, grad_norm, epoch=None):
        """Records optimizer step `step` (1, 2, ...): `batches` is the sample ids of each
        micro-batch of the step, in order."""
        if self._rng is None:
            raise ValueError("step %d ended without begin_step()" % step)
        if step != self._last_step + 1:
            raise ValueError("step %d after step %d: steps are recorded in order, one each" % (step, self._last_step))
        loss, grad_norm = _f32(loss), _f32(grad_norm)
        record = {"step": step, "batches": [[int(i) for i in b] for b in batches], "rng": self._rng,
                  "loss": _json_float(loss), "loss_bits": float_bits(loss), "lr": _json_float(float(lr)),
                  "grad_norm": _json_float(grad_norm), "grad_norm_bits": float_bits(grad_norm)}
        if epoch is not None:
            record["epoch"] = _json_float(float(epoch))
        self._rng = None
        self._last_step = step
        self._log.append(record, plain=True)  # built of JSON values only: dumped as it is

    def event(self, kind, body):
        """Notes something about the run between steps ("note", "resume", ...): `lockstep
        inspect` shows events, `lockstep diff` compares steps."""
        self._log.append_event(kind, dict(body))

    def flush(self):
        """Writes every recorded step and fsyncs: call it when you save a checkpoint."""
        self._log.flush(sync=True)

    def close(self):
        self._log.close()
