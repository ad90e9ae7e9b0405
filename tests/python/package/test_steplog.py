"""The step log writer: what it writes reads back frame by frame, values as the C++ writer
stores them (bytes as digests, NaN as null, NumPy scalars as numbers)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy
import pytest

import lockstep
from lockstep.steplog import StepLogWriter, dumps, read_frames


def test_version_is_the_one_source() -> None:
    here = os.path.join(os.path.dirname(lockstep.__file__), "VERSION")
    with open(here) as f:
        assert lockstep.__version__ == f.read().strip()


def test_records_read_back_in_frames(tmp_path: Path) -> None:
    path = str(tmp_path / "steps.jsonl.zst")
    log = StepLogWriter(path, {"kind": "header", "note": "ünïcode"}, records_per_frame=2)
    for step in range(1, 6):
        log.append({"kind": "step", "step": step, "loss": 0.5 * step})
    log.close()
    frames = read_frames(path)
    steps = [r["step"] for f in frames[1:] for r in f[2] if r.get("kind") == "step"]
    assert steps == [1, 2, 3, 4, 5]
    assert frames[0][2][0]["note"] == "ünïcode"


def test_values_are_stored_as_the_cxx_writer_stores_them() -> None:
    assert dumps({"b": b"\x00\x01", "n": float("nan"), "i": numpy.int64(3), "f": numpy.float32(0.5),
                  "a": numpy.array([1, 2])}) == \
        '{"a":[1,2],"b":{"size":2,"xxh3_128":"%s"},"f":0.5,"i":3,"n":null}' % lockstep.steplog.xxh3_128_hex(b"\x00\x01")
    assert math.isnan(float("nan"))


def test_an_existing_log_is_never_overwritten(tmp_path: Path) -> None:
    path = str(tmp_path / "steps.jsonl.zst")
    StepLogWriter(path, {"kind": "header"}).close()
    with pytest.raises(FileExistsError):
        StepLogWriter(path, {"kind": "header"})
