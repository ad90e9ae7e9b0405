"""A DistributedDataParallel loop under torchrun (Gloo, CPU), recorded with lockstep.Recorder:
    torchrun --nproc_per_node N ddp_loop.py RUN_DIR STEPS [--resume CHECKPOINT_DIR] [--restart-epoch]
                                            [--step-sleep S]
64 samples, a DistributedSampler (seeded, shuffled) of batch 4 per rank, SGD, dropout. Every
rank's sample ids go to the Recorder, which gathers them to rank 0's one log. A checkpoint
every 4 steps, RUN_DIR/checkpoint-N (model, optimizer, each rank's generator state, the
sampler's position), written aside by rank 0 and renamed into place once every rank's file is
in.

--resume continues from CHECKPOINT_DIR: the sampler skips the batches the epoch had drawn,
unless --restart-epoch (the classic resume bug: the loader starts its epoch over, so its first
batches are drawn twice). A process that starts writes RUN_DIR/pids/<pid>, and first exits 3
if any process an earlier start of the run wrote there is still alive: the proof that an
interrupted run is gone, whole, before its resume starts. --step-sleep S sleeps S seconds a
step, so an interruption lands in the middle of the run."""
import glob
import os
import shutil
import sys
import time

import torch
import torch.distributed as dist
from job_end import end_job

import lockstep

run_dir, steps = sys.argv[1], int(sys.argv[2])
resume = sys.argv[sys.argv.index("--resume") + 1] if "--resume" in sys.argv else ""
sleep_s = float(sys.argv[sys.argv.index("--step-sleep") + 1]) if "--step-sleep" in sys.argv else 0.0

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
os.makedirs(os.path.join(run_dir, "pids"), exist_ok=True)
for path in glob.glob(os.path.join(run_dir, "pids", "*")):
    pid = int(os.path.basename(path))
    try:
        with open("/proc/%d/stat" % pid) as f:
            alive = f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        alive = False
    if alive and pid != os.getpid():
        print("process %d of an earlier start of this run is still alive" % pid, file=sys.stderr)
        sys.exit(3)
dist.barrier()  # every rank has looked before any writes its own pid
open(os.path.join(run_dir, "pids", str(os.getpid())), "w").close()

torch.manual_seed(0)
torch.set_num_threads(1)
x, y = torch.randn(64, 8), torch.randn(64, 1)
model = torch.nn.parallel.DistributedDataParallel(
    torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(0.1), torch.nn.Linear(16, 1)))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
sampler = torch.utils.data.distributed.DistributedSampler(range(64), num_replicas=world, rank=rank, shuffle=True,
                                                          seed=7)
per_epoch = len(sampler) // 4
start = 0
if resume:
    state = torch.load(os.path.join(resume, "state.pt"), weights_only=False)
    model.module.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    own = os.path.join(resume, "rng_%d.pt" % rank)
    torch.set_rng_state(torch.load(own if os.path.exists(own) else os.path.join(resume, "rng_0.pt")))
    start = state["step"]
    rec = lockstep.Recorder.resume(run_dir, start)
else:
    rec = lockstep.Recorder(run_dir, settings={"lr": 0.05, "batch_size": 4, "world_size": world}, dataset_size=64)

step = start
while step < steps:
    epoch = step // per_epoch
    sampler.set_epoch(epoch)
    order = list(sampler)
    skip = 0 if "--restart-epoch" in sys.argv else step % per_epoch
    for b in range(skip, per_epoch):
        if step >= steps:
            break
        rec.begin_step()
        ids = order[b * 4:(b + 1) * 4]
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[ids]), y[ids])
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        rec.end_step(step, batches=[ids], loss=loss.item(), lr=0.05, grad_norm=norm.item(),
                     epoch=epoch + (b + 1) / per_epoch)
        time.sleep(sleep_s)
        if step % 4 == 0:
            rec.flush()  # the log covers the checkpoint
            staging = os.path.join(run_dir, ".staging-%d" % step)
            if rank == 0:
                os.makedirs(staging, exist_ok=True)
            dist.barrier()
            torch.save(torch.get_rng_state(), os.path.join(staging, "rng_%d.pt" % rank))
            dist.barrier()
            if rank == 0:
                torch.save({"model": model.module.state_dict(), "optimizer": optimizer.state_dict(), "step": step},
                           os.path.join(staging, "state.pt"))
                final = os.path.join(run_dir, "checkpoint-%d" % step)
                if os.path.exists(final):  # a resume from an older checkpoint saves this step again
                    shutil.rmtree(final)
                os.rename(staging, final)
            dist.barrier()
rec.close()
end_job()
