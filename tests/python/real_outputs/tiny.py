"""The model and data every generated output trains: a one-layer GPT-2 built from a config
(random init, nothing downloaded) on 16 random 8-token samples, on the CPU."""
import torch

VOCAB, TOKENS, SAMPLES = 64, 8, 16


def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=8, n_layer=1, n_head=2,
                                      bos_token_id=0, eos_token_id=0))


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n=SAMPLES):
        self.ids = torch.randint(0, VOCAB, (n, TOKENS), generator=torch.Generator().manual_seed(0))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}
