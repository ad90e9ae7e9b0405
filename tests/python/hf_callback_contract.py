"""lockstep.hf.LockstepCallback against the Trainer's contract, without transformers:
    python3 hf_callback_contract.py OUT_DIR [--workers N]
A stand-in for transformers' Trainer drives the callback as _inner_training_loop (4.46 to 5.x)
does: accelerate's one-batch-ahead loader over a seeded sampler that reseeds per epoch, a
window's batches fetched before on_step_begin, on_substep_end between micro-batches, clipping
then on_pre_optimizer_step, on_optimizer_step before the scheduler, global_step += 1 then
on_step_end, then the save; a resume loads the state, skips (global_step % updates) *
accumulation batches of its epoch through the same sampler, and restores the generators. The
It checks that every step's recorded batches are the ids the loop used, and that the callback
changes nothing; it leaves run dirs for `lockstep diff`:
  whole, resumed    killed after step 11, resumed from checkpoint-9 (mid-epoch): the same run
  fresh     resumed from a copy of checkpoint-9 in a new directory: its log begins at step 10
  whole_masking, resumed_masking   the same with a collator that draws from torch's
            generator: HF restores the generators after fetching the resumed window (and
            the checkpoint's state already holds the draw for the batch the loader fetched
            ahead), so the resumed step 10 starts from other generator states
Where transformers is installed, tests/python/hf_trainer.py runs the real Trainer."""
import os
import random
import shutil
import sys

import numpy
import torch

from lockstep.hf import LockstepCallback

BATCH, ACCUMULATION, EPOCHS, SAVE_STEPS = 4, 3, 3, 3
WORKERS = int(sys.argv[sys.argv.index("--workers") + 1]) if "--workers" in sys.argv else 0  # DataLoader workers


class Args:  # the TrainingArguments fields the callback reads
    def __init__(self, output_dir):
        self.output_dir, self.gradient_accumulation_steps, self.ignore_data_skip = output_dir, ACCUMULATION, False

    def to_dict(self):
        return {"output_dir": self.output_dir, "per_device_train_batch_size": BATCH,
                "gradient_accumulation_steps": ACCUMULATION, "num_train_epochs": EPOCHS, "seed": 0}


class State:
    global_step, epoch, is_world_process_zero = 0, 0.0, True


class Control:
    should_save = should_training_stop = False


class Killed(Exception):
    pass


class Data(torch.utils.data.Dataset):
    def __init__(self, samples):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(samples, 6, generator=g), torch.randn(samples, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"idx": i, "x": self.x[i], "y": self.y[i]}


def collate(examples):
    return torch.utils.data.default_collate(examples)


def collate_masking(examples):  # draws from torch's generator per batch, as MLM masking does
    batch = collate(examples)
    batch["x"] = batch["x"] * (torch.rand(batch["x"].shape) > 0.2)
    return batch


class SeedableSampler(torch.utils.data.Sampler):  # accelerate's SeedableRandomSampler: seed + epoch
    def __init__(self, n):
        self.n, self.epoch = n, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __iter__(self):
        return iter(torch.randperm(self.n, generator=torch.Generator().manual_seed(42 + self.epoch)).tolist())


class SkipBatchSampler(torch.utils.data.Sampler):  # accelerate's: draws the skipped batches too
    def __init__(self, batch_sampler, skip):
        self.batch_sampler, self.skip = batch_sampler, skip

    def __iter__(self):
        for i, batch in enumerate(self.batch_sampler):
            if i >= self.skip:
                yield batch


def one_ahead(loader):  # accelerate's DataLoaderShard fetches a batch ahead to see the end
    it = iter(loader)
    current = next(it, None)
    while current is not None:
        following = next(it, None)
        yield current
        current = following


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))

    def forward(self, x, y):
        return {"loss": torch.nn.functional.mse_loss(self.net(x), y)}


class NoCallback:  # a run without the callback: every event does nothing
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def train(run_dir, samples, callback=None, resume=0, kill_after=None, masking=False, ignore_data_skip=False):
    """Returns (final parameters, the sample ids each step used). A resume restores the
    generators as HF does: at the epoch's start when it skips nothing, else after the resumed
    window was fetched (the loader's iterator draws its base seed from torch's generator
    first). With `masking` the collator draws from torch's generator too."""
    collate_fn = collate_masking if masking else collate
    random.seed(0), numpy.random.seed(0), torch.manual_seed(0)  # as HF's set_seed(args.seed)
    data, model = Data(samples), Model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    updates_per_epoch = -(-(-(-samples // BATCH)) // ACCUMULATION)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / (EPOCHS * updates_per_epoch))
    sampler = SeedableSampler(samples)
    loader = torch.utils.data.DataLoader(data, batch_sampler=torch.utils.data.BatchSampler(sampler, BATCH, False),
                                         collate_fn=collate_fn, num_workers=WORKERS)
    args, state, control, used = Args(run_dir), State(), Control(), []
    args.ignore_data_skip = ignore_data_skip
    cb = callback or NoCallback()
    rng = None
    if resume:
        saved = torch.load(os.path.join(run_dir, "checkpoint-%d" % resume, "state.pt"), weights_only=False)  # our own file: Python and NumPy states too
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state.global_step, rng = resume, saved["rng"]
    epochs_trained = state.global_step // updates_per_epoch
    skip = 0 if ignore_data_skip else (state.global_step % updates_per_epoch) * ACCUMULATION
    cb.on_train_begin(args, state, control, model=model, train_dataloader=loader)
    for epoch in range(epochs_trained, EPOCHS):
        sampler.set_epoch(epoch)
        steps_in_epoch = len(loader)
        cb.on_epoch_begin(args, state, control)
        epoch_loader, steps_skipped, rng_to_sync = loader, 0, False
        if rng is not None and epoch == epochs_trained and skip == 0:
            torch.set_rng_state(rng)
        if skip > 0:
            epoch_loader = torch.utils.data.DataLoader(data, batch_sampler=SkipBatchSampler(loader.batch_sampler, skip),
                                                       collate_fn=collate_fn, num_workers=WORKERS)
            steps_skipped, skip, rng_to_sync = skip, 0, True
        it, step = one_ahead(epoch_loader), -1
        while True:
            window = [b for _, b in zip(range(ACCUMULATION), it)]
            if not window:
                break
            for i, inputs in enumerate(window):
                step += 1
                do_sync = (step + 1) % ACCUMULATION == 0 or (step + 1) == steps_in_epoch
                if rng_to_sync:
                    torch.set_rng_state(rng)
                    rng_to_sync = False
                if step % ACCUMULATION == 0:
                    cb.on_step_begin(args, state, control)
                if step % ACCUMULATION == 0:
                    used.append([])
                used[-1].append(inputs.pop("idx").tolist())
                (model(**inputs)["loss"] / len(window)).backward()
                if not do_sync:
                    cb.on_substep_end(args, state, control)
                    continue
                torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
                cb.on_pre_optimizer_step(args, state, control, model=model)
                optimizer.step()
                cb.on_optimizer_step(args, state, control, optimizer=optimizer)
                scheduler.step()
                model.zero_grad()
                state.global_step += 1
                state.epoch = epoch + (step + 1 + steps_skipped) / steps_in_epoch
                control.should_save = state.global_step % SAVE_STEPS == 0 or state.global_step == EPOCHS * updates_per_epoch
                control.should_training_stop = state.global_step == EPOCHS * updates_per_epoch
                cb.on_step_end(args, state, control)
                if control.should_save:
                    save(run_dir, state.global_step, model, optimizer, scheduler)
                    cb.on_save(args, state, control)
                if state.global_step == kill_after:
                    raise Killed()  # the log is left as a SIGKILL leaves it: nothing flushed after the save
            if control.should_training_stop:  # as _inner_training_loop: the step loop, then the epochs
                break
        if control.should_training_stop:
            break
    cb.on_train_end(args, state, control)
    return [p.detach().clone() for p in model.parameters()], used


def save(run_dir, step, model, optimizer, scheduler):
    staging = os.path.join(run_dir, ".staging-%d" % step)
    os.makedirs(staging, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": torch.get_rng_state()}, os.path.join(staging, "state.pt"))
    os.rename(staging, os.path.join(run_dir, "checkpoint-%d" % step))


def check(condition, what):
    if not condition:
        sys.exit("contract broken: " + what)


def main():
    torch.set_num_threads(1)
    out = sys.argv[1]
    from lockstep.steplog import read_frames
    # 50 samples: 13 micro-batches an epoch, windows of 3, 3, 3, 3 and 1.
    _, used = train(os.path.join(out, "short"), 50, LockstepCallback())
    records = [r for f in read_frames(os.path.join(out, "short", "steps.jsonl.zst"))[1:] for r in f[2] if r.get("kind") == "step"]
    check([r["step"] for r in records] == list(range(1, len(used) + 1)), "one record per optimizer step, in order")
    check([r["batches"] for r in records] == used, "each step's batches are the sample ids the loop used")
    check([len(r["batches"]) for r in records[:6]] == [3, 3, 3, 3, 1, 3], "an epoch's short last window is its own step")
    # 48 samples: 4 full windows an epoch; checkpoint-9 is a mid-epoch resume (3 batches skipped).
    whole, used = train(os.path.join(out, "whole"), 48, LockstepCallback())
    plain, _ = train(os.path.join(out, "plain"), 48)
    check(all(torch.equal(a, b) for a, b in zip(whole, plain)), "a run with the callback is bit-identical to one without")
    train(os.path.join(out, "whole_masking"), 48, LockstepCallback(), masking=True)
    for name, masking in (("resumed", False), ("resumed_masking", True)):
        run_dir = os.path.join(out, name)
        try:
            train(run_dir, 48, LockstepCallback(), kill_after=11, masking=masking)
        except Killed:
            pass
        final, _ = train(run_dir, 48, LockstepCallback(), resume=9, masking=masking)
        if not masking:
            check(all(torch.equal(a, b) for a, b in zip(whole, final)), "a correct resume ends with the same weights")
    # Resumed with ignore_data_skip: the resumed epoch starts its data over (HF's documented
    # behaviour), so its first windows are drawn twice; the coverage audit sees it in the log.
    no_skip = os.path.join(out, "resumed_no_skip")
    try:
        train(no_skip, 48, LockstepCallback(), kill_after=11)
    except Killed:
        pass
    train(no_skip, 48, LockstepCallback(), resume=9, ignore_data_skip=True)
    # Resumed into a new directory (checkpoint-9 copied there): the log begins after step 9.
    fresh = os.path.join(out, "fresh")
    shutil.copytree(os.path.join(out, "whole", "checkpoint-9"), os.path.join(fresh, "checkpoint-9"))
    train(fresh, 48, LockstepCallback(), resume=9)
    # Another rank outside a torch.distributed job (none to gather through) records nothing:
    # only global rank 0 writes the log. In a job every rank records, through rank 0 (ddp_test.cc).
    other = Args(os.path.join(out, "rank1"))
    other.process_index = 1
    LockstepCallback().on_train_begin(other, State(), Control(), model=Model())
    check(not os.path.exists(other.output_dir), "only global rank 0 writes")
    print("contract held: %d steps recorded, batches as used, the run unchanged" % len(records))


if __name__ == "__main__":
    main()
