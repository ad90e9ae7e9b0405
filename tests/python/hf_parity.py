"""What the live Hugging Face Trainer does for given arguments, for the reference trainer's
parity test (tests/python/hf_parity_test.cc):
    python hf_parity.py CASES.json OUT.json
CASES.json is a list of {"name", "args": {TrainingArguments}, "train_samples",
"eval_samples"}. Each case trains a linear classifier on random data on the CPU, as HF's
example scripts run the Trainer (train, save_metrics("train"), save_state, evaluate,
save_metrics("eval")), and reports what does not depend on the model's numbers:
  lr             the learning rate each optimizer step used (read at on_optimizer_step,
                 after optimizer.step() and before the scheduler steps)
  global_step, epoch, max_steps, num_train_epochs   from the final trainer_state.json
  saves          at each save, after HF's rotation: the checkpoint-N left and the best one
  checkpoints    the checkpoint-N left at the end
  trainer_state_keys, log_keys   the fields of trainer_state.json and of its log entries
  results        each results file HF's example scripts write, with its keys
  state          trainer_state.json's logging_steps, eval_steps, save_steps, train_batch_size
  log_entries    each log_history entry: its step, what it is (loss, eval, summary), its keys
Model numbers (losses, which checkpoint is best) come from this run, so the test replays
HF's rotation decisions through the reference trainer's rule rather than comparing bests."""
import json
import os
import sys

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

INPUT, LABELS = 8, 4


class Data(torch.utils.data.Dataset):
    def __init__(self, samples, seed):
        g = torch.Generator().manual_seed(seed)
        self.x, self.y = torch.randn(samples, INPUT, generator=g), torch.randint(0, LABELS, (samples,), generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(INPUT, LABELS)

    def forward(self, x, labels=None):
        logits = self.fc(x)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}


def checkpoints(output_dir):
    names = [n for n in os.listdir(output_dir) if n.startswith("checkpoint-")]
    return sorted(names, key=lambda n: int(n.split("-")[1]))


class Watch(TrainerCallback):
    def __init__(self):
        self.lr, self.saves = [], []

    def on_optimizer_step(self, args, state, control, optimizer=None, **kwargs):
        self.lr.append(optimizer.param_groups[0]["lr"])

    def on_save(self, args, state, control, **kwargs):
        best = state.best_model_checkpoint
        self.saves.append({"step": state.global_step, "present": checkpoints(args.output_dir),
                           "best": os.path.basename(best) if best else None})


def accuracy(p):
    return {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())}


def run_case(case, root):
    output_dir = os.path.join(root, case["name"])
    torch.manual_seed(0)
    # The progress bar stays on, as by default: with disable_tqdm=True, transformers 5.17's
    # PrinterCallback pops total_flos from the very dict train() returns, so train_results.json
    # would lack it (the progress bar's callback pops it from a copy).
    settings = dict({"logging_steps": 1}, **case["args"])
    args = TrainingArguments(output_dir=output_dir, use_cpu=True, report_to="none", seed=0, **settings)
    train, evaluation = Data(case["train_samples"], 1), Data(case["eval_samples"], 2)
    watch = Watch()
    trainer = Trainer(model=Linear(), args=args, train_dataset=train, eval_dataset=evaluation,
                      compute_metrics=accuracy, callbacks=[watch])
    metrics = trainer.train().metrics
    metrics["train_samples"] = len(train)
    trainer.save_metrics("train", metrics)
    trainer.save_state()
    metrics = trainer.evaluate()
    metrics["eval_samples"] = len(evaluation)
    trainer.save_metrics("eval", metrics)
    with open(os.path.join(output_dir, "trainer_state.json")) as f:
        state = json.load(f)
    results = {}
    for name in ("train_results.json", "eval_results.json", "all_results.json"):
        with open(os.path.join(output_dir, name)) as f:
            results[name] = sorted(json.load(f))
    log_keys = sorted({tuple(sorted(e)) for e in state["log_history"]})
    return {"lr": watch.lr, "saves": watch.saves, "checkpoints": checkpoints(output_dir),
            **{k: state[k] for k in ("global_step", "epoch", "max_steps", "num_train_epochs")},
            "state": {k: state[k] for k in ("logging_steps", "eval_steps", "save_steps", "train_batch_size")},
            "log_entries": [[e["step"], log_kind(e), sorted(e)] for e in state["log_history"]],
            "trainer_state_keys": sorted(state), "log_keys": [list(k) for k in log_keys], "results": results}


def log_kind(entry):
    """A log_history entry is the training summary, an evaluation, or a logged loss."""
    if "train_runtime" in entry:
        return "summary"
    return "eval" if any(k.startswith("eval_") for k in entry) else "loss"


def main():
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    torch.set_num_threads(1)
    root = os.path.dirname(os.path.abspath(sys.argv[2]))
    out = {"cases": {c["name"]: run_case(c, root) for c in cases}}
    with open(sys.argv[2], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
