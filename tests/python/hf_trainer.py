"""Small Hugging Face Trainer scripts, recorded with lockstep.hf.LockstepCallback:
    python hf_trainer.py --output_dir DIR [--resume_from_checkpoint CKPT] [--no-lockstep]
                         [--model mlp|gpt2|bert] [--masking] [--max_steps N] [--save_steps N]
                         [--grad_accum N] [--workers N] [--dropout P] [--save_only_model]
                         [--ignore_data_skip] [--samples N] [--scheduler NAME]
Models are built from configs with random weights, on synthetic data, on the CPU:
  mlp    an MLP with dropout 0.3 on 50 random samples (the default)
  gpt2   a 2-layer GPT-2 (vocabulary 64, 16 tokens a sample), dropout --dropout (0 by default)
  bert   a 2-layer BERT trained by masked-LM: DataCollatorForLanguageModeling masks 15% of the
         tokens with draws from torch's generator, as every MLM fine-tune does
Batch 4, gradient accumulation 3 (50 samples: windows of 3, 3, 3, 3 and 1 an epoch, so 5
optimizer steps), 3 epochs, a checkpoint every 3 steps. --masking makes the MLP's collator
draw from torch's generator too. Used by tests/python/hf_callback_test.cc and
tests/python/hf_trainer_matrix_test.cc, and as the HF example of docs/record-your-own-run.md."""
import argparse

import torch
from job_end import end_job
from transformers import Trainer, TrainingArguments, default_data_collator

from lockstep.hf import LockstepCallback

VOCAB, TOKENS = 64, 16


class Data(torch.utils.data.Dataset):
    def __init__(self, samples):
        g = torch.Generator().manual_seed(1)
        self.x, self.y = torch.randn(samples, 6, generator=g), torch.randn(samples, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "labels": self.y[i]}


class Tokens(torch.utils.data.Dataset):
    """Random token ids; a causal LM's labels are its inputs."""

    def __init__(self, samples, low=0, causal=True):
        self.ids = torch.randint(low, VOCAB, (samples, TOKENS), generator=torch.Generator().manual_seed(1))
        self.causal = causal

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]} if self.causal else {"input_ids": self.ids[i].tolist()}


class Mlp(torch.nn.Module):
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


def tiny_gpt2(dropout):
    from transformers import GPT2Config, GPT2LMHeadModel
    config = GPT2Config(vocab_size=VOCAB, n_positions=TOKENS, n_embd=32, n_layer=2, n_head=2,
                        resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout)
    return GPT2LMHeadModel(config)


def tiny_bert_mlm(dropout):
    """A BERT for masked-LM and its collator, with a word-level tokenizer built in memory."""
    from tokenizers import Tokenizer, models
    from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, PreTrainedTokenizerFast
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + ["w%d" % i for i in range(VOCAB - len(specials))])}
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                        mask_token="[MASK]")
    config = BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=TOKENS,
                        hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    collator = DataCollatorForLanguageModeling(tokenizer=tokenizer, mlm_probability=0.15)
    return BertForMaskedLM(config), collator, len(specials)


def model_data_collator(a):
    if a.model == "gpt2":
        return tiny_gpt2(a.dropout or 0.0), Tokens(a.samples), default_data_collator
    if a.model == "bert":
        model, collator, specials = tiny_bert_mlm(a.dropout or 0.0)
        return model, Tokens(a.samples, low=specials, causal=False), collator
    return Mlp(), Data(a.samples), masking_collator if a.masking else default_data_collator


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--output_dir", required=True)
    p.add_argument("--resume_from_checkpoint")
    p.add_argument("--no-lockstep", action="store_true")
    p.add_argument("--model", choices=("mlp", "gpt2", "bert"), default="mlp")
    p.add_argument("--masking", action="store_true")
    p.add_argument("--max_steps", type=int, default=-1)
    p.add_argument("--save_steps", type=int, default=3)
    p.add_argument("--grad_accum", type=int, default=3)
    p.add_argument("--workers", type=int, default=0)
    p.add_argument("--dropout", type=float)
    p.add_argument("--save_only_model", action="store_true")
    p.add_argument("--ignore_data_skip", action="store_true")
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--scheduler", default="linear")
    return p.parse_args()


def main():
    a = parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # the model's initial weights; Trainer seeds again with args.seed
    model, data, collator = model_data_collator(a)
    args = TrainingArguments(output_dir=a.output_dir, per_device_train_batch_size=4,
                             gradient_accumulation_steps=a.grad_accum, num_train_epochs=3, max_steps=a.max_steps,
                             learning_rate=1e-2, lr_scheduler_type=a.scheduler, max_grad_norm=0.5,
                             save_strategy="steps", save_steps=a.save_steps, save_only_model=a.save_only_model,
                             ignore_data_skip=a.ignore_data_skip, logging_steps=1, seed=0, use_cpu=True,
                             report_to="none", disable_tqdm=True, dataloader_num_workers=a.workers)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collator,
                      callbacks=[] if a.no_lockstep else [LockstepCallback()])
    trainer.train(resume_from_checkpoint=a.resume_from_checkpoint)
    if torch.distributed.is_initialized():
        end_job()


if __name__ == "__main__":
    main()
