"""A plain PyTorch loop recorded with lockstep.Recorder:
    python3 plain_loop.py RUN_DIR SEED STEPS [--resume STEP|CHECKPOINT_DIR] [--forget-rng] [--unrecorded]
                          [--idle-numpy]
An MLP with dropout; batches drawn with Python's random and noise with NumPy, so every
generator the recorder captures moves. A checkpoint every 10 steps, RUN_DIR/checkpoint-N
(model, optimizer and the three generators; written aside, then renamed into place).
--resume continues from the checkpoint at STEP (or that directory); --forget-rng is the
classic resume bug: the generators are not restored. --unrecorded records nothing and writes
what an HF Trainer leaves instead: each checkpoint's model.safetensors and trainer_state.json
with its log_history (loss, grad_norm, learning_rate every step). --idle-numpy imports NumPy
but never seeds or draws from it (the noise comes from torch): its state, taken from the OS,
differs between any two runs and never moves."""
import json
import os
import random
import struct
import sys

import numpy
import torch

import lockstep


def save_safetensors(tensors, path):
    """The safetensors format, by hand (float32 only): the header's length, its JSON, the data."""
    header, blobs, offset = {}, [], 0
    for name, tensor in tensors.items():
        data = tensor.detach().contiguous().float().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensor.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


class HfStyleLog:
    """What an unrecorded HF run leaves: trainer_state.json's log_history, per checkpoint."""

    def __init__(self, run_dir, resume):
        self.history = []
        if resume:
            with open(os.path.join(run_dir, "checkpoint-%d" % resume, "trainer_state.json")) as f:
                self.history = json.load(f)["log_history"]

    def end_step(self, step, loss, lr, grad_norm):
        self.history.append({"step": step, "loss": loss, "learning_rate": lr, "grad_norm": grad_norm})

    def save(self, staging, step, model):
        save_safetensors(model.state_dict(), os.path.join(staging, "model.safetensors"))
        with open(os.path.join(staging, "trainer_state.json"), "w") as f:
            json.dump({"global_step": step, "log_history": self.history}, f, indent=2, sort_keys=True)


run_dir, seed, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
resume = sys.argv[sys.argv.index("--resume") + 1] if "--resume" in sys.argv else "0"
resume = int(resume.rstrip("/").rsplit("checkpoint-", 1)[-1])
recorded = "--unrecorded" not in sys.argv
torch.manual_seed(seed)
random.seed(seed)
idle_numpy = "--idle-numpy" in sys.argv
if not idle_numpy:
    numpy.random.seed(seed)
torch.set_num_threads(1)
x, y = torch.randn(64, 8), torch.randn(64, 1)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
if resume:
    state = torch.load(os.path.join(run_dir, "checkpoint-%d" % resume, "state.pt"), weights_only=False)  # our own file: Python and NumPy states too
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if "--forget-rng" not in sys.argv:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        numpy.random.set_state(state["numpy"])
    rec = lockstep.Recorder.resume(run_dir, resume) if recorded else None
else:
    os.makedirs(run_dir, exist_ok=True)
    rec = lockstep.Recorder(run_dir, settings={"seed": seed, "lr": 0.05, "batch_size": 4}) if recorded else None
hf_log = None if recorded else HfStyleLog(run_dir, resume)
for step in range(resume + 1, steps + 1):
    if rec:
        rec.begin_step()
    ids = random.sample(range(64), 4)
    if idle_numpy:
        noise = torch.randn(4, 1) * 0.01
    else:
        noise = torch.from_numpy(numpy.random.normal(0, 0.01, size=(4, 1)).astype("float32"))
    optimizer.zero_grad()
    loss = torch.nn.functional.mse_loss(model(x[ids]), y[ids] + noise)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    if rec:
        rec.end_step(step, batches=[ids], loss=loss.item(), lr=0.05, grad_norm=norm.item())
    else:
        hf_log.end_step(step, loss.item(), 0.05, norm.item())
    if step % 10 == 0:
        if rec:
            rec.flush()  # the log covers the checkpoint
        staging = os.path.join(run_dir, ".staging-%d" % step)
        os.makedirs(staging, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "torch": torch.get_rng_state(),
                    "python": random.getstate(), "numpy": numpy.random.get_state()},
                   os.path.join(staging, "state.pt"))
        if hf_log:
            hf_log.save(staging, step, model)
        os.rename(staging, os.path.join(run_dir, "checkpoint-%d" % step))
if rec:
    rec.close()
