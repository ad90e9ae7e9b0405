#!/usr/bin/python3
"""The Python peer of `lockstep bench`: the same work as Lockstep, as an ordinary PyTorch
program, on the same LibTorch (Debian's python3-torch).

It serves one measurement per request so the C++ suites can interleave its runs with their
own (gbench's random interleaving): each stdin line is a JSON request, each stdout line the
JSON answer {"seconds": s} or {"error": "..."}.

  {"op": "train", "model": "mlp"|"gpt", "steps": N, "threads": T, ...TrainingArgs sizes}
      N optimizer steps of the same model, AdamW (HF's decay groups), gradient clipping and
      linear schedule as `lockstep train`; the loop alone is timed, as Lockstep's runtime.
      With "record_dir" the loop is recorded (lockstep.Recorder, or with "record_with":
      "hf_callback" lockstep.hf.LockstepCallback), and "record_seconds" is the time spent in
      the recording calls.
  {"op": "save", "path": P, "shapes": {"name": [dims], ...}, "threads": T}
      torch.save of a state dict of float32 tensors of those shapes, then fsync.
  {"op": "load", "path": P}
      torch.load of that file.
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))  # lockstep
import torch.nn.functional as F


class Mlp(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.fc1 = nn.Linear(a["input_dim"], a["hidden_size"])
        self.norm = nn.LayerNorm(a["hidden_size"])
        self.drop = nn.Dropout(a["dropout"])
        self.fc2 = nn.Linear(a["hidden_size"], a["num_labels"])

    def loss(self, x, y):  # x [B, in], y [B]
        logits = self.fc2(self.drop(torch.relu(self.norm(self.fc1(x)))))
        return F.cross_entropy(logits, y, reduction="sum"), x.size(0)


class Block(nn.Module):
    def __init__(self, a):
        super().__init__()
        c = a["n_embd"]
        self.n_head = a["n_head"]
        self.ln_1 = nn.LayerNorm(c)
        self.c_attn = nn.Linear(c, 3 * c)
        self.attn_proj = nn.Linear(c, c)
        self.attn_drop = nn.Dropout(a["dropout"])
        self.resid_drop = nn.Dropout(a["dropout"])
        self.ln_2 = nn.LayerNorm(c)
        self.c_fc = nn.Linear(c, 4 * c)
        self.c_proj = nn.Linear(4 * c, c)
        self.drop = nn.Dropout(a["dropout"])

    def attn(self, x):  # [B, T, C] -> [B, T, C], as trainer/models.cc
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.c_attn(x).split(C, 2)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).triu(1)
        att = self.attn_drop(torch.softmax(att.masked_fill(mask, float("-inf")), -1))
        y = torch.matmul(att, v).transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_drop(self.attn_proj(y))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.drop(self.c_proj(F.gelu(self.c_fc(self.ln_2(x)))))


class Gpt(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.wte = nn.Embedding(a["vocab_size"], a["n_embd"])
        self.wpe = nn.Embedding(a["block_size"], a["n_embd"])
        self.drop = nn.Dropout(a["dropout"])
        self.h = nn.ModuleList([Block(a) for _ in range(a["n_layer"])])
        self.ln_f = nn.LayerNorm(a["n_embd"])
        self.lm_head = nn.Linear(a["n_embd"], a["vocab_size"], bias=False)

    def loss(self, idx, targets):  # idx, targets [B, T]
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), reduction="sum"), targets.numel()


class Stopwatch:
    """Calls a function and adds the time it took: the recording calls' share of the loop,
    steadier than an A/B of two noisy runs. (The HF callback's forward hook, a detach and an
    add inside the model's forward, is not in it.)"""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, fn, *args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


class HfCallbackDriver:
    """Calls lockstep.hf.LockstepCallback where transformers' Trainer calls its callbacks, around
    this loop: what the callback costs an HF user, without transformers' own overhead."""

    class _LossModel(nn.Module):  # the model as the Trainer sees it: forward returns {"loss": ...}
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x, y):
            loss_sum, items = self.model.loss(x, y)
            return {"loss": loss_sum / items, "loss_sum": loss_sum, "items": items}

    class _Batches:  # the loop's batches, as a batch sampler yields them (the callback taps it)
        def __init__(self, batches):
            self.batches = batches

        def __iter__(self):
            return iter(self.batches)

        def __len__(self):
            return len(self.batches)

    def __init__(self, run_dir, model, order, batch_size, n, steps):
        from types import SimpleNamespace
        from lockstep.hf import LockstepCallback
        firsts = [(step * batch_size) % (n - batch_size + 1) for step in range(steps)]
        loader = SimpleNamespace(batch_sampler=self._Batches([order[f:f + batch_size].tolist() for f in firsts]))
        self.model, self.callback = self._LossModel(model), LockstepCallback()
        self.ev = (SimpleNamespace(output_dir=run_dir, gradient_accumulation_steps=1, ignore_data_skip=False),
                   SimpleNamespace(global_step=0, epoch=0.0, is_world_process_zero=True),
                   SimpleNamespace(should_save=False, should_training_stop=False))
        self.callback.on_train_begin(*self.ev, model=self.model, train_dataloader=loader)
        self.callback.on_epoch_begin(*self.ev)
        self.batches = iter(loader.batch_sampler)

    def loss(self, x, y):
        out = self.model(x, y)
        return out["loss_sum"], out["items"]

    def step_begin(self):
        next(self.batches)  # the Trainer fetches the window, then calls on_step_begin
        self.callback.on_step_begin(*self.ev)

    def pre_optimizer_step(self):
        self.callback.on_pre_optimizer_step(*self.ev, model=self.model)

    def optimizer_stepped(self, optimizer):
        self.callback.on_optimizer_step(*self.ev, optimizer=optimizer)

    def step_end(self):
        self.ev[1].global_step += 1
        self.callback.on_step_end(*self.ev)

    def close(self):
        self.callback.on_train_end(*self.ev)


DEFAULTS = {"input_dim": 32, "hidden_size": 128, "num_labels": 8, "vocab_size": 64, "block_size": 32,
            "n_layer": 2, "n_head": 4, "n_embd": 64, "dropout": 0.1, "batch_size": 8, "train_samples": 1024,
            "learning_rate": 5e-5, "weight_decay": 0.0, "max_grad_norm": 1.0, "seed": 42}


COMPILED = {}  # torch.compile'd functions, kept across requests


def train(req):
    a = dict(DEFAULTS, **req)
    torch.manual_seed(a["seed"])
    gpt = a["model"] == "gpt"
    model = Gpt(a) if gpt else Mlp(a)
    n = a["train_samples"]
    if gpt:
        data = torch.randint(0, a["vocab_size"], (n, a["block_size"] + 1))
        inputs, targets = data[:, :-1].contiguous(), data[:, 1:].contiguous()
    else:
        inputs, targets = torch.randn(n, a["input_dim"]), torch.randint(0, a["num_labels"], (n,))
    no_decay = [p for name, p in model.named_parameters() if "bias" in name or "norm" in name or "ln_" in name]
    decay = [p for p in model.parameters() if all(p is not q for q in no_decay)]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": a["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=a["learning_rate"], betas=(0.9, 0.999), eps=1e-8)
    steps = a["steps"]
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (steps - s) / steps))
    order = torch.randperm(n)
    model.train()
    recorder = hf = None
    loss_of = model.loss
    if a.get("record_dir") and a.get("record_with") == "hf_callback":  # as a Trainer would call it
        hf = HfCallbackDriver(a["record_dir"], model, order, a["batch_size"], n, steps)
        loss_of = hf.loss
    elif a.get("record_dir"):  # the same loop recorded with lockstep.Recorder (python/lockstep)
        import lockstep
        recorder = lockstep.Recorder(a["record_dir"], settings={"model": a["model"], "seed": a["seed"]})
    compile_seconds = 0.0
    if a.get("compile"):  # the second yardstick: the loss under inductor, compiled before timing
        if not hasattr(torch, "compile"):
            raise RuntimeError("torch %s has no torch.compile" % torch.__version__)
        # One compiled function for the peer's life: the model is an argument (PyTorch 2 inlines
        # nn.Modules, so a fresh model of the same shape reuses the code), so only the first
        # repetition pays for inductor.
        if "loss" not in COMPILED:
            COMPILED["loss"] = torch.compile(lambda m, x, y: m.loss(x, y))
        compiled = COMPILED["loss"]
        loss_of = lambda x, y: compiled(model, x, y)  # noqa: E731
        start = time.perf_counter()
        warm_ids = order[:a["batch_size"]]
        loss_sum, items = loss_of(inputs.index_select(0, warm_ids), targets.index_select(0, warm_ids))
        (loss_sum / items).backward()  # compiles the backward too; no optimizer step
        optimizer.zero_grad()
        compile_seconds = time.perf_counter() - start
    timed = Stopwatch()
    start = time.perf_counter()
    for step in range(steps):
        if recorder:
            timed(recorder.begin_step)
        if hf:
            timed(hf.step_begin)
        first = (step * a["batch_size"]) % (n - a["batch_size"] + 1)
        ids = order[first:first + a["batch_size"]]
        optimizer.zero_grad()
        loss_sum, items = loss_of(inputs.index_select(0, ids), targets.index_select(0, ids))
        (loss_sum / items).backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), a["max_grad_norm"])
        if hf:
            timed(hf.pre_optimizer_step)
        optimizer.step()
        if hf:
            timed(hf.optimizer_stepped, optimizer)
        schedule.step()
        loss = float(loss_sum)  # the loop reads the loss back every step, as Lockstep's does
        if recorder:
            timed(recorder.end_step, step + 1, batches=[ids.tolist()], loss=loss / float(items),
                  lr=schedule.get_last_lr()[0], grad_norm=float(norm))
        if hf:
            timed(hf.step_end)
    if recorder:
        timed(recorder.close)
    if hf:
        timed(hf.close)
    return {"seconds": time.perf_counter() - start, "record_seconds": timed.seconds,
            "compile_seconds": compile_seconds}


def save(req):
    state = {name: torch.full(dims, 0.5) for name, dims in req["shapes"].items()}
    start = time.perf_counter()
    with open(req["path"], "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - start


def load(req):
    start = time.perf_counter()
    state = torch.load(req["path"])
    seconds = time.perf_counter() - start
    del state
    return seconds


def main():
    ops = {"train": train, "save": save, "load": load}
    for line in sys.stdin:
        try:
            req = json.loads(line)
            torch.set_num_threads(int(req.get("threads", torch.get_num_threads())))
            result = ops[req["op"]](req)
            answer = result if isinstance(result, dict) else {"seconds": result}
        except Exception as e:  # answered, so the bench reports it instead of hanging
            answer = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
