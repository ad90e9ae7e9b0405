"""lockstep.hf.LockstepCallback: every optimizer step of a Hugging Face Trainer run, recorded.

    from lockstep.hf import LockstepCallback
    trainer = Trainer(model, args, train_dataset=ds, callbacks=[LockstepCallback()])

writes args.output_dir/steps.jsonl.zst (the step log lockstep.Recorder writes), so `lockstep
diff` says where two runs part and `lockstep verify-resume --cmd` checks the script's resume
step by step. Per optimizer step it records:
  batches    the sample ids of each micro-batch of the accumulation window, in order, as the
             train dataloader's batch sampler gave them (its class is swapped for a subclass
             that notes each batch; order, `len` and isinstance checks are unchanged)
  rng        torch CPU, CUDA, Python `random` and NumPy states at on_step_begin, which HF
             calls after it fetched the window's batches and before the first forward
  loss       the mean over the window's micro-batches of the loss the model returned (NaN
             where the model returns none: a compute_loss_func computes it outside)
  lr         the learning rate the optimizer step used (read before the scheduler steps)
  grad_norm  the gradients' total L2 norm as the optimizer saw them, i.e. after HF clipped
             them (callbacks see no earlier point); it fingerprints the gradients all the same
The callback reads and never draws: no generator moves, no tensor the run uses is written, so
a run with it is bit-identical to one without. Under torchrun or accelerate every rank records
its own batches and generators, gathered each step to rank 0, which writes the job's one log
(lockstep.Recorder's batches_other_ranks and rng_other_ranks): the coverage audit sees every
sample the job drew.

The event order it relies on is transformers' _inner_training_loop (4.46 to 5.x): on_step_begin
at a window's first micro-batch, on_substep_end after each other one but the last,
on_pre_optimizer_step after clipping, on_optimizer_step before the scheduler steps,
on_step_end after global_step += 1, then the save (on_save). On a resume HF skips
(global_step % updates_per_epoch) * gradient_accumulation_steps batches of the first epoch
through the same sampler; the callback drops as many. Importable without transformers (the
class then has no TrainerCallback base), so its contract test and benchmark run anywhere.
"""
from __future__ import annotations

import collections
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any, Protocol

import torch

from lockstep.recorder import STEP_LOG_FILE, Recorder

if TYPE_CHECKING:  # checked as the TrainerCallback it is where transformers is installed
    from torch.utils.data import DataLoader
    from torch.utils.hooks import RemovableHandle
    from transformers import TrainerCallback as _Base
else:
    try:
        from transformers import TrainerCallback as _Base
    except ImportError:  # tests/python/hf_callback_contract.py drives it without transformers
        _Base = object

# What the recorded grad_norm is: callbacks see the gradients only once HF clipped them.
GRAD_NORM_MEASURED = "after clipping"

# TrainingArguments that say where a run writes, not what it computes: two runs of one script
# into two directories must not differ in settings.
# The list is shared with C++ (settings/location_settings.h reads it through CMake).
with open(os.path.join(os.path.dirname(__file__), "location_settings.json")) as _f:
    _LOCATION_ARGS: tuple[str, ...] = tuple(json.load(_f))


class _TrainingArguments(Protocol):
    """What the callback reads of transformers' TrainingArguments; a stand-in with these will
    do. It also reads to_dict(), process_index and ignore_data_skip where the object has them."""

    @property
    def output_dir(self) -> str | None: ...

    @property
    def gradient_accumulation_steps(self) -> int: ...


class _TrainerState(Protocol):
    """What the callback reads of transformers' TrainerState."""

    @property
    def global_step(self) -> int: ...

    @property
    def epoch(self) -> float | None: ...


class _TrainerControl(Protocol):
    """What the callback reads of transformers' TrainerControl."""

    @property
    def should_save(self) -> bool: ...

    @property
    def should_training_stop(self) -> bool: ...


def _settings(args: _TrainingArguments) -> dict[str, bool | int | float | str | None]:
    raw: Mapping[str, object] = args.to_dict() if hasattr(args, "to_dict") else dict(vars(args))
    plain: dict[str, bool | int | float | str | None] = {}
    for key, value in raw.items():
        if key in _LOCATION_ARGS:
            continue
        plain[key] = value if isinstance(value, (bool, int, float, str, type(None))) else str(value)
    return plain


def _tap_batch_sampler(dataloader: object,
                       batches: collections.deque[list[int]]) -> tuple[Callable[[], None] | None, str]:
    """Makes `dataloader`'s batch sampler also append each batch it yields to `batches`.
    Returns (a function that undoes it, why it could not: "" on success)."""
    sampler = getattr(dataloader, "batch_sampler", None)
    if sampler is None:
        return None, "the train dataloader has no batch sampler (an IterableDataset)"
    base: type[Any] = getattr(type(sampler), "_lockstep_base", type(sampler))  # tapped by an earlier train()

    class Tapped(base):  # type: ignore[misc]  # a subclass of whatever class the sampler has
        _lockstep_base = base

        def __iter__(self) -> Iterator[list[int]]:
            for batch in base.__iter__(self):
                batches.append([int(i) for i in batch])
                yield batch

    Tapped.__name__, Tapped.__qualname__ = base.__name__, base.__qualname__
    try:
        sampler.__class__ = Tapped
    except TypeError as e:
        return None, "the batch sampler %s cannot be tapped: %s" % (base.__name__, e)

    def untap() -> None:
        sampler.__class__ = base
    return untap, ""


def _model_loss(output: object) -> torch.Tensor | None:
    """The loss in a model's output, as Trainer.compute_loss finds it, or None."""
    if isinstance(output, dict) or hasattr(output, "keys"):
        loss: torch.Tensor | None = output.get("loss") if hasattr(output, "get") else None
        return loss
    if isinstance(output, (tuple, list)) and output and torch.is_tensor(output[0]) and output[0].dim() <= 1:
        return output[0]
    return None


def _rank(args: _TrainingArguments) -> int:
    """The process's global rank: TrainingArguments.process_index, else torch.distributed's.
    (TrainerState.is_world_process_zero is read back from rank 0's trainer_state.json on a
    resume, so it is not trusted here.)"""
    if hasattr(args, "process_index"):
        return int(args.process_index)
    dist = torch.distributed
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _in_job() -> bool:
    """Whether torch.distributed connects this process to its job (the Recorder gathers then)."""
    return bool(torch.distributed.is_available() and torch.distributed.is_initialized())


class LockstepCallback(_Base):
    def __init__(self, run_dir: str | os.PathLike[str] | None = None, rng_full_state_every: int = 100,
                 dataset_size: int | None = None) -> None:
        """Records into `run_dir`, by default the Trainer's args.output_dir. `dataset_size`
        (by default the train dataloader's dataset's length) lets `lockstep inspect` say
        which sample ids an epoch never drew."""
        self._run_dir = run_dir
        self._every = rng_full_state_every
        self._dataset_size = dataset_size
        self._recorder: Recorder | None = None  # the rest is (re)set by on_train_begin, read while recording
        # the run
        self._batches: collections.deque[list[int]] = collections.deque()  # each batch the sampler gave, not yet used
        self._untap: Callable[[], None] | None = None  # removes the sampler's tap
        self._ids_known = False  # the sampler could be tapped
        self._skip = 0  # the batches a resume skips, still to drop
        self._first_epoch = True
        self._hook: RemovableHandle | None = None  # the model's forward hook
        # the step
        self._in_step = False  # between on_step_begin and on_step_end
        self._carried: list[list[int]] = []  # the batches an open window took from the last epoch
        self._micro_batches = 0
        self._loss_sum: torch.Tensor | None = None
        self._losses = 0
        self._grad_norm: torch.Tensor | None = None
        self._lr = float("nan")

    # --- the run --------------------------------------------------------------------------

    def on_train_begin(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                       model: torch.nn.Module | None = None, train_dataloader: DataLoader[object] | None = None,
                       **kwargs: object) -> None:
        self.close()
        if _rank(args) != 0 and not _in_job():  # no group to gather through: rank 0 records alone
            return
        run_dir = self._run_dir or args.output_dir
        if run_dir is None:  # TrainingArguments never leaves output_dir unset; a stand-in might
            raise TypeError("LockstepCallback: no run_dir, and args.output_dir is None")
        self._recorder = self._open(run_dir, args, state.global_step, self._size_of(train_dataloader))
        self._batches = collections.deque()
        self._untap, why = (_tap_batch_sampler(train_dataloader, self._batches) if train_dataloader is not None
                            else (None, "the Trainer passed no train dataloader"))
        self._ids_known = not why
        self._skip = (self._resume_skip(args, state.global_step, train_dataloader)
                      if self._ids_known and train_dataloader is not None else 0)
        self._first_epoch = True
        self._carried, self._micro_batches = [], 0
        self._hook = model.register_forward_hook(self._on_forward) if model is not None else None
        self._in_step = False
        if why:
            self._recorder.event("note", {"sample_ids": "unknown: " + why})

    def _size_of(self, dataloader: object) -> int | None:
        if self._dataset_size is not None:
            return self._dataset_size
        try:
            return len(dataloader.dataset)  # type: ignore[attr-defined]  # any loader: errors mean no size
        except (AttributeError, TypeError):  # an iterable dataset has no length
            return None

    def _open(self, run_dir: str | os.PathLike[str], args: _TrainingArguments, step: int,
              dataset_size: int | None) -> Recorder:
        settings = _settings(args)
        if step == 0:
            return Recorder(run_dir, settings=settings, rng_full_state_every=self._every, dataset_size=dataset_size,
                            grad_norm_measured=GRAD_NORM_MEASURED)
        if os.path.exists(os.path.join(run_dir, STEP_LOG_FILE)):
            return Recorder.resume(run_dir, step, rng_full_state_every=self._every)
        return Recorder(run_dir, settings=settings, rng_full_state_every=self._every, start_after=step,
                        dataset_size=dataset_size, grad_norm_measured=GRAD_NORM_MEASURED)

    @staticmethod
    def _resume_skip(args: _TrainingArguments, step: int, dataloader: Sized) -> int:
        """The batches HF skips in the first epoch of a resume at `step`, as
        _inner_training_loop computes them."""
        if step == 0 or getattr(args, "ignore_data_skip", False):
            return 0
        try:
            batches = len(dataloader)
        except TypeError:
            return 0
        accumulation = args.gradient_accumulation_steps
        updates_per_epoch = max(batches // accumulation + int(batches % accumulation > 0), 1)
        return (step % updates_per_epoch) * accumulation

    def on_epoch_begin(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                       **kwargs: object) -> None:
        if not self._recorder:
            return
        # A window the last epoch left open (no sync step ended it) keeps the batches it used:
        # HF adds the next window's gradients to them, and the record says so. The rest of
        # what an earlier epoch's iterator fetched is not this epoch's, whose iterator starts
        # after this event.
        self._carried = self._take(self._micro_batches) if self._in_step else []
        self._batches.clear()
        if not self._first_epoch:
            self._skip = 0
        self._first_epoch = False

    # --- a step ---------------------------------------------------------------------------

    def on_step_begin(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                      **kwargs: object) -> None:
        if not self._recorder:
            return
        if self._in_step:  # a window never ended: its micro-batches and the next are one step
            self._micro_batches += 1
            return
        self._recorder.begin_step()
        self._micro_batches = 1
        self._loss_sum, self._losses = None, 0
        self._grad_norm, self._lr = None, float("nan")
        self._in_step = True

    def _on_forward(self, module: torch.nn.Module, inputs: tuple[object, ...], output: object) -> None:
        if not (self._in_step and module.training and torch.is_grad_enabled()):
            return
        found = _model_loss(output)
        if found is None:
            return
        loss = found.detach().float().mean()  # a vector under nn.DataParallel
        self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
        self._losses += 1

    def on_substep_end(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                       **kwargs: object) -> None:
        if self._recorder:
            self._micro_batches += 1

    def on_pre_optimizer_step(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                              model: torch.nn.Module | None = None, **kwargs: object) -> None:
        if not self._recorder or model is None:
            return
        grads = [p.grad.detach() for p in model.parameters() if p.grad is not None]
        if grads:  # as clip_grad_norm_ computes it: the norm of the per-tensor norms
            norms = torch._foreach_norm(grads, 2.0)
            self._grad_norm = torch.linalg.vector_norm(torch.stack([n.to(norms[0].device) for n in norms]), 2.0)

    def on_optimizer_step(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                          optimizer: torch.optim.Optimizer | None = None, **kwargs: object) -> None:
        if self._recorder and optimizer is not None:
            self._lr = float(optimizer.param_groups[0]["lr"])

    def on_step_end(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                    **kwargs: object) -> None:
        if not self._recorder:
            return
        self._in_step = False
        batches = self._carried + self._take(self._micro_batches - len(self._carried))
        self._carried = []
        loss = float(self._loss_sum) / self._losses if self._losses and self._loss_sum is not None else math.nan
        norm = float(self._grad_norm) if self._grad_norm is not None else math.nan
        self._recorder.end_step(state.global_step, batches=batches, loss=loss, lr=self._lr, grad_norm=norm,
                                epoch=state.epoch)
        # DefaultFlowCallback, called before user callbacks, has decided whether HF saves now:
        # the log must cover a checkpoint before the checkpoint exists.
        if control.should_save or control.should_training_stop:
            self._recorder.flush()

    def _take(self, count: int) -> list[list[int]]:
        """The sample ids of the next `count` micro-batches the loop used."""
        if not self._ids_known:
            return []
        while self._skip > 0 and self._batches:  # the batches a resume skipped
            self._batches.popleft()
            self._skip -= 1
        return [self._batches.popleft() for _ in range(min(count, len(self._batches)))]

    def on_save(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                **kwargs: object) -> None:
        if self._recorder:
            self._recorder.flush()

    def on_train_end(self, args: _TrainingArguments, state: _TrainerState, control: _TrainerControl,
                     **kwargs: object) -> None:
        self.close()

    def close(self) -> None:
        """Ends the recording (on_train_end calls it): the log is closed, the model's hook and
        the sampler's tap are removed."""
        if self._untap is not None:
            self._untap()
            self._untap = None
        if self._hook is not None:
            self._hook.remove()
            self._hook = None
        if self._recorder:
            self._recorder.close()
            self._recorder = None
