"""The damage matrix: `lockstep inspect --verify` on every output generate.py wrote with the
real libraries, sound and then damaged file by file. The rule, for every cell:
  sound      healthy, exit 0, nothing called a problem, and no file said to be verified that
             its format carries no checksum for
  truncated  the file is named in a problem, exit 1; or, for a file whose format carries no
  flipped    checksum, the output lists it as "not verifiable: no checksum" and never as
             verified (a changed byte in it cannot be seen)
  deleted    the file is named in a problem, exit 1; or the output is one its library also
             writes without that file (SOUND_WITHOUT, each with the library's reason)
  (a damaged file that is the target itself, a single torch.save file, may instead be
   unreadable input: exit 2 naming it)
  rank lost  (multi-rank outputs) the highest rank's files all deleted: one of them named,
             exit 1
  cut short  each checkpoint directory in turn left holding only its first file, as a save
             killed after it leaves it (the model weights, which the Trainer, accelerate and
             Lockstep write first; else its largest file): the checkpoint named, exit 1;
             or, where nothing in the output tells that save from a script's own format (no
             other checkpoint of its series), exit 0 with the verdict saying it was not judged
Run by ctest (RealOutputs.DamageMatrix) after RealOutputs.Generate:
    LOCKSTEP_BIN=build/cli/lockstep LOCKSTEP_REAL_OUTPUTS=build/real_outputs pytest test_damage_matrix.py
The table of outcomes (layout x damage) is printed at the end: docs/inspect.md shows it."""
import collections
import json
import os
import re
import shutil
import subprocess
import tempfile

import pytest

LOCKSTEP = os.environ.get("LOCKSTEP_BIN", "")
OUTPUTS = os.environ.get("LOCKSTEP_REAL_OUTPUTS", "")
CATALOG = json.load(open(os.path.join(OUTPUTS, "catalog.json"))) if OUTPUTS else []

# Files whose absence leaves an output its library also writes: (layout, regex on the path
# relative to the output's root) -> why.
SOUND_WITHOUT = {
    ("hf_trainer|hf_callback|hf_ddp|peft_lora", r"^trainer_state\.json$"):
        "trainer.save_state() is optional: without it the output_dir is as the Trainer leaves it",
    ("hf_callback", r"^steps\.jsonl\.zst$"): "the same Trainer run without LockstepCallback leaves exactly this",
    ("recorder_run", r"^steps\.jsonl\.zst$"): "the same loop without lockstep.Recorder leaves exactly this",
    ("hf_fsdp|deepspeed_zero2|deepspeed_zero3", r"^checkpoint-4/generation_config\.json$"):
        "save_pretrained writes it only for a model with a generation config, and this output has no other "
        "checkpoint to compare with",
    ("lightning", r"step=2\.ckpt$"): "ModelCheckpoint keeps only the newest by default (save_top_k=1), and no "
                                      "checkpoint records save_top_k",
    ("lightning", r"step=4\.ckpt$"): "a fit stopped after its first save leaves exactly this",
}

# Files that hold no training state, so inspect reads none of their bytes: any damage to them
# leaves the output sound. (layout, regex) -> why.
NOT_STATE = {
    ("lockstep|lockstep_ddp", r"^\.lockstep\.lock$"): "the writers' lock: it names who held it, and whoever "
                                                      "writes the run next takes it anew",
}

DAMAGES = ("truncated", "flipped", "deleted")


def lockstep(*args, cwd=None):
    p = subprocess.run([LOCKSTEP, *args], capture_output=True, text=True, timeout=120, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


def files_of(root):
    out = []
    for folder, _, names in os.walk(root):
        for n in names:
            out.append(os.path.relpath(os.path.join(folder, n), root))
    return sorted(out)


def payload_middle(path):
    """The offset of one byte in the file's data: the middle of a zip archive's largest
    entry's bytes (torch.save archives: a tensor's storage), else of the whole file."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        import zipfile
        with zipfile.ZipFile(path) as z:
            info = max(z.infolist(), key=lambda i: i.compress_size)
        with open(path, "rb") as f:
            f.seek(info.header_offset + 26)
            name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        start = info.header_offset + 30 + name_len + extra_len
        if info.compress_size > 0:
            return start + info.compress_size // 2
    return size // 2


def carries_checksum(work, target, rel):
    """Whether the file `rel` (relative to the inspected path) has a checksum its format
    carries: a zip archive (CRC-32 per entry; DCP .distcp files are zip archives back to
    back), a zstd file whose frames carry checksums, or a file a Lockstep manifest.json
    beside it lists with its XXH3-128."""
    base = os.path.join(work, target)
    path = os.path.join(base, rel) if os.path.isdir(base) else base
    with open(path, "rb") as f:
        head = f.read(5)
    if head[:4] == b"PK\x03\x04":
        return True
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return bool(head[4] & 0x04)
    manifest = os.path.join(os.path.dirname(path), "manifest.json")
    if os.path.exists(manifest):
        listed = {f["path"]: f for f in json.load(open(manifest))["files"]}
        return os.path.basename(path) in listed and "xxh3_128" in listed[os.path.basename(path)]
    return False


def damage(path, how):
    if how == "deleted":
        os.remove(path)
    elif how == "truncated":
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
    else:
        at = payload_middle(path)
        with open(path, "r+b") as f:
            f.seek(at)
            byte = f.read(1)
            f.seek(at)
            f.write(bytes([byte[0] ^ 0x01]))


def listed(report, key):
    """Every entry the report lists under `key` at any depth ("verified", "unverifiable",
    "problems"), as text."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == key and isinstance(v, list):
                    found.extend(str(x) for x in v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(report)
    return found


def names(path_list, rel):
    """Whether `path_list` (paths relative to the inspected directory) holds the file `rel`."""
    return rel in path_list


def matches(rules, cell):
    """Whether a rule of `rules` ((layouts, regex) -> why) covers the cell's file."""
    return any(cell.layout in layouts.split("|") and re.search(pattern, cell.rel) for layouts, pattern in rules)


class Cell:
    def __init__(self, layout, damage_kind, rel):
        self.layout, self.damage, self.rel = layout, damage_kind, rel
        self.outcome, self.failure = None, None


def judge(out, work, target, cell, rank_files=()):
    """Runs inspect on the damaged copy and applies the rule; sets cell.outcome or cell.failure."""
    where = os.path.normpath(os.path.join(work, target))
    code, text, err = lockstep("inspect", where, "--verify")
    jcode, jtext, jerr = lockstep("inspect", where, "--verify", "--json")
    said = text + err
    try:
        report = json.loads(jtext) if jtext.strip() else {}
    except json.JSONDecodeError:
        cell.failure = "--json printed no JSON: " + jtext[:200]
        return
    if code != jcode:
        cell.failure = "exit %d in text but %d with --json" % (code, jcode)
        return
    if code not in (0, 1, 2) or "Traceback" in said or "terminate called" in said:
        cell.failure = "crashed (exit %d): %s" % (code, said[-300:])
        return
    damaged = list(rank_files) if rank_files else [cell.rel]
    problems = listed(report, "problems") + ([err] if code == 2 else [])
    named = [r for r in damaged if any(("/" + r) in p or p.startswith(r) for p in problems)]
    verified = listed(report, "verified")
    if any(names(verified, r) for r in damaged) and cell.damage != "deleted":
        cell.failure = "said verified: %s (exit %d)" % (cell.rel, code)
        return
    if code == 1 and named:
        cell.outcome = "named, exit 1"
        return
    if code == 2 and named and cell.rel == target:
        cell.outcome = "named, exit 2 (the target: unreadable input)"
        return
    if code == 0 and cell.damage in ("truncated", "flipped"):
        unverifiable = listed(report, "unverifiable")
        if names(unverifiable, cell.rel) and "no checksum" in said:
            cell.outcome = "not verifiable: no checksum"
            return
    if code == 0 and matches(NOT_STATE, cell):
        cell.outcome = "not state"
        return
    if code == 0 and cell.damage == "deleted" and matches(SOUND_WITHOUT, cell):
        cell.outcome = "sound without it"
        return
    verdict = "healthy" if code == 0 else "exit %d" % code
    cell.failure = "%s %s: %s, %s" % (cell.damage, cell.rel, verdict,
                                      "named" if named else "not named: " + said.strip()[-400:])


def run_layout(output):
    """Every cell of one output: sound, then each file damaged each way, restored between."""
    cells = []
    root, target = output["root"], output["target"]
    scratch = tempfile.mkdtemp(prefix="matrix-")
    work = os.path.join(scratch, "out")
    try:
        shutil.copytree(root, work, symlinks=True)
        sound = Cell(output["name"], "sound", target)
        where = os.path.normpath(os.path.join(work, target))
        code, text, err = lockstep("inspect", where, "--verify")
        _, jtext, _ = lockstep("inspect", where, "--verify", "--json")
        report = json.loads(jtext) if jtext.strip().startswith("{") else {}
        checksummed = set(listed(report, "verified"))
        bad_claims = [p for p in checksummed if not carries_checksum(work, target, p)]
        # The same output named from its own directory ("model.pt", not a path): the same verdict.
        bare_code, _, bare_err = lockstep("inspect", os.path.basename(where), "--verify", cwd=os.path.dirname(where))
        if code != 0 or listed(report, "problems"):
            sound.failure = "sound output not healthy (exit %d): %s" % (code, (text + err)[-600:])
        elif bare_code != code:
            sound.failure = "named from its directory: exit %d, not %d: %s" % (bare_code, code, bare_err[-300:])
        elif bad_claims:
            sound.failure = "said verified, though their format has no checksum: %s" % bad_claims
        else:
            sound.outcome = "healthy, exit 0"
        cells.append(sound)
        for rel in files_of(work):
            path = os.path.join(work, rel)
            keep = os.path.join(scratch, "keep")
            for how in DAMAGES:
                if how != "deleted" and os.path.getsize(path) == 0:
                    continue  # nothing to truncate or flip
                shutil.copy2(path, keep)
                damage(path, how)
                cell = Cell(output["name"], how, rel)
                judge(output, work, target, cell)
                cells.append(cell)
                shutil.copy2(keep, path)
        for name in checkpoint_dirs(report, work, target):
            cells.append(cut_short(output, work, target, name, scratch))
        if output["rank_files"]:
            kept = {}
            for rel in output["rank_files"]:
                kept[rel] = open(os.path.join(work, rel), "rb").read()
                os.remove(os.path.join(work, rel))
            cell = Cell(output["name"], "rank lost", ", ".join(output["rank_files"]))
            judge(output, work, target, cell, rank_files=output["rank_files"])
            cells.append(cell)
            for rel, data in kept.items():
                open(os.path.join(work, rel), "wb").write(data)
    finally:
        shutil.rmtree(scratch)
    return cells


def checkpoint_dirs(report, work, target):
    """The checkpoints the sound report lists that are directories of two files or more,
    relative to the output's root."""
    out = []
    for c in report.get("checkpoints", []):
        rel = os.path.normpath(os.path.join(target, c["name"]))
        if os.path.isdir(os.path.join(work, rel)) and len(files_of(os.path.join(work, rel))) >= 2:
            out.append(rel)
    return out


WEIGHTS_FIRST = ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "model.h5")


def cut_short(output, work, target, rel, scratch):
    """The checkpoint `rel` left holding only the file its save writes first (the weights,
    else its largest file); judged, then restored."""
    folder = os.path.join(work, rel)
    keep = os.path.join(scratch, "cut")
    shutil.copytree(folder, keep)
    files = files_of(folder)
    weights = [f for f in WEIGHTS_FIRST if f in files]
    first = weights[0] if weights else max(files, key=lambda f: os.path.getsize(os.path.join(folder, f)))
    for f in files:
        if f != first:
            os.remove(os.path.join(folder, f))
    cell = Cell(output["name"], "cut short", rel)
    where = os.path.normpath(os.path.join(work, target))
    code, text, err = lockstep("inspect", where)
    _, jtext, _ = lockstep("inspect", where, "--json")
    report = json.loads(jtext) if jtext.strip().startswith("{") else {}
    named = any(("/" + rel) in p for p in listed(report, "problems"))
    if code == 1 and named:
        cell.outcome = "named, exit 1"
    elif code == 0 and report.get("checkpoints_not_checked", 0) > 0 and "not judged" in text:
        cell.outcome = "not judged, exit 0"
    else:
        cell.failure = "cut short %s (only %s left): exit %d, %s" % (rel, first, code, (text + err).strip()[-400:])
    shutil.rmtree(folder)
    shutil.copytree(keep, folder)
    shutil.rmtree(keep)
    return cell


RESULTS = collections.OrderedDict()


@pytest.mark.skipif(not CATALOG, reason="LOCKSTEP_REAL_OUTPUTS is not set (ctest runs generate.py first)")
@pytest.mark.parametrize("output", CATALOG, ids=[o["name"] for o in CATALOG])
def test_every_cell(output):
    cells = run_layout(output)
    RESULTS[output["name"]] = cells
    failures = [c.failure for c in cells if c.failure]
    assert not failures, "%d of %d cells of %s are wrong:\n  %s" % (len(failures), len(cells), output["name"],
                                                                    "\n  ".join(failures))


def table(results):
    """layout x damage: how many cells, and how each was judged."""
    columns = ("sound",) + DAMAGES + ("rank lost", "cut short")
    lines = ["| layout | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for layout, cells in results.items():
        row = []
        for col in columns:
            mine = [c for c in cells if c.damage == col]
            if not mine:
                row.append("")
                continue
            counts = collections.Counter(c.outcome or "WRONG" for c in mine)
            row.append(", ".join("%d %s" % (n, k) for k, n in sorted(counts.items())))
        lines.append("| %s | %s |" % (layout, " | ".join(row)))
    return "\n".join(lines)


def teardown_module(module):
    if RESULTS:
        print("\n\ndamage matrix (lockstep inspect --verify):\n" + table(RESULTS))
