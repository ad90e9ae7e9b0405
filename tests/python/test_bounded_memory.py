"""`lockstep diff` and `inspect` of checkpoints larger than the memory the process may use
(and a DCP .metadata torch cannot load).

Each layout is written by the .venv's torch itself (torch.save, torch.distributed.checkpoint,
safetensors): a 256 MiB float32 matrix and views of its storage (rows, a column band whose
rows are contiguous but not adjacent, a transposed corner, the same tensor under a second
name). B is A with one element moved by 1 ulp. `lockstep` runs under an address-space limit
(RLIMIT_AS) below one checkpoint's size, so a reader that holds a tensor or a side whole
fails. For every tensor the diff's verdict and first differing element are torch's own
comparison of the two; a byte flipped in a .pt storage is an error naming the file. Run by
ctest (BoundedMemory.*)."""
import json
import os
import resource
import shutil
import subprocess
import tempfile

import pytest
import torch
import torch.distributed.checkpoint as dcp
from safetensors.torch import save_file

LOCKSTEP = os.environ.get("LOCKSTEP_BIN", "")
LIMIT = 200 << 20  # bytes of address space; each side holds 256 MiB and more
ROWS, COLS = 4096, 16384  # 256 MiB of float32
CHANGED = (3000, 2222)  # in the base, the column band and the row range; outside the corner


def state(base):
    return {"base": base, "rows": base[2990:3010], "band": base[:, 100:4196], "corner_t": base[:512, :512].t(),
            "tied": base, "bias": torch.arange(1000, dtype=torch.float32)}


def nudged(base):
    b = base.clone()
    b.view(torch.int32)[CHANGED] += 1
    return b


def write(layout, sd, path):
    if layout == "pt":
        torch.save(sd, path)
    elif layout == "dcp":
        dcp.save({k: v.contiguous() for k, v in sd.items()}, checkpoint_id=path)
    else:  # safetensors keeps no views: each tensor its own bytes, as save_file requires
        save_file({k: v.contiguous().clone() for k, v in sd.items() if k != "tied"}, path)


@pytest.fixture(scope="module")
def root():
    d = tempfile.mkdtemp(prefix="lockstep-bounded-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def base():
    return torch.randn(ROWS, COLS, generator=torch.Generator().manual_seed(0))


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def lockstep(*args):
    p = subprocess.run([LOCKSTEP, *args], capture_output=True, text=True, timeout=600, preexec_fn=limited)
    return p.returncode, p.stdout, p.stderr


NAME = {"pt": "model.pt", "dcp": "model_dcp", "safetensors": "model.safetensors"}


@pytest.mark.parametrize("layout", ["pt", "dcp", "safetensors"])
def test_one_ulp_is_found_in_every_view_under_a_memory_limit(root, base, layout):
    a, b, same = (os.path.join(root, "%s-%s-%s" % (layout, side, NAME[layout])) for side in "abc")
    sa, sb = state(base), state(nudged(base))
    write(layout, sa, a)
    write(layout, sb, b)
    write(layout, sa, same)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(a) for f in fs) \
        if os.path.isdir(a) else os.path.getsize(a)
    assert size > LIMIT, "the checkpoint must not fit in the limit"

    code, out, err = lockstep("diff", a, same)
    assert code == 0, out + err
    assert "IDENTICAL" in out

    code, out, err = lockstep("diff", a, b, "--json")
    assert code == 1, out + err
    report = {t["name"]: t for t in json.loads(out)["tensors"]}
    assert set(report) == set(sa) - ({"tied"} if layout == "safetensors" else set())
    for name, t in report.items():
        ia, ib = sa[name].contiguous().reshape(-1).view(torch.int32), sb[name].contiguous().reshape(-1).view(torch.int32)
        differing = (ia != ib).nonzero().flatten().tolist()
        if not differing:
            assert t["status"] == "equal", (name, t)
            continue
        assert t["status"] == "differ", (name, t)
        assert t["differing"] == len(differing), (name, t)
        assert t["first_index"] == differing[0], (name, t)
        assert t["max_ulp"] == 1, (name, t)


def test_a_flipped_storage_byte_is_an_error_naming_the_file(root, base):
    a, b = os.path.join(root, "crc-a.pt"), os.path.join(root, "crc-b.pt")
    write("pt", state(base), a)
    shutil.copy(a, b)
    with open(b, "r+b") as f:  # a byte of the base's storage, in the middle of the file
        f.seek(os.path.getsize(b) // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0x10]))
    code, out, err = lockstep("diff", a, b)
    assert code == 2, out + err
    assert "crc-b.pt" in err and "CRC-32" in err, err


@pytest.mark.parametrize("layout", ["pt", "dcp"])
def test_inspect_summarises_every_tensor_under_a_memory_limit(root, base, layout):
    path = os.path.join(root, "inspect-" + NAME[layout])
    sd = state(base)
    write(layout, sd, path)
    code, out, err = lockstep("inspect", path, "--json")
    assert code == 0, out + err
    rows = {t["name"]: t for t in json.loads(out)["tensors"]}
    for name, t in sd.items():
        assert rows[name]["numel"] == t.numel(), rows[name]
        assert rows[name]["max"] == t.max().item(), rows[name]
        assert rows[name]["min"] == t.min().item(), rows[name]
        assert rows[name]["mean"] == pytest.approx(t.double().mean().item(), rel=1e-9, abs=1e-9), rows[name]
    assert rows["tied"]["xxh3_128"] == rows["base"]["xxh3_128"]


def test_a_dcp_metadata_naming_a_module_torch_cannot_import_is_refused(root):
    """A changed byte in a module name of .metadata ("tnrch.distributed...") leaves a checkpoint
    torch cannot unpickle: inspect --verify names it (exit 1) and diff refuses it (exit 2), where
    both once called it healthy and identical. Small: no memory limit needed."""
    good, bad = os.path.join(root, "meta-good"), os.path.join(root, "meta-bad")
    dcp.save({"w": torch.arange(6.0)}, checkpoint_id=good)
    shutil.copytree(good, bad)
    path = os.path.join(bad, ".metadata")
    data = bytearray(open(path, "rb").read())
    at = data.index(b"torch.distributed.checkpoint")
    data[at + 1] ^= 0x01  # "torch" -> "tnrch"
    open(path, "wb").write(bytes(data))
    with pytest.raises(BaseException):  # DCP's CheckpointException is a BaseException
        dcp.load({"w": torch.zeros(6)}, checkpoint_id=bad)  # torch cannot load it either
    code, out, err = lockstep("inspect", "--verify", bad)
    assert code == 1 and ".metadata" in out + err and "tnrch" in out + err, out + err
    code, out, err = lockstep("diff", good, bad)
    assert code == 2 and "tnrch" in err, out + err
    code, out, err = lockstep("inspect", "--verify", good)
    assert code == 0, out + err
