"""A plain PyTorch training loop, recorded with lockstep.Recorder.

    python examples/python_loop/train.py --output_dir runs/a
    python examples/python_loop/train.py --output_dir runs/a --resume_from_checkpoint runs/a/checkpoint-10

A small MLP with dropout on synthetic data, AdamW with gradient clipping and a linear lr
decay, every generator seeded. Each epoch draws its own order of the samples. A checkpoint
every --save_steps steps (checkpoint-N/state.pt: the model, optimizer, scheduler and
generator states), written aside and then renamed into place. Every optimizer step is
recorded in OUTPUT_DIR/steps.jsonl.zst. Then read the run with the lockstep CLI:

    lockstep inspect runs/a                 # checkpoints, the step log, sample coverage
    lockstep diff runs/a runs/b             # where two runs part, and why
    lockstep verify-resume --output_dir runs/verify \
        --cmd 'python examples/python_loop/train.py --output_dir {output_dir}' \
        --resume-arg '--resume_from_checkpoint {checkpoint}'

--forget-rng resumes without restoring the generators: the classic resume bug, which
`lockstep diff` and `verify-resume` name as cause rng.
"""
import argparse
import os
import random
from typing import Any

import numpy
import torch

import lockstep

SAMPLES, FEATURES = 64, 8


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A plain PyTorch training loop, recorded with lockstep.Recorder.")
    p.add_argument("--output_dir", required=True, help="run directory: steps.jsonl.zst and checkpoint-N/")
    p.add_argument("--resume_from_checkpoint", help="a checkpoint-N directory to continue from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch_size", type=int, default=8)
    p.add_argument("--learning_rate", type=float, default=1e-2)
    p.add_argument("--save_steps", type=int, default=5)
    p.add_argument("--forget-rng", action="store_true", help="resume without restoring the generators (a bug)")
    return p.parse_args()


def seed_everything(seed: int) -> None:
    """As HF's set_seed: torch, Python's random and NumPy's global generator."""
    torch.manual_seed(seed)
    random.seed(seed)
    numpy.random.seed(seed)


def generator_states() -> dict[str, Any]:
    """Every global generator's state, in types torch.load(weights_only=True) reads back."""
    state = numpy.random.get_state(legacy=True)
    assert isinstance(state, tuple)  # legacy=True: ("MT19937", key, pos, has_gauss, gauss)
    name, key, pos, has_gauss, gauss = state
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": (name, key.tolist(), pos, has_gauss, gauss)}


def restore_generators(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    name, key, pos, has_gauss, gauss = states["numpy"]
    numpy.random.set_state((name, numpy.array(key, dtype=numpy.uint32), pos, has_gauss, gauss))


def epoch_order(seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch: a permutation from its own seeded generator, so a resume
    finds any epoch's order again without saving it."""
    return torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()


def main() -> None:
    a = parse_args()
    torch.set_num_threads(1)  # the thread count decides the bits of a reduction
    seed_everything(a.seed)
    data = torch.Generator().manual_seed(1234)  # the data set is the same for every seed
    x, y = torch.randn(SAMPLES, FEATURES, generator=data), torch.randn(SAMPLES, 1, generator=data)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(32, 1))
    optimizer = torch.optim.AdamW(model.parameters(), lr=a.learning_rate)
    steps_per_epoch = (SAMPLES + a.batch_size - 1) // a.batch_size
    total_steps = steps_per_epoch * a.epochs
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.1,
                                                  total_iters=total_steps)
    settings = {"seed": a.seed, "epochs": a.epochs, "batch_size": a.batch_size, "learning_rate": a.learning_rate}

    done = 0
    if a.resume_from_checkpoint:
        state = torch.load(os.path.join(a.resume_from_checkpoint, "state.pt"), weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if not a.forget_rng:
            restore_generators(state["generators"])
        done = int(state["step"])
    log = os.path.join(a.output_dir, "steps.jsonl.zst")
    if done and os.path.exists(log):  # cut what a killed run recorded past the checkpoint
        rec = lockstep.Recorder.resume(a.output_dir, done)
    else:  # a fresh run, or a resume into a new directory
        rec = lockstep.Recorder(a.output_dir, settings=settings, start_after=done, dataset_size=SAMPLES,
                                grad_norm_measured="before clipping")

    model.train()
    last_loss = float("nan")
    for step in range(done + 1, total_steps + 1):
        epoch, index = divmod(step - 1, steps_per_epoch)
        rec.begin_step()  # the generator states, before the step's first draw (dropout)
        ids = epoch_order(a.seed, epoch)[index * a.batch_size:(index + 1) * a.batch_size]
        lr = optimizer.param_groups[0]["lr"]
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[ids]), y[ids])
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # the norm before clipping
        optimizer.step()
        scheduler.step()
        last_loss = loss.item()
        rec.end_step(step, batches=[ids], loss=last_loss, lr=lr, grad_norm=norm.item(),
                     epoch=step / steps_per_epoch)  # HF's epoch, counted after the step
        if step % a.save_steps == 0 or step == total_steps:
            rec.flush()  # the log covers the checkpoint before the checkpoint exists
            save(a.output_dir, step, {"step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                      "scheduler": scheduler.state_dict(), "generators": generator_states()})
    rec.close()
    print(f"{total_steps - done} steps recorded in {log} (last loss {last_loss:.6f})")


def save(output_dir: str, step: int, state: dict[str, Any]) -> None:
    """Writes checkpoint-N whole or not at all: into a staging directory, then renamed."""
    staging = os.path.join(output_dir, f".staging-checkpoint-{step}")
    os.makedirs(staging, exist_ok=True)
    path = os.path.join(staging, "state.pt")
    torch.save(state, path)
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    os.rename(staging, os.path.join(output_dir, f"checkpoint-{step}"))


if __name__ == "__main__":
    main()
