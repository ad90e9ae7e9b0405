"""lockstep.Recorder on a plain loop: a record per step with the generators' states, NumPy
settings, the dataset size the coverage audit needs, and a resume cut after its step."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy
import torch

import lockstep
from lockstep.steplog import read_frames


def records(path: str) -> list[dict[str, Any]]:
    return [r for f in read_frames(path)[1:] for r in f[2] if r.get("kind") == "step"]


def run(run_dir: str, steps: int, start: int = 0, recorder: lockstep.Recorder | None = None) -> None:
    rec = recorder or lockstep.Recorder(run_dir, settings={"seed": numpy.int64(0), "lr": numpy.float32(0.5)},
                                        dataset_size=16)
    for step in range(start + 1, steps + 1):
        rec.begin_step()
        ids = random.sample(range(16), 4)
        loss = torch.rand(()).item()
        rec.end_step(step, batches=[ids], loss=loss, lr=0.5, grad_norm=1.0, epoch=step / 4)
        if step % 2 == 0:
            rec.flush()
    rec.close()


def test_a_record_per_step_with_every_generator(tmp_path: Path) -> None:
    run(str(tmp_path / "a"), 4)
    frames = read_frames(str(tmp_path / "a" / "steps.jsonl.zst"))
    header = frames[0][2][0]
    assert header["training_args"] == {"seed": 0, "lr": 0.5}
    assert header["dataset"] == {"train_samples": 16}
    rs = records(str(tmp_path / "a" / "steps.jsonl.zst"))
    assert [r["step"] for r in rs] == [1, 2, 3, 4]
    assert {"cpu", "python", "numpy"} <= set(rs[1]["rng"])
    assert rs[3]["epoch"] == 1.0


def test_a_resume_cuts_the_log_after_its_step(tmp_path: Path) -> None:
    path = str(tmp_path / "a" / "steps.jsonl.zst")
    run(str(tmp_path / "a"), 4)
    run(str(tmp_path / "a"), 6, start=2, recorder=lockstep.Recorder.resume(str(tmp_path / "a"), 2))
    assert [r["step"] for r in records(path)] == [1, 2, 3, 4, 5, 6]
    events = [r for f in read_frames(path)[1:] for r in f[2] if r.get("kind") == "resume"]
    assert len(events) == 1 and events[0]["after_step"] == 2


def test_numpys_state_is_read_again_exactly_when_it_moves(tmp_path: Path) -> None:
    """The fast read of NumPy's generator (its words through ctypes) must give the bytes of
    get_state() whenever the generator moved, draws of Gaussians included, and between draws."""
    from lockstep.recorder import _numpy_state, _NumpyState
    fast = _NumpyState()
    numpy.random.seed(3)
    seen = [fast()]
    for draw in (lambda: numpy.random.rand(), lambda: numpy.random.randn(), lambda: None, lambda: numpy.random.seed(3)):
        draw()
        assert fast() == _numpy_state()
        seen.append(fast())
    assert seen[0] != seen[1] != seen[2]  # each draw moved it
    assert seen[2] == seen[3] and seen[4] == seen[0]  # no draw: the same; reseeded: the first


def test_a_non_finite_loss_is_null_with_its_bits(tmp_path: Path) -> None:
    """As the C++ writer stores a double: NaN and infinities are null; the bits keep the value."""
    rec = lockstep.Recorder(str(tmp_path / "n"))
    rec.begin_step()
    rec.end_step(1, batches=[[0, 1]], loss=float("nan"), lr=float("inf"), grad_norm=1.0)
    rec.close()
    r = records(str(tmp_path / "n" / "steps.jsonl.zst"))[0]
    assert r["loss"] is None and r["lr"] is None and r["loss_bits"] == "0x7fc00000"


def test_a_resume_by_another_world_size_is_marked_against_the_last_size_that_wrote(tmp_path: Path) -> None:
    """A log written by 8 ranks, resumed by 4 after step 2: a resume by this single process
    after step 4 changes the size from 4 (the last resume's), not from the header's 8; one
    after step 2 again, from 8."""
    from lockstep.steplog import StepLogWriter
    path = str(tmp_path / "a" / "steps.jsonl.zst")
    (tmp_path / "a").mkdir()
    log = StepLogWriter(path, {"distributed": {"world_size": 8}}, records_per_frame=1)
    step = {"batches": [[0]], "rng": {}, "loss": 1.0, "loss_bits": "0x3f800000", "lr": 0.1, "grad_norm": 1.0,
            "grad_norm_bits": "0x3f800000"}
    for s in (1, 2):
        log.append({"step": s, **step})
    log.append_event("resume", {"after_step": 2, "world_size": {"from": 8, "to": 4}})
    for s in (3, 4):
        log.append({"step": s, **step})
    log.close()
    for after, expected in ((4, {"from": 4, "to": 1}), (2, {"from": 8, "to": 1})):
        rec = lockstep.Recorder.resume(str(tmp_path / "a"), after)
        rec.close()
        events = [r for f in read_frames(path)[1:] for r in f[2] if r.get("kind") == "resume"]
        assert events[-1]["after_step"] == after and events[-1]["world_size"] == expected, events
