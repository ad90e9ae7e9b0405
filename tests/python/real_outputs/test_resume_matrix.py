"""The resume matrix: `lockstep verify-resume --cmd` on a loop of each framework
(resume_loops.py: a hand-written loop, accelerate, the Hugging Face Trainer, Lightning), each
with the usual end-of-script calls. A resume done right is BIT-EXACT, and each of three
planted bugs is DIVERGED at the first resumed step with its cause:
    rng        the generators are not restored          cause rng
    scheduler  the lr schedule starts over              cause lr
    epoch      the resumed epoch's data starts over     cause data
`lockstep diff` of the two run directories names the same divergence. Run by ctest
(RealOutputs.ResumeMatrix.<framework>):
    LOCKSTEP_BIN=build/cli/lockstep pytest test_resume_matrix.py -k plain"""
import json
import os
import subprocess
import sys
import tempfile

import pytest

LOCKSTEP = os.environ.get("LOCKSTEP_BIN", "")
HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "resume_loops.py")
EXPECTED = {None: None, "rng": "rng", "scheduler": "lr", "epoch": "data"}
FRAMEWORKS = ("plain", "accelerate", "hf", "lightning")


def lockstep(*args):
    p = subprocess.run([LOCKSTEP, *args], capture_output=True, text=True, timeout=900)
    return p.returncode, p.stdout + p.stderr


@pytest.mark.skipif(not LOCKSTEP, reason="LOCKSTEP_BIN is not set")
@pytest.mark.parametrize("bug", list(EXPECTED), ids=[b or "right" for b in EXPECTED])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_verdict_and_cause(framework, bug):
    work = tempfile.mkdtemp(prefix="resume-%s-" % framework)
    command = "env HF_HUB_OFFLINE=1 %s %s %s {output_dir}" % (sys.executable, SCRIPT, framework)
    resume_arg = "--resume {checkpoint}" + (" --bug " + bug if bug else "")
    code, out = lockstep("verify-resume", "--quiet", "--json", "--kill-random", "0", "--output_dir", work,
                         "--cmd", command, "--resume-arg", resume_arg)
    assert code in (0, 1), out
    report = json.loads(out[out.index("{"):])
    (variant,) = report["variants"]
    assert variant["counted"], variant
    assert variant["compared_by"] == "step log", variant
    if EXPECTED[bug] is None:
        assert code == 0 and report["bit_exact"], "a right resume is not BIT-EXACT: %s" % variant
        return
    assert code == 1 and not report["bit_exact"], "a planted %s bug went unseen: %s" % (bug, variant)
    first = variant["first_divergence"]
    assert first["cause"] == EXPECTED[bug], first
    assert first.get("also_causes", []) == [], "one bug, but more causes named: %s" % first
    resumed_step = int(variant["resumed_from"].rstrip("/").split("-")[-1].split("=")[-1].split(".")[0])
    assert first["step"] in (resumed_step + 1, resumed_step + 2), (resumed_step, first)
    code, out = lockstep("diff", "--json", os.path.join(work, "reference"), os.path.join(work, "sigterm"))
    assert code == 1, out
    assert json.loads(out)["first_divergence"] == first, "diff and verify-resume disagree"
