"""Writes, with each library itself, a small sound output of every layout Lockstep reads, and a
catalog of them for the damage matrix (test_damage_matrix.py) and the diff matrix:
    HF_HUB_OFFLINE=1 .venv/bin/python generate.py --out OUT_DIR --lockstep BIN [--cache DIR]
Everything trains a tiny GPT-2 (tiny.py) on the CPU; nothing is downloaded. The libraries'
outputs depend only on this folder's scripts and python/requirements.lock, so they are made
once into --cache (a folder named by the hash of those) and reused; Lockstep's own outputs
are made with BIN every time. OUT_DIR/catalog.json lists each output:
    name        the layout
    library     who wrote it, with its version
    root        the output's folder (absolute)
    target      what a user points `lockstep inspect` at, relative to root
    ranks       how many processes wrote it
    rank_files  the files of its highest rank (multi-rank outputs), relative to root
"""
import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(SOURCE, "python"))


def version(package):
    return "%s %s" % (package, importlib.metadata.version(package))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv, **env):
    """Runs argv; a failure raises with the tail of what it printed."""
    p = subprocess.run(argv, env=dict(os.environ, **env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(argv), p.returncode, p.stderr[-4000:]))


def torchrun(*argv, **env):
    """Two processes under torchrun. A port taken between choosing and binding it (other
    tests run beside this one) fails the start: that is tried again on a fresh port, twice."""
    for attempt in range(3):
        try:
            return run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        str(free_port()), os.path.join(HERE, "multirank.py"), *argv], **env)
        except RuntimeError as e:
            if attempt == 2 or not any(s in str(e) for s in ("EADDRINUSE", "address already in use", "Address already",
                                                              "DistNetworkError", "port")):
                raise
            print("generate.py: retrying on another port after: %s" % str(e)[-300:], file=sys.stderr)


def entry(name, library, root, target=".", ranks=1, rank_files=()):
    return {"name": name, "library": library, "root": root, "target": target, "ranks": ranks,
            "rank_files": sorted(rank_files)}


def files_matching(root, predicate):
    out = []
    for folder, _, names in os.walk(root):
        for n in names:
            rel = os.path.relpath(os.path.join(folder, n), root)
            if predicate(rel):
                out.append(rel)
    return out


# --- the Hugging Face Trainer -------------------------------------------------------------

def hf_train(root, model=None, callbacks=(), finish=True, **extra):
    from transformers import Trainer, TrainingArguments
    from tiny import Tokens, tiny_gpt2
    args = TrainingArguments(output_dir=root, max_steps=4, save_steps=2, per_device_train_batch_size=4,
                             logging_steps=1, report_to=[], use_cpu=True, seed=0, disable_tqdm=True,
                             **extra)
    trainer = Trainer(model=model if model is not None else tiny_gpt2(), args=args, train_dataset=Tokens(),
                      callbacks=list(callbacks))
    trainer.train()
    if finish:  # the usual end of a script
        trainer.save_model()
        trainer.save_state()
    return trainer


def hf_trainer(root):
    hf_train(root)
    return entry("hf_trainer", version("transformers"), root)


def hf_callback(root):
    from lockstep.hf import LockstepCallback
    hf_train(root, callbacks=[LockstepCallback()])
    return entry("hf_callback", version("transformers") + ", lockstep.hf.LockstepCallback", root)


def hf_save_only_model(root):
    hf_train(root, finish=False, save_only_model=True)
    return entry("hf_save_only_model", version("transformers"), root)


def hf_bin(root):
    """transformers 4.x's save_safetensors=False: pytorch_model.bin in place of
    model.safetensors (torch.save of the state_dict, as 4.x's save_pretrained wrote it)."""
    import torch
    from transformers import GPT2LMHeadModel
    hf_train(root, finish=False)
    for step in (2, 4):
        checkpoint = os.path.join(root, "checkpoint-%d" % step)
        state = GPT2LMHeadModel.from_pretrained(checkpoint).state_dict()
        os.remove(os.path.join(checkpoint, "model.safetensors"))
        torch.save(state, os.path.join(checkpoint, "pytorch_model.bin"))
    return entry("hf_bin", version("transformers") + ", torch.save weights", root)


def peft_lora(root):
    import peft
    from tiny import tiny_gpt2
    model = peft.get_peft_model(tiny_gpt2(), peft.LoraConfig(r=2, lora_alpha=4, target_modules=["c_attn"]))
    hf_train(root, model=model)
    return entry("peft_lora", version("peft") + ", " + version("transformers"), root)


def hf_ddp(root):
    torchrun("ddp", root)
    return entry("hf_ddp", version("transformers") + ", 2 ranks (torchrun, Gloo)", root, ranks=2,
                 rank_files=files_matching(root, lambda p: os.path.basename(p) == "rng_state_1.pth"))


def hf_fsdp(root, ddp_root):
    """hf_ddp's checkpoint-4 as the Trainer writes it under FSDP with SHARDED_STATE_DICT:
    pytorch_model_fsdp_0/ and optimizer_0/ (accelerate's save_fsdp_model and
    save_fsdp_optimizer, 2 ranks) in place of model.safetensors and optimizer.pt."""
    checkpoint = os.path.join(root, "checkpoint-4")
    shutil.copytree(os.path.join(ddp_root, "checkpoint-4"), checkpoint)
    for name in ("model.safetensors", "optimizer.pt"):
        os.remove(os.path.join(checkpoint, name))
    run([sys.executable, os.path.join(HERE, "multirank.py"), "fsdp", checkpoint, str(free_port())])
    return entry("hf_fsdp", version("accelerate") + " FSDP, 2 ranks", root, ranks=2,
                 rank_files=files_matching(root, lambda p: os.path.basename(p) in ("rng_state_1.pth", "__1_0.distcp")))


def deepspeed(root, ddp_root, stage):
    """hf_ddp's checkpoint-4 as the Trainer writes it under DeepSpeed: the engine's
    save_checkpoint(checkpoint-4, tag="global_step4") in place of optimizer.pt; under ZeRO-3
    the weights live only in the shards."""
    checkpoint = os.path.join(root, "checkpoint-4")
    shutil.copytree(os.path.join(ddp_root, "checkpoint-4"), checkpoint)
    os.remove(os.path.join(checkpoint, "optimizer.pt"))
    if stage == 3:
        os.remove(os.path.join(checkpoint, "model.safetensors"))
    torchrun("deepspeed", str(stage), checkpoint, "global_step4", DS_ACCELERATOR="cpu")
    rank1 = lambda p: os.path.basename(p) == "rng_state_1.pth" or "zero_pp_rank_1_" in p  # noqa: E731
    return entry("deepspeed_zero%d" % stage, version("deepspeed") + ", 2 ranks", root, ranks=2,
                 rank_files=files_matching(root, rank1))


# --- accelerate, Lightning, torch ---------------------------------------------------------

def accelerate_state(root):
    """Accelerator.save_state with automatic checkpoint naming, after steps 2 and 4:
    checkpoints/checkpoint_0 and checkpoint_1, each model.safetensors, optimizer.bin,
    scheduler.bin, sampler.bin and random_states_0.pkl."""
    import torch
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration
    from tiny import Tokens, tiny_gpt2
    accelerator = Accelerator(cpu=True, project_config=ProjectConfiguration(project_dir=root,
                                                                            automatic_checkpoint_naming=True))
    model = tiny_gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.5, total_iters=4)
    loader = torch.utils.data.DataLoader(Tokens(), batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    for step, batch in enumerate(loader, 1):
        accelerator.backward(model(**batch).loss)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        if step % 2 == 0:
            accelerator.save_state()
    return entry("accelerate_state", version("accelerate"), root)


def lightning(root):
    """A LightningModule fit for 4 steps, a checkpoint every 2 (ModelCheckpoint, all kept),
    with Lightning's default logger: lightning_logs/version_0/checkpoints/epoch=0-step=N.ckpt."""
    import lightning as L
    import torch
    from tiny import Tokens, tiny_gpt2

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.model = tiny_gpt2()

        def training_step(self, batch, index):
            return self.model(**batch).loss

        def configure_optimizers(self):
            optimizer = torch.optim.AdamW(self.parameters(), lr=1e-3)
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.StepLR(optimizer, 2)}

    L.seed_everything(0, verbose=False)
    every = L.pytorch.callbacks.ModelCheckpoint(every_n_train_steps=2, save_top_k=-1)
    trainer = L.Trainer(max_steps=4, accelerator="cpu", devices=1, default_root_dir=root, callbacks=[every],
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Module(), torch.utils.data.DataLoader(Tokens(), batch_size=4))
    return entry("lightning", version("lightning"), root)


def dcp(root):
    """torch.distributed.checkpoint.save of a model and optimizer state_dict, one process."""
    import torch
    import torch.distributed.checkpoint as dcp
    from tiny import Tokens, tiny_gpt2
    model = tiny_gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = Tokens()[0]
    model(input_ids=batch["input_ids"][None], labels=batch["labels"][None]).loss.backward()
    optimizer.step()
    dcp.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, checkpoint_id=root)
    return entry("dcp", version("torch") + " torch.distributed.checkpoint", root)


def dcp_fsdp2(root):
    run([sys.executable, os.path.join(HERE, "multirank.py"), "fsdp2", root, str(free_port())])
    return entry("dcp_fsdp2", version("torch") + " FSDP2 + DCP, 2 ranks", root, ranks=2,
                 rank_files=files_matching(root, lambda p: os.path.basename(p).startswith("__1_")))


def torch_save(root):
    """A plain loop's torch.save of a dict: model, optimizer, scheduler, step and epoch."""
    import torch
    from tiny import tiny_gpt2
    model = tiny_gpt2()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(input_ids=torch.arange(8)[None], labels=torch.arange(8)[None]).loss.backward()
    optimizer.step()
    os.makedirs(root)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 1, "epoch": 0},
               os.path.join(root, "checkpoint.pt"))
    return entry("torch_save", version("torch") + " torch.save", root, target="checkpoint.pt")


def recorder_run(root):
    """tests/python/plain_loop.py: a loop recorded with lockstep.Recorder that saves its own
    checkpoints (state.pt in checkpoint-10 and checkpoint-20)."""
    run([sys.executable, os.path.join(HERE, "..", "plain_loop.py"), root, "0", "20"])
    return entry("recorder_run", "lockstep.Recorder, own torch.save checkpoints", root)


LIBRARY_OUTPUTS = ["hf_trainer", "hf_callback", "hf_save_only_model", "hf_bin", "peft_lora", "hf_ddp", "hf_fsdp",
                   "deepspeed_zero2", "deepspeed_zero3", "accelerate_state", "lightning", "dcp", "dcp_fsdp2",
                   "torch_save", "recorder_run"]


def make_library_outputs(folder):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    at = lambda name: os.path.join(folder, name)  # noqa: E731
    made = [hf_trainer(at("hf_trainer")), hf_callback(at("hf_callback")), hf_save_only_model(at("hf_save_only_model")),
            hf_bin(at("hf_bin")), peft_lora(at("peft_lora")), hf_ddp(at("hf_ddp"))]
    made += [hf_fsdp(at("hf_fsdp"), at("hf_ddp")), deepspeed(at("deepspeed_zero2"), at("hf_ddp"), 2),
             deepspeed(at("deepspeed_zero3"), at("hf_ddp"), 3)]
    made += [accelerate_state(at("accelerate_state")), lightning(at("lightning")), dcp(at("dcp")),
             dcp_fsdp2(at("dcp_fsdp2")), torch_save(at("torch_save")), recorder_run(at("recorder_run"))]
    assert [m["name"] for m in made] == LIBRARY_OUTPUTS
    return made


# --- Lockstep's own -----------------------------------------------------------------------

def lockstep_outputs(folder, binary):
    common = ["--max_steps", "8", "--save_steps", "4", "--seed", "3", "--quiet"]
    one = os.path.join(folder, "lockstep")
    two = os.path.join(folder, "lockstep_ddp")
    run([binary, "train", "--output_dir", one, *common])
    run([binary, "train", "--nproc_per_node", "2", "--output_dir", two, *common])
    return [entry("lockstep", "lockstep train", one),
            entry("lockstep_ddp", "lockstep train --nproc_per_node 2", two, ranks=2,
                  rank_files=files_matching(two, lambda p: os.path.basename(p) == "rng_state_1.json"))]


def cache_key():
    h = hashlib.sha256()
    for path in sorted(os.listdir(HERE)) + ["../plain_loop.py", "../../../python/requirements.lock"]:
        full = os.path.join(HERE, path)
        if path.endswith(".py") or path.endswith(".lock"):
            h.update(path.encode())
            with open(full, "rb") as f:
                h.update(f.read())
    return h.hexdigest()[:16]


def library_outputs(cache):
    """The libraries' outputs, made once per cache key (into a temporary folder, renamed
    into place when whole, so an interrupted run leaves nothing half made)."""
    folder = os.path.join(cache, cache_key())
    catalog = os.path.join(folder, "catalog.json")
    if os.path.exists(catalog):
        with open(catalog) as f:
            return json.load(f)
    os.makedirs(cache, exist_ok=True)
    work = tempfile.mkdtemp(dir=cache, prefix=".making-")
    try:
        made = make_library_outputs(work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    for m in made:
        m["root"] = os.path.join(folder, os.path.relpath(m["root"], work))
    with open(os.path.join(work, "catalog.json"), "w") as f:
        json.dump(made, f, indent=1)
    try:
        os.rename(work, folder)
    except OSError:  # another process made it first
        shutil.rmtree(work)
    with open(catalog) as f:
        return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--lockstep", required=True, help="the lockstep binary")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "lockstep", "real_outputs"))
    args = parser.parse_args()
    made = library_outputs(os.path.abspath(args.cache))
    out = os.path.abspath(args.out)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    made += lockstep_outputs(out, args.lockstep)
    with open(os.path.join(out, "catalog.json"), "w") as f:
        json.dump(made, f, indent=1)
    print("generated %d outputs: %s" % (len(made), ", ".join(m["name"] for m in made)))


if __name__ == "__main__":
    main()
