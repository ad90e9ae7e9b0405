"""A Hugging Face Trainer run, recorded with lockstep.hf.LockstepCallback.

    python examples/hf_trainer/train.py --output_dir runs/hf
    python examples/hf_trainer/train.py --output_dir runs/hf --resume_from_checkpoint runs/hf/checkpoint-4

A tiny GPT-2 (2 layers, built from a config with random weights: nothing is downloaded, so it
runs with HF_HUB_OFFLINE=1) trained as a causal LM on random token ids, on the CPU: batch 4,
gradient accumulation 2, 3 epochs of 32 samples (4 optimizer steps an epoch, 12 in all), a
checkpoint every --save_steps steps. The one Lockstep line is `callbacks=[LockstepCallback()]`:
it records every optimizer step in OUTPUT_DIR/steps.jsonl.zst and changes nothing in the run.
Then read the run with the lockstep CLI:

    lockstep inspect runs/hf                # the Trainer's checkpoints by HF's rules, and the log
    lockstep diff runs/hf runs/hf2          # where two runs part, and why
    lockstep verify-resume --output_dir runs/verify \
        --cmd 'python examples/hf_trainer/train.py --output_dir {output_dir}' \
        --resume-arg '--resume_from_checkpoint {checkpoint}'
"""
import argparse

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from lockstep.hf import LockstepCallback

VOCAB, TOKENS = 64, 16


class RandomTokens(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Random token ids; a causal LM's labels are its inputs (the model shifts them)."""

    def __init__(self, samples: int) -> None:
        self.ids = torch.randint(0, VOCAB, (samples, TOKENS), generator=torch.Generator().manual_seed(1))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A Hugging Face Trainer run, recorded with lockstep.hf.LockstepCallback.")
    p.add_argument("--output_dir", required=True, help="the Trainer's output_dir: checkpoints and steps.jsonl.zst")
    p.add_argument("--resume_from_checkpoint", help="a checkpoint-N directory to continue from")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=32)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--max_steps", type=int, default=-1, help="> 0 overrides --epochs, as in TrainingArguments")
    p.add_argument("--save_steps", type=int, default=4)
    p.add_argument("--dropout", type=float, default=0.1)
    return p.parse_args()


def main() -> None:
    a = parse_args()
    torch.set_num_threads(1)  # the thread count decides the bits of a reduction
    torch.manual_seed(a.seed)  # the initial weights; the Trainer seeds again with args.seed
    config = GPT2Config(vocab_size=VOCAB, n_positions=TOKENS, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=VOCAB - 1, eos_token_id=VOCAB - 1,
                        resid_pdrop=a.dropout, embd_pdrop=a.dropout, attn_pdrop=a.dropout)
    args = TrainingArguments(output_dir=a.output_dir, per_device_train_batch_size=4, gradient_accumulation_steps=2,
                             num_train_epochs=a.epochs, max_steps=a.max_steps, learning_rate=1e-3,
                             save_strategy="steps", save_steps=a.save_steps, logging_steps=1, seed=a.seed,
                             use_cpu=True, report_to="none", disable_tqdm=True)
    trainer = Trainer(model=GPT2LMHeadModel(config), args=args, train_dataset=RandomTokens(a.samples),
                      callbacks=[LockstepCallback()])
    trainer.train(resume_from_checkpoint=a.resume_from_checkpoint)


if __name__ == "__main__":
    main()
