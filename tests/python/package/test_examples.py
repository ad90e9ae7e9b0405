"""The runnable examples in examples/ run as their READMEs say: each trains in a temporary
directory with the project's Python (HF_HUB_OFFLINE=1: nothing is downloaded), records one
step log record per optimizer step, and `lockstep inspect --json` finds the run healthy.

The inspect half needs the CLI: $LOCKSTEP_BIN, else build/cli/lockstep of this checkout; where
neither exists it is skipped, saying so, and the runs are still checked.
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

REPO = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class Example:
    name: str  # its directory in examples/
    args: tuple[str, ...]  # beyond --output_dir
    steps: int  # optimizer steps the run takes with these arguments


EXAMPLES = (
    Example("python_loop", (), 24),  # 3 epochs of 64 samples, batch 8
    Example("hf_trainer", (), 12),  # 3 epochs of 32 samples, batch 4, accumulation 2
)


def python() -> str:
    """The project's environment (.venv, scripts/python-env.sh), else the one running pytest."""
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def lockstep_bin() -> Path | None:
    """The lockstep CLI: $LOCKSTEP_BIN, else build/cli/lockstep; None where neither exists."""
    candidates = [Path(os.environ["LOCKSTEP_BIN"])] if os.environ.get("LOCKSTEP_BIN") else []
    candidates.append(REPO / "build" / "cli" / "lockstep")
    return next((c for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


def step_log(run_dir: Path) -> list[dict[str, Any]]:
    """Every line of run_dir/steps.jsonl.zst (a sequence of zstd frames), the header first."""
    data = (run_dir / "steps.jsonl.zst").read_bytes()
    with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True) as reader:
        text = reader.read()
    return [json.loads(line) for line in text.decode("utf-8").splitlines()]


@pytest.fixture(scope="module", params=EXAMPLES, ids=lambda e: e.name)
def example_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Example, Path]:
    """Runs one example once, in a temporary directory, for the tests below."""
    example: Example = request.param
    work = tmp_path_factory.mktemp(example.name)
    run_dir = work / "run"
    env = dict(os.environ, HF_HUB_OFFLINE="1",
               PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "python"), os.environ.get("PYTHONPATH")) if p))
    script = REPO / "examples" / example.name / "train.py"
    done = subprocess.run([python(), str(script), "--output_dir", str(run_dir), *example.args], cwd=work, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}"
    return example, run_dir


def test_the_example_records_every_optimizer_step(example_run: tuple[Example, Path]) -> None:
    example, run_dir = example_run
    lines = step_log(run_dir)
    assert lines[0]["kind"] == "header"
    steps = [line["step"] for line in lines if line["kind"] == "step"]
    assert steps == list(range(1, example.steps + 1))


def test_lockstep_inspect_finds_the_run_healthy(example_run: tuple[Example, Path]) -> None:
    example, run_dir = example_run
    cli = lockstep_bin()
    if cli is None:
        pytest.skip("no lockstep CLI to inspect the run with: set LOCKSTEP_BIN, or build it (scripts/build.sh "
                    "makes build/cli/lockstep); the run itself was checked")
    done = subprocess.run([str(cli), "inspect", "--json", str(run_dir)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, f"lockstep inspect exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    report = json.loads(done.stdout)
    assert report["healthy"] is True, report["problems"]
    assert report["findings"]["step_log"]["records"] == example.steps
    assert report["findings"]["step_log"]["uncovered_checkpoints"] == []
