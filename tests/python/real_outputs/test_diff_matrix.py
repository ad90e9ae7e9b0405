"""The diff matrix: `lockstep diff` on every output generate.py wrote with the real libraries.
For each: an identical copy is IDENTICAL (exit 0), and a copy with one float32 element of its
model weights moved by 1 ulp is DIFFERENT (exit 1), naming that tensor. The element is moved in
the format itself: safetensors and a Lockstep .h5 in place (the manifest's digest updated), a
torch.save archive (.pt, .bin, .ckpt, DeepSpeed's shards) loaded and saved again by torch, a
DCP chunk rewritten in place by torch (same length). Run by ctest (RealOutputs.DiffMatrix)."""
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile

import pytest
import torch

LOCKSTEP = os.environ.get("LOCKSTEP_BIN", "")
OUTPUTS = os.environ.get("LOCKSTEP_REAL_OUTPUTS", "")
CATALOG = json.load(open(os.path.join(OUTPUTS, "catalog.json"))) if OUTPUTS else []


def lockstep(*args):
    p = subprocess.run([LOCKSTEP, *args], capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr


def bump(word):
    """One float32's bits moved by 1 ulp (away from zero)."""
    return struct.pack("<I", struct.unpack("<I", word)[0] + 1)


def nudge_safetensors(path):
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        name, info = next((k, v) for k, v in sorted(header.items()) if k != "__metadata__" and v["dtype"] == "F32")
        at = 8 + n + info["data_offsets"][0]
        f.seek(at)
        word = f.read(4)
        f.seek(at)
        f.write(bump(word))
    return name


def first_float(value, prefix=""):
    """(name, tensor) of the first float32 tensor in a nested state, by sorted key."""
    if isinstance(value, torch.Tensor):
        return (prefix, value) if value.dtype == torch.float32 and value.numel() > 0 else None
    items = sorted(value.items(), key=lambda kv: str(kv[0])) if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, (list, tuple)) else [])
    for k, v in items:
        found = first_float(v, "%s.%s" % (prefix, k) if prefix else str(k))
        if found:
            return found
    return None


def nudge_torch(path):
    state = torch.load(path, weights_only=False, map_location="cpu")
    name, tensor = first_float(state)
    tensor.view(-1).view(torch.int32)[0] += 1
    torch.save(state, path)
    return name.split(".")[-1]


def nudge_dcp(folder):
    """The first chunk of the first float tensor in a DCP folder, rewritten by torch in place."""
    from torch.distributed.checkpoint import FileSystemReader
    metadata = FileSystemReader(folder).read_metadata()
    for index, info in sorted(metadata.storage_data.items(), key=lambda kv: (kv[0].fqn, str(kv[0].offset))):
        entry = metadata.state_dict_metadata[index.fqn]
        if getattr(entry, "properties", None) is None or entry.properties.dtype != torch.float32:
            continue
        path = os.path.join(folder, info.relative_path)
        with open(path, "r+b") as f:
            f.seek(info.offset)
            chunk = torch.load(io.BytesIO(f.read(info.length)), weights_only=True)
            chunk.view(-1).view(torch.int32)[0] += 1
            out = io.BytesIO()
            torch.save(chunk, out)
            assert len(out.getvalue()) == info.length, "torch.save changed the chunk's length"
            f.seek(info.offset)
            f.write(out.getvalue())
        return index.fqn.split(".")[-1]
    raise AssertionError("no float32 tensor in " + folder)


def nudge_h5(checkpoint):
    """model.h5 of a Lockstep checkpoint: a tensor's first element, at the offset its manifest
    lists, and the manifest's digest of the file updated so the checkpoint stays sound."""
    import xxhash
    manifest_path = os.path.join(checkpoint, "manifest.json")
    manifest = json.load(open(manifest_path))
    entry = next(f for f in manifest["files"] if f["path"] == "model.h5")
    tensor = next(t for t in entry["tensors"] if t["dtype"] == "float32")
    path = os.path.join(checkpoint, "model.h5")
    with open(path, "r+b") as f:
        f.seek(tensor["offset"])
        word = f.read(4)
        f.seek(tensor["offset"])
        f.write(bump(word))
    entry["xxh3_128"] = xxhash.xxh3_128_hexdigest(open(path, "rb").read())
    with open(manifest_path, "w") as f:
        json.dump(manifest, f)
    return tensor["name"]


def newest_checkpoint(root):
    names = [n for n in os.listdir(root) if n.startswith("checkpoint-")]
    return os.path.join(root, max(names, key=lambda n: int(n.split("-")[1])))


def nudge(output, copy):
    """Moves one element of the output's model weights by 1 ulp; returns the tensor's name."""
    name = output["name"]
    target = os.path.join(copy, output["target"])
    if name == "lightning":
        ckpt = os.path.join(copy, "lightning_logs", "version_0", "checkpoints")
        return nudge_torch(os.path.join(ckpt, sorted(os.listdir(ckpt))[-1]))
    if name in ("torch_save",):
        return nudge_torch(target)
    if name == "dcp":
        return nudge_dcp(copy)
    if name == "dcp_fsdp2":
        return nudge_dcp(os.path.join(copy, "step-2"))
    if name == "accelerate_state":
        return nudge_safetensors(os.path.join(copy, "checkpoints", "checkpoint_1", "model.safetensors"))
    if name in ("lockstep", "lockstep_ddp"):
        return nudge_h5(newest_checkpoint(copy))
    checkpoint = newest_checkpoint(copy)
    if name == "hf_fsdp":
        return nudge_dcp(os.path.join(checkpoint, "pytorch_model_fsdp_0"))
    if name == "deepspeed_zero3":
        shard = os.path.join(checkpoint, "global_step4", "zero_pp_rank_0_mp_rank_00_optim_states.pt")
        return nudge_torch(shard)
    if name == "recorder_run":
        return nudge_torch(os.path.join(checkpoint, "state.pt"))
    for weights in ("model.safetensors", "adapter_model.safetensors"):
        if os.path.exists(os.path.join(checkpoint, weights)):
            return nudge_safetensors(os.path.join(checkpoint, weights))
    return nudge_torch(os.path.join(checkpoint, "pytorch_model.bin"))


@pytest.mark.skipif(not CATALOG, reason="LOCKSTEP_REAL_OUTPUTS is not set (ctest runs generate.py first)")
@pytest.mark.parametrize("output", CATALOG, ids=[o["name"] for o in CATALOG])
def test_identical_copy_and_one_ulp(output):
    scratch = tempfile.mkdtemp(prefix="diffmatrix-")
    try:
        same, moved = os.path.join(scratch, "same"), os.path.join(scratch, "moved")
        shutil.copytree(output["root"], same, symlinks=True)
        shutil.copytree(output["root"], moved, symlinks=True)
        original = os.path.normpath(os.path.join(output["root"], output["target"]))
        code, out = lockstep("diff", original, os.path.normpath(os.path.join(same, output["target"])))
        assert code == 0 and "IDENTICAL" in out, "an identical copy is not IDENTICAL:\n" + out
        tensor = nudge(output, moved)
        code, out = lockstep("diff", original, os.path.normpath(os.path.join(moved, output["target"])))
        assert code == 1 and "DIFFERENT" in out, "a tensor 1 ulp apart was not found:\n" + out
        assert tensor.split(".")[-1] in out, "the tensor that differs (%s) is not named:\n%s" % (tensor, out)
        assert "IDENTICAL" not in out, out
    finally:
        shutil.rmtree(scratch)
