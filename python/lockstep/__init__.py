"""Lockstep for PyTorch: record every optimizer step of your own training loop in Lockstep's
step log (steps.jsonl.zst), so `lockstep diff`, `lockstep inspect` and `lockstep verify-resume`
can say where two runs part and whether a resume was exact.

    import lockstep
    rec = lockstep.Recorder("runs/a", settings={"lr": 1e-3, "seed": 0})
    for step, (ids, x, y) in enumerate(batches, start=1):
        rec.begin_step()                       # before the step's first random draw
        loss = ...; loss.backward(); opt.step()
        rec.end_step(step, batches=[ids.tolist()], loss=loss.item(), lr=lr, grad_norm=norm)
        if step % 100 == 0: save(...); rec.flush()
    rec.close()

The file is byte for byte what the C++ writer writes for the same records
(formats/doc/step_log_format.md; tests/python/steplog_compat_test.cc proves it). Needs torch for the
recorder; the writer alone needs python3-zstandard and python3-xxhash.
"""
import os as _os

# The one source of the version, for C++ (CMakeLists.txt reads it) and Python alike.
with open(_os.path.join(_os.path.dirname(__file__), "VERSION")) as _f:
    __version__ = _f.read().strip()

from lockstep.recorder import Recorder  # noqa: E402
from lockstep.steplog import FORMAT_VERSION, MAGIC, StepLogWriter, float_bits  # noqa: E402
from lockstep.trace import trace  # noqa: E402

__all__ = ["Recorder", "trace", "StepLogWriter", "FORMAT_VERSION", "MAGIC", "float_bits", "__version__"]
