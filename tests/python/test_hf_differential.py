"""The reference trainer against the live Hugging Face Trainer, on random settings: a seeded
randomized differential test (ctest HfDifferential.*). Each case is TrainingArguments both
trainers take by the same names; the live Trainer runs it through hf_parity.py (a linear
classifier, as HF's example scripts run it), `lockstep train` through its --config. For each:
  refusals   both refuse the settings (at construction or while training), or neither
  lr         the learning rate of every optimizer step, as float64, bit for bit
  steps      global_step, max_steps, num_train_epochs and the final epoch
  state      trainer_state.json's fields and its logging_steps, eval_steps, save_steps
  log        log_history: at which steps the loss was logged and the evaluations ran, in order,
             with each entry's keys
  saves      the steps a checkpoint was saved at (save_strategy best: the first evaluation saves)
  rotation   HF's checkpoints after each save, replayed through the reference trainer's rule
             (the best comes from each trainer's own model); without a best, the same names
  results    the keys of train_results.json, eval_results.json and all_results.json, and
             runtimes rounded to 4 places, speeds to 3 (HF's speed_metrics)
Model numbers (losses, which checkpoint is best) differ by design: the models differ.
    LOCKSTEP_BIN=build/cli/lockstep LOCKSTEP_PARITY_SEED=7 pytest test_hf_differential.py
The seed (LOCKSTEP_PARITY_SEED, default below) and the case count (LOCKSTEP_PARITY_CASES)
are printed; a failing case prints its settings, to run again by hand."""
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

LOCKSTEP = os.environ.get("LOCKSTEP_BIN", "")
SEED = int(os.environ.get("LOCKSTEP_PARITY_SEED", "20261207"))
COUNT = int(os.environ.get("LOCKSTEP_PARITY_CASES", "50"))
SCHEDULERS = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt", "cosine_with_min_lr", "cosine_warmup_with_min_lr", "warmup_stable_decay",
              "reduce_lr_on_plateau"]


def scheduler_kwargs(rng, kind, base):
    if kind == "cosine_with_restarts":
        return {"num_cycles": rng.choice([1, 2, 3])}
    if kind == "polynomial":
        return {"power": rng.choice([1.0, 2.0]), "lr_end": base / 10}
    if kind == "cosine_with_min_lr":
        return {"min_lr_rate": rng.choice([0.0, 0.1, 0.5])}
    if kind == "cosine_warmup_with_min_lr":
        kwargs = {"min_lr_rate": rng.choice([0.05, 0.1])}
        if rng.random() < 0.5:
            kwargs["warmup_lr_rate"] = 0.1
        return kwargs
    if kind == "warmup_stable_decay":
        kwargs = {"num_decay_steps": rng.randint(1, 6), "decay_type": rng.choice(["linear", "cosine", "1-sqrt"]),
                  "warmup_type": rng.choice(["linear", "cosine", "1-sqrt"]), "min_lr_ratio": rng.choice([0.0, 0.1])}
        if rng.random() < 0.3:
            kwargs["num_stable_steps"] = rng.randint(0, 8)
        return kwargs
    if kind == "reduce_lr_on_plateau":  # never reduces: the lr then follows the models' own eval losses
        return {"patience": 1000}
    return {}


def interval(rng):
    """A step interval: an integer, a ratio of max_steps, now and then a refused 2.5."""
    r = rng.random()
    if r < 0.6:
        return rng.randint(1, 6)
    if r < 0.95:
        return rng.choice([0.1, 0.2, 0.25, 0.5])
    return 2.5


def random_case(rng, index):
    base = rng.choice([0.01, 0.05, 0.1])
    kind = rng.choice(SCHEDULERS)
    args = {"per_device_train_batch_size": rng.randint(1, 8), "per_device_eval_batch_size": rng.randint(1, 8),
            "gradient_accumulation_steps": rng.randint(1, 4), "num_train_epochs": rng.choice([1, 2, 3, 0.5, 1.5]),
            "learning_rate": base, "lr_scheduler_type": kind, "lr_scheduler_kwargs": scheduler_kwargs(rng, kind, base),
            "warmup_steps": rng.choice([0, 0, 1, 3, 0.1, 0.25]), "dataloader_drop_last": rng.random() < 0.25,
            "logging_strategy": rng.choice(["steps", "steps", "steps", "epoch", "no"]),
            "logging_steps": interval(rng), "logging_first_step": rng.random() < 0.2,
            "eval_strategy": rng.choice(["no", "steps", "steps", "epoch"]),
            "save_strategy": rng.choice(["no", "steps", "steps", "epoch", "best"])}
    if rng.random() < 0.3:
        args["max_steps"] = rng.randint(1, 25)
    if rng.random() < 0.6:
        args["eval_steps"] = interval(rng)
    if rng.random() < 0.2:
        args["eval_delay"] = rng.choice([1, 2, 0.5])
    if rng.random() < 0.1:
        args["eval_on_start"] = True
    args["save_steps"] = interval(rng)
    if rng.random() < 0.5:
        args["save_total_limit"] = rng.choice([0, 1, 2, 3])
    if rng.random() < 0.2:
        args["load_best_model_at_end"] = True
    if rng.random() < 0.3:
        args["metric_for_best_model"] = rng.choice(["loss", "accuracy", "eval_loss"])
        if args["metric_for_best_model"] == "accuracy":
            args["greater_is_better"] = True
    if rng.random() < 0.1:
        args["save_only_model"] = True
    return {"name": "random_%02d" % index, "args": args, "train_samples": rng.randint(5, 60),
            "eval_samples": rng.randint(1, 30)}


def edge_cases():
    """Each finding of issue 33 and each setting added for it, once."""
    base = {"per_device_train_batch_size": 4, "num_train_epochs": 2, "learning_rate": 0.01}

    def case(name, train=20, evaluate=12, **args):
        a = dict(base)
        a.update(args)
        return {"name": name, "args": a, "train_samples": train, "eval_samples": evaluate}

    best = {"eval_strategy": "steps", "save_strategy": "steps", "load_best_model_at_end": True}
    return [
        case("eval_at_a_last_step_off_the_interval", eval_strategy="steps", eval_steps=4, save_strategy="best",
             metric_for_best_model="loss", train=21),
        case("eval_steps_500_without_steps_eval", eval_strategy="no"),
        case("eval_steps_500_under_epoch_eval", eval_strategy="epoch"),
        case("drop_last_eval_smaller_than_a_batch_with_a_metric", dataloader_drop_last=True, eval_strategy="epoch",
             per_device_eval_batch_size=8, metric_for_best_model="loss", evaluate=5),
        case("drop_last_eval_smaller_than_a_batch", dataloader_drop_last=True, eval_strategy="epoch",
             per_device_eval_batch_size=8, evaluate=5),
        case("save_total_limit_0", save_strategy="steps", save_steps=2, save_total_limit=0),
        case("metric_without_evaluation", metric_for_best_model="loss"),
        case("load_best_without_eval_or_save", load_best_model_at_end=True, eval_strategy="no", save_strategy="no"),
        case("logging_steps_not_whole", logging_steps=2.5),
        case("load_best_mixing_ratio_and_absolute", eval_steps=0.25, save_steps=2, **best),
        case("load_best_ratios_not_multiples", eval_steps=0.3, save_steps=0.5, **best),
        case("logging_per_epoch", logging_strategy="epoch"),
        case("logging_first_step_only", logging_strategy="no", logging_first_step=True),
        case("eval_on_start_and_delay", eval_strategy="steps", eval_steps=2, eval_delay=4, eval_on_start=True),
        case("save_only_model", save_strategy="steps", save_steps=3, save_only_model=True),
        case("wsd", lr_scheduler_type="warmup_stable_decay", warmup_steps=2,
             lr_scheduler_kwargs={"num_decay_steps": 4, "decay_type": "cosine"}),
        case("cosine_warmup_with_min_lr", lr_scheduler_type="cosine_warmup_with_min_lr", warmup_steps=3,
             lr_scheduler_kwargs={"min_lr_rate": 0.1}),
        case("plateau_needs_evaluation", lr_scheduler_type="reduce_lr_on_plateau"),
        case("polynomial_warmup_over_every_step", lr_scheduler_type="polynomial", warmup_steps=10),
        case("plateau", lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="epoch",
             lr_scheduler_kwargs={"patience": 1000}),
    ]


CASES = edge_cases() + [random_case(random.Random(SEED * 1000 + i), i) for i in range(COUNT)]


def run_hf(case, root):
    """hf_parity.run_case, or what the Trainer raised."""
    import hf_parity
    try:
        return hf_parity.run_case(case, root), None
    except Exception as e:  # noqa: BLE001 - any refusal, at construction or while training
        return None, "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")


def run_lockstep(case, root):
    """`lockstep train` on the case; (its output directory, None) or (None, why it refused)."""
    out = os.path.join(root, "lockstep", case["name"])
    config = dict(case["args"], output_dir=out, model="mlp", seed=0, train_samples=case["train_samples"],
                  eval_samples=case["eval_samples"])
    config.setdefault("logging_steps", 1)
    path = os.path.join(root, case["name"] + ".json")
    with open(path, "w") as f:
        json.dump(config, f)
    p = subprocess.run([LOCKSTEP, "train", "--config", path], capture_output=True, text=True, timeout=300)
    if p.returncode == 2:
        return None, (p.stdout + p.stderr).strip()[-500:]
    assert p.returncode == 0, p.stdout + p.stderr
    saves = [int(m) for m in re.findall(r"saved .*?checkpoint-(\d+)", p.stdout + p.stderr)]
    return (out, saves), None


def entries(log_history):
    """Each log entry as (step, what, its keys): what is loss, eval or summary."""
    from hf_parity import log_kind
    return [(e["step"], log_kind(e), tuple(sorted(e))) for e in log_history]


def checkpoints(run):
    names = [n for n in os.listdir(run) if re.fullmatch(r"checkpoint-\d+", n)]
    return sorted(names, key=lambda n: int(n.split("-")[1]))


def rounded(results):
    for key, value in results.items():
        if key.endswith("_runtime"):
            assert round(value, 4) == value, (key, value)
        if key.endswith("_per_second"):
            assert round(value, 3) == value, (key, value)


@pytest.mark.skipif(not LOCKSTEP, reason="LOCKSTEP_BIN is not set")
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_reference_trainer_does_what_the_live_trainer_does(case):
    print("seed %d, case %s: %s" % (SEED, case["name"], json.dumps(case)))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    root = tempfile.mkdtemp(prefix="parity-")
    hf, hf_refused = run_hf(case, os.path.join(root, "hf"))
    ours, our_refusal = run_lockstep(case, root)
    assert (hf_refused is None) == (our_refusal is None), (
        "one refuses, the other does not:\n  HF: %s\n  lockstep: %s" % (hf_refused or "accepted",
                                                                      our_refusal or "accepted"))
    if hf_refused:
        return
    run, saves = ours
    state = json.load(open(os.path.join(run, "trainer_state.json")))
    records = [json.loads(line) for line in subprocess.run(
        ["sh", "-c", "zstdcat '%s' | tail -n +2" % os.path.join(run, "steps.jsonl.zst")], capture_output=True,
        text=True).stdout.splitlines() if line.strip()]
    lrs = [r["lr"] for r in records if r.get("kind", "step") == "step"]
    assert lrs == hf["lr"], "the lr of each step differs"
    for field in ("global_step", "max_steps", "num_train_epochs"):
        assert state[field] == hf[field], field
    assert math.isclose(state["epoch"], hf["epoch"], rel_tol=0, abs_tol=1e-12), "epoch"
    assert sorted(state) == hf["trainer_state_keys"], "trainer_state.json fields"
    for field in ("logging_steps", "eval_steps", "save_steps", "train_batch_size"):
        assert state[field] == hf["state"][field], field
    assert entries(state["log_history"]) == [tuple(e[:2]) + (tuple(e[2]),) for e in hf["log_entries"]], "log_history"
    args = case["args"]
    hf_saves = [s["step"] for s in hf["saves"]]
    if args.get("save_strategy") == "best":
        assert bool(saves) == bool(hf_saves), "saves under save_strategy best"
    else:
        assert saves == hf_saves, "the steps saved at"
    limit = args.get("save_total_limit") or 0
    tracks_best = bool(args.get("metric_for_best_model") or args.get("load_best_model_at_end") or
                       args.get("lr_scheduler_type") == "reduce_lr_on_plateau")
    if args.get("save_strategy") == "best":  # which evaluations were new bests is each model's own
        assert bool(checkpoints(run)) == bool(hf["checkpoints"]), "checkpoints left under save_strategy best"
    elif limit <= 0 or not tracks_best:
        assert checkpoints(run) == hf["checkpoints"], "the checkpoints left"
    else:
        assert len(checkpoints(run)) == len(hf["checkpoints"]), "how many checkpoints are left"
    for name, keys in hf["results"].items():
        mine = json.load(open(os.path.join(run, name)))
        assert sorted(mine) == keys, name
        rounded(mine)
