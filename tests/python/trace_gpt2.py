"""lockstep.trace on the tiny GPT-2 of the Trainer matrix (hf_trainer.py): one step of two
micro-batches, traced three times:
    python trace_gpt2.py OUT_DIR
  fp32.json, fp32_again.json   the same step twice: identical traces
  bf16.json                    the same step under CPU bf16 autocast: parts at the first
                               module autocast runs in bf16
  threads2.json                fp32 with 2 intra-op threads instead of 1
Used by tests/python/hf_trainer_matrix_test.cc."""
import os
import sys

import torch

import lockstep
from hf_trainer import TOKENS, VOCAB, tiny_gpt2


def traced_step(path, threads=1, autocast=False):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = tiny_gpt2(0.0)
    ids = torch.randint(0, VOCAB, (2, 4, TOKENS), generator=torch.Generator().manual_seed(1))
    with lockstep.trace(model, path, step=1):
        for micro_batch in ids:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = model(input_ids=micro_batch, labels=micro_batch).loss
            loss.backward()


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    traced_step(os.path.join(out, "fp32.json"))
    traced_step(os.path.join(out, "fp32_again.json"))
    traced_step(os.path.join(out, "bf16.json"), autocast=True)
    traced_step(os.path.join(out, "threads2.json"), threads=2)


if __name__ == "__main__":
    main()
