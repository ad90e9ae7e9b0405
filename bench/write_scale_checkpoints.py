"""The checkpoints of bench/scale_bench.cc, written by torch itself:
    python write_scale_checkpoints.py OUT_DIR MIB [LAYOUT ...]
OUT_DIR/{a,b}.safetensors (safetensors.torch.save_file), {a,b}.pt (torch.save) and
{a,b}_dcp/ (torch.distributed.checkpoint.save, one process), or only the LAYOUTs named
(safetensors, pt, dcp): 64 float32 tensors of MIB/64 MiB each, B equal to A but for one
element of tensor 32, moved by 1 ulp (the issue's pair)."""
import os
import sys
import warnings

import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import save_file

out, mib = sys.argv[1], int(sys.argv[2])
layouts = sys.argv[3:] or ["safetensors", "pt", "dcp"]
warnings.filterwarnings("ignore")  # DCP's note that no process group is running
per = (mib << 20) // 64 // 4
g = torch.Generator().manual_seed(0)
sd = {"layers.%d.weight" % k: torch.randn(per, generator=g) for k in range(64)}
for side in ("a", "b"):
    if side == "b":
        sd["layers.32.weight"].view(torch.int32)[per // 2] += 1
    if "safetensors" in layouts:
        save_file(sd, os.path.join(out, side + ".safetensors"))
    if "pt" in layouts:
        torch.save(sd, os.path.join(out, side + ".pt"))
    if "dcp" in layouts:
        dcp.save(sd, checkpoint_id=os.path.join(out, side + "_dcp"))
