"""A small Hugging Face Trainer script, recorded with lockstep.hf.LockstepCallback:
    python3 hf_trainer.py --output_dir DIR [--resume_from_checkpoint CKPT] [--no-lockstep]
                          [--masking] [--max_steps N]
An MLP with dropout on 50 random samples: batch 4, gradient accumulation 3 (windows of 3, 3,
3, 3 and 1 an epoch), 3 epochs, a checkpoint every 3 steps, on the CPU. --masking makes the
collator draw from torch's generator, as DataCollatorForLanguageModeling's masking does.
Used by tests/hf_callback_test.cc where transformers is installed, and as the README's HF
example."""
import argparse

import torch
from transformers import Trainer, TrainingArguments, default_data_collator

from lockstep.hf import LockstepCallback


class Data(torch.utils.data.Dataset):
    def __init__(self, samples=50):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(samples, 6, generator=g), torch.randn(samples, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))

    def forward(self, x, labels=None):
        out = self.net(x)
        return {"loss": torch.nn.functional.mse_loss(out, labels), "logits": out}


def masking_collator(features):
    batch = default_data_collator(features)
    batch["x"] = batch["x"] * (torch.rand(batch["x"].shape) > 0.2)
    return batch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--output_dir", required=True)
    p.add_argument("--resume_from_checkpoint")
    p.add_argument("--no-lockstep", action="store_true")
    p.add_argument("--masking", action="store_true")
    p.add_argument("--max_steps", type=int, default=-1)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the model's initial weights; Trainer seeds again with args.seed
    args = TrainingArguments(output_dir=a.output_dir, per_device_train_batch_size=4, gradient_accumulation_steps=3,
                             num_train_epochs=3, max_steps=a.max_steps, learning_rate=1e-2, max_grad_norm=0.5,
                             save_strategy="steps", save_steps=3, logging_steps=1, seed=0, use_cpu=True,
                             report_to="none", disable_tqdm=True, dataloader_num_workers=0)
    trainer = Trainer(model=Model(), args=args, train_dataset=Data(),
                      data_collator=masking_collator if a.masking else default_data_collator,
                      callbacks=[] if a.no_lockstep else [LockstepCallback()])
    trainer.train(resume_from_checkpoint=a.resume_from_checkpoint)


if __name__ == "__main__":
    main()
