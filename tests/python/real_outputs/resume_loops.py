"""One small training loop per framework, recorded with lockstep, saving a checkpoint every 3
steps and resuming from one; with --bug, the resume plants one of the classic resume bugs:
    python resume_loops.py FRAMEWORK OUT_DIR [--resume CHECKPOINT] [--bug rng|scheduler|epoch]
FRAMEWORK:
  plain       a hand-written loop: torch.save of model, optimizer, scheduler and every
              generator into checkpoint-N/state.pt; lockstep.Recorder
  accelerate  Accelerator.save_state(checkpoint-N) and load_state, skip_first_batches;
              lockstep.Recorder; accelerator.save_model at the end
  hf          the Trainer with lockstep.hf.LockstepCallback; save_model() and save_state() at
              the end
  lightning   Trainer.fit with ModelCheckpoint (epoch=E-step=S.ckpt every 3 steps), a callback
              that saves and restores the generators, and a data loader whose position is
              saved with the loop; lockstep.Recorder in a callback
The bugs: rng, the generators are not restored; scheduler, the lr schedule starts over; epoch,
the resumed epoch's data starts over from its first batch. Each trains 2 epochs of 10 batches
(40 samples, batch 4) of an MLP with dropout, AdamW with a linearly decaying lr, on the CPU."""
import argparse
import os
import random
import shutil
import sys

import numpy
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "python"))
import lockstep  # noqa: E402

SAMPLES, BATCH, EPOCHS, SAVE_EVERY = 40, 4, 2, 3
STEPS = EPOCHS * SAMPLES // BATCH
LR = 1e-2


class Data(torch.utils.data.Dataset):
    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(SAMPLES, 8, generator=g), torch.randn(SAMPLES, 1, generator=g)

    def __len__(self):
        return SAMPLES

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i], "index": i}


class EpochSampler(torch.utils.data.Sampler):
    """A new order every epoch, from the epoch number alone (as DistributedSampler.set_epoch)."""

    def __init__(self):
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(torch.randperm(SAMPLES, generator=torch.Generator().manual_seed(100 + self.epoch)).tolist())

    def __len__(self):
        return SAMPLES


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                       torch.nn.Linear(16, 1))

    def forward(self, x, labels=None, index=None):
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def seed_everything():
    torch.manual_seed(0)
    random.seed(0)
    numpy.random.seed(0)


def optimizer_and_schedule(model):
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    return optimizer, torch.optim.lr_scheduler.LinearLR(optimizer, 1.0, 0.1, total_iters=STEPS)


def grad_norm(model):
    return torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0).item()


def generators():
    """Every generator the loops draw from, as plain values (torch.load(weights_only=True)
    reads them back: Lightning loads checkpoints so)."""
    kind, key, pos, has_gauss, gauss = numpy.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": [kind, key.tolist(), pos, has_gauss, gauss]}


def set_generators(state):
    torch.set_rng_state(state["torch"])
    version, words, gauss = state["python"]
    random.setstate((version, tuple(words), gauss))
    kind, key, pos, has_gauss, gauss = state["numpy"]
    numpy.random.set_state((kind, numpy.array(key, dtype=numpy.uint32), pos, has_gauss, gauss))


def recorder(out, resume_step):
    if resume_step:
        return lockstep.Recorder.resume(out, resume_step)
    return lockstep.Recorder(out, settings={"lr": LR, "batch": BATCH, "samples": SAMPLES}, dataset_size=SAMPLES)


def step_of(checkpoint):
    name = os.path.basename(checkpoint.rstrip("/"))
    return int(name.split("step=")[-1].split(".")[0] if "step=" in name else name.rsplit("-", 1)[-1])


def save_dir(out, step, write):
    """Writes checkpoint-<step> aside, then renames it into place whole."""
    staging = os.path.join(out, ".staging-%d" % step)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    write(staging)
    os.rename(staging, os.path.join(out, "checkpoint-%d" % step))


def epoch_batches(epoch, first):
    sampler = EpochSampler()
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[i:i + BATCH] for i in range(first * BATCH, SAMPLES, BATCH)]


# --- a hand-written loop ------------------------------------------------------------------

def plain(out, resume, bug):
    seed_everything()
    data, model = Data(), Mlp()
    optimizer, schedule = optimizer_and_schedule(model)
    done = 0
    if resume:
        state = torch.load(os.path.join(resume, "state.pt"), weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if bug != "scheduler":
            schedule.load_state_dict(state["schedule"])
        if bug != "rng":
            set_generators(state["generators"])
        done = state["step"]
    os.makedirs(out, exist_ok=True)
    rec = recorder(out, done)
    step = done
    for epoch in range(done // 10, EPOCHS):
        skip = done % 10 if epoch == done // 10 and bug != "epoch" else 0
        for ids in epoch_batches(epoch, skip):
            if step == STEPS:
                break
            rec.begin_step()
            lr = schedule.get_last_lr()[0]
            loss = model(data.x[ids], data.y[ids])["loss"]
            optimizer.zero_grad()
            loss.backward()
            norm = grad_norm(model)
            optimizer.step()
            schedule.step()
            step += 1
            rec.end_step(step, batches=[ids], loss=loss.item(), lr=lr, grad_norm=norm, epoch=step / 10)
            if step % SAVE_EVERY == 0 or step == STEPS:
                rec.flush()
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "schedule": schedule.state_dict(), "generators": generators(), "step": step}
                save_dir(out, step, lambda d: torch.save(state, os.path.join(d, "state.pt")))
    rec.close()
    torch.save(model.state_dict(), os.path.join(out, "model.pt"))  # the final model


# --- accelerate ---------------------------------------------------------------------------

class Progress:
    """The step count, saved and restored by accelerate beside the rest."""

    def __init__(self):
        self.step = 0

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, state):
        self.step = state["step"]


def accelerate_loop(out, resume, bug):
    from accelerate import Accelerator
    seed_everything()
    accelerator = Accelerator(cpu=True)
    loader = torch.utils.data.DataLoader(Data(), batch_size=BATCH, sampler=EpochSampler())
    model = Mlp()
    optimizer, schedule = optimizer_and_schedule(model)
    model, optimizer, loader, schedule = accelerator.prepare(model, optimizer, loader, schedule)
    progress = Progress()
    accelerator.register_for_checkpointing(progress)
    restored = None
    if resume:
        fresh_generators, fresh_schedule = generators(), schedule.state_dict()
        accelerator.load_state(resume)
        restored = generators() if bug != "rng" else fresh_generators
        if bug == "scheduler":
            schedule.load_state_dict(fresh_schedule)
    done = progress.step
    os.makedirs(out, exist_ok=True)
    rec = recorder(out, done)
    for epoch in range(done // 10, EPOCHS):
        # The prepared loader's own epoch count, which it hands its sampler: a resumed epoch
        # read through skip_first_batches does not advance it.
        loader.set_epoch(epoch)
        skip = done % 10 if epoch == done // 10 and bug != "epoch" else 0
        for batch in accelerator.skip_first_batches(loader, skip) if skip else loader:
            if progress.step == STEPS:
                break
            if restored is not None:  # fetching the first batch drew a seed from torch's generator:
                set_generators(restored)  # the generators are put back after it, as the Trainer does
                restored = None
            rec.begin_step()
            lr = schedule.get_last_lr()[0]
            loss = model(**batch)["loss"]
            optimizer.zero_grad()
            accelerator.backward(loss)
            norm = grad_norm(model)
            optimizer.step()
            schedule.step()
            progress.step += 1
            rec.end_step(progress.step, batches=[batch["index"].tolist()], loss=loss.item(), lr=lr, grad_norm=norm,
                         epoch=progress.step / 10)
            if progress.step % SAVE_EVERY == 0 or progress.step == STEPS:
                rec.flush()
                save_dir(out, progress.step, accelerator.save_state)
    rec.close()
    accelerator.save_model(model, out)  # the final model, model.safetensors


# --- the Hugging Face Trainer ---------------------------------------------------------------

def hf(out, resume, bug):
    from transformers import Trainer, TrainerCallback, TrainingArguments, default_data_collator
    from lockstep.hf import LockstepCallback
    seed_everything()

    class Items(torch.utils.data.Dataset):
        def __init__(self):
            self.data = Data()

        def __len__(self):
            return SAMPLES

        def __getitem__(self, i):
            item = self.data[i]
            return {"x": item["x"], "labels": item["labels"]}

    class RestoreGenerators(TrainerCallback):
        """With ignore_data_skip the Trainer restores no generator: done here, where it would
        (after the first batch is fetched), so the epoch's data is the one planted bug."""

        def on_step_begin(self, args, state, control, **kwargs):
            if resume and not getattr(self, "done", False):
                trainer._load_rng_state(resume)
                self.done = True

    args = TrainingArguments(output_dir=out, per_device_train_batch_size=BATCH, num_train_epochs=EPOCHS,
                             learning_rate=LR, lr_scheduler_type="linear", max_grad_norm=1.0, save_strategy="steps",
                             save_steps=SAVE_EVERY, logging_steps=1, seed=0, use_cpu=True, report_to="none",
                             disable_tqdm=True, ignore_data_skip=bug == "epoch")
    callbacks = [RestoreGenerators()] if bug == "epoch" else []
    trainer = Trainer(model=Mlp(), args=args, train_dataset=Items(), data_collator=default_data_collator,
                      callbacks=callbacks + [LockstepCallback()])
    if bug == "rng":
        trainer._load_rng_state = lambda checkpoint: None
    if bug == "scheduler":
        load = trainer._load_optimizer_and_scheduler

        def optimizer_only(checkpoint):
            fresh = trainer.lr_scheduler.state_dict()
            load(checkpoint)
            trainer.lr_scheduler.load_state_dict(fresh)

        trainer._load_optimizer_and_scheduler = optimizer_only
    trainer.train(resume_from_checkpoint=resume)
    trainer.save_model()
    trainer.save_state()


# --- Lightning ------------------------------------------------------------------------------

class StatefulLoader(torch.utils.data.DataLoader):
    """A data loader whose position in the epoch Lightning saves with its loops and restores
    (Lightning keeps the state of a loader that has state_dict and load_state_dict)."""

    def __init__(self, *args, restart_epochs=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.yielded, self.skip, self.restart_epochs = 0, 0, restart_epochs

    def __iter__(self):
        skip, self.skip, self.yielded = self.skip, 0, 0
        for i, batch in enumerate(super().__iter__()):
            if i < skip:
                continue
            self.yielded = i + 1
            yield batch

    def state_dict(self):
        return {"yielded": self.yielded}

    def load_state_dict(self, state):
        self.skip = 0 if self.restart_epochs else state["yielded"]


def lightning(out, resume, bug):
    import lightning as L
    seed_everything()
    rec_box = {}

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = Mlp()

        def training_step(self, batch, index):
            self.ids = batch["index"].tolist()
            return self.model(batch["x"], batch["labels"])["loss"]

        def configure_optimizers(self):
            optimizer, schedule = optimizer_and_schedule(self)
            self.fresh_schedule = schedule.state_dict()
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

        def on_load_checkpoint(self, checkpoint):
            if bug == "scheduler":
                checkpoint["lr_schedulers"] = [self.configure_optimizers()["lr_scheduler"]["scheduler"].state_dict()]

    class Generators(L.Callback):
        """Lightning saves no generator state: this callback does, as a careful user's would,
        and puts it back once the first batch is fetched (which draws a seed from torch's
        generator), as the Trainer does."""

        def state_dict(self):
            return generators()

        def load_state_dict(self, state):
            self.restored = state if bug != "rng" else None

        def on_train_batch_start(self, trainer, module, batch, index):
            if getattr(self, "restored", None) is not None:
                set_generators(self.restored)
                self.restored = None

    class Record(L.Callback):
        def on_train_start(self, trainer, module):
            rec_box["rec"] = recorder(out, trainer.global_step)

        def on_train_batch_start(self, trainer, module, batch, index):
            rec_box["rec"].begin_step()
            self.lr = trainer.optimizers[0].param_groups[0]["lr"]

        def on_before_optimizer_step(self, trainer, module, optimizer):
            self.norm = grad_norm(module)

        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            step = trainer.global_step
            rec_box["rec"].end_step(step, batches=[module.ids], loss=outputs["loss"].item(), lr=self.lr,
                                    grad_norm=self.norm, epoch=step / 10)
            if step % SAVE_EVERY == 0:
                rec_box["rec"].flush()  # before ModelCheckpoint saves, at this same hook

        def on_train_end(self, trainer, module):
            rec_box["rec"].close()

    os.makedirs(out, exist_ok=True)
    every = L.pytorch.callbacks.ModelCheckpoint(dirpath=out, every_n_train_steps=SAVE_EVERY, save_top_k=-1,
                                                save_last=False)
    loader = StatefulLoader(Data(), batch_size=BATCH, sampler=EpochSampler(), restart_epochs=bug == "epoch")
    trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, callbacks=[Generators(), Record(), every],
                        logger=False, enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=None,
                        deterministic=True)
    trainer.fit(Module(), loader, ckpt_path=resume)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("framework", choices=("plain", "accelerate", "hf", "lightning"))
    p.add_argument("out")
    p.add_argument("--resume")
    p.add_argument("--bug", choices=("rng", "scheduler", "epoch"))
    a = p.parse_args()
    torch.set_num_threads(1)
    {"plain": plain, "accelerate": accelerate_loop, "hf": hf, "lightning": lightning}[a.framework](a.out, a.resume,
                                                                                                 a.bug)


if __name__ == "__main__":
    main()
