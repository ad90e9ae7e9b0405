#include "trainer/models.h"

#include <cmath>

namespace lockstep {
namespace nn = torch::nn;

std::set<std::string> Model::NoDecayParameterNames() {
  std::set<std::string> out;
  for (const auto& item : named_modules()) {
    if (dynamic_cast<nn::LayerNormImpl*>(item.value().get()) == nullptr) continue;
    for (const auto& p : item.value()->named_parameters(/*recurse=*/false)) {
      out.insert(item.key().empty() ? p.key() : item.key() + "." + p.key());
    }
  }
  for (const auto& p : named_parameters()) {
    if (p.key().find("bias") != std::string::npos) out.insert(p.key());
  }
  return out;
}

namespace {

class Mlp : public Model {
 public:
  explicit Mlp(const TrainingArgs& a)
      : fc1_(register_module("fc1", nn::Linear(a.input_dim, a.hidden_size))),
        norm_(register_module("norm", nn::LayerNorm(nn::LayerNormOptions({a.hidden_size})))),
        drop_(register_module("drop", nn::Dropout(a.dropout))),
        fc2_(register_module("fc2", nn::Linear(a.hidden_size, a.num_labels))) {}

  BatchLoss Loss(const torch::Tensor& x, const torch::Tensor& y) override {
    torch::Tensor h = drop_(torch::relu(norm_(fc1_(x))));  // [B, hidden]
    torch::Tensor logits = fc2_(h);                         // [B, C]
    BatchLoss out;
    out.loss_sum = torch::nn::functional::cross_entropy(
        logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    out.items = x.size(0);
    out.correct = logits.argmax(1).eq(y).sum().item<int64_t>();
    return out;
  }

 private:
  nn::Linear fc1_;
  nn::LayerNorm norm_;
  nn::Dropout drop_;
  nn::Linear fc2_;
};

class CausalSelfAttention : public nn::Module {
 public:
  CausalSelfAttention(const TrainingArgs& a)
      : n_head_(a.n_head),
        c_attn_(register_module("c_attn", nn::Linear(a.n_embd, 3 * a.n_embd))),
        c_proj_(register_module("c_proj", nn::Linear(a.n_embd, a.n_embd))),
        attn_drop_(register_module("attn_drop", nn::Dropout(a.dropout))),
        resid_drop_(register_module("resid_drop", nn::Dropout(a.dropout))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), hs = C / n_head_;
    auto qkv = c_attn_(x).split(C, 2);                                // 3 x [B, T, C]
    auto q = qkv[0].view({B, T, n_head_, hs}).transpose(1, 2);      // [B, nh, T, hs]
    auto k = qkv[1].view({B, T, n_head_, hs}).transpose(1, 2);
    auto v = qkv[2].view({B, T, n_head_, hs}).transpose(1, 2);
    auto att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(hs)));
    auto mask = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
    att = attn_drop_(torch::softmax(att.masked_fill(mask, -INFINITY), -1));  // [B, nh, T, T]
    auto y = torch::matmul(att, v).transpose(1, 2).contiguous().view({B, T, C});
    return resid_drop_(c_proj_(y));
  }

 private:
  int64_t n_head_;
  nn::Linear c_attn_, c_proj_;
  nn::Dropout attn_drop_, resid_drop_;
};

class Block : public nn::Module {
 public:
  explicit Block(const TrainingArgs& a)
      : ln_1_(register_module("ln_1", nn::LayerNorm(nn::LayerNormOptions({a.n_embd})))),
        attn_(register_module("attn", std::make_shared<CausalSelfAttention>(a))),
        ln_2_(register_module("ln_2", nn::LayerNorm(nn::LayerNormOptions({a.n_embd})))),
        c_fc_(register_module("c_fc", nn::Linear(a.n_embd, 4 * a.n_embd))),
        c_proj_(register_module("c_proj", nn::Linear(4 * a.n_embd, a.n_embd))),
        drop_(register_module("drop", nn::Dropout(a.dropout))) {}

  torch::Tensor forward(torch::Tensor x) {  // [B, T, C] -> [B, T, C]
    x = x + attn_->forward(ln_1_(x));
    return x + drop_(c_proj_(torch::gelu(c_fc_(ln_2_(x)))));
  }

 private:
  nn::LayerNorm ln_1_;
  std::shared_ptr<CausalSelfAttention> attn_;
  nn::LayerNorm ln_2_;
  nn::Linear c_fc_, c_proj_;
  nn::Dropout drop_;
};

class Gpt : public Model {
 public:
  explicit Gpt(const TrainingArgs& a)
      : wte_(register_module("wte", nn::Embedding(a.vocab_size, a.n_embd))),
        wpe_(register_module("wpe", nn::Embedding(a.block_size, a.n_embd))),
        drop_(register_module("drop", nn::Dropout(a.dropout))),
        ln_f_(register_module("ln_f", nn::LayerNorm(nn::LayerNormOptions({a.n_embd})))),
        lm_head_(register_module("lm_head", nn::Linear(nn::LinearOptions(a.n_embd, a.vocab_size).bias(false)))),
        h_(register_module("h", nn::ModuleList())) {
    for (int64_t i = 0; i < a.n_layer; ++i) {
      auto block = std::make_shared<Block>(a);
      h_->push_back(block);
      blocks_.push_back(block);
    }
    // GPT-2 initialisation: N(0, 0.02) weights, zero biases, drawn from the seeded global RNG.
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
      if (p.key().find("ln_") != std::string::npos) continue;  // LayerNorm keeps ones/zeros
      if (p.key().find("bias") != std::string::npos) p.value().zero_();
      else p.value().normal_(0.0, 0.02);
    }
  }

  BatchLoss Loss(const torch::Tensor& idx, const torch::Tensor& targets) override {
    const int64_t T = idx.size(1);
    auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(idx.device()));
    torch::Tensor x = drop_(wte_(idx) + wpe_(pos));  // [B, T, C]
    for (auto& b : blocks_) x = b->forward(x);
    torch::Tensor logits = lm_head_(ln_f_(x));       // [B, T, V]
    BatchLoss out;
    out.loss_sum = torch::nn::functional::cross_entropy(
        logits.view({-1, logits.size(-1)}), targets.view({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
    out.items = targets.numel();
    return out;
  }

 private:
  nn::Embedding wte_, wpe_;
  nn::Dropout drop_;
  nn::LayerNorm ln_f_;
  nn::Linear lm_head_;
  nn::ModuleList h_;                            // names the blocks h.0, h.1, ... as GPT-2
  std::vector<std::shared_ptr<Block>> blocks_;  // the same blocks, typed
};

}  // namespace

std::shared_ptr<Model> MakeModel(const TrainingArgs& args) {
  if (args.model == "gpt") return std::make_shared<Gpt>(args);
  return std::make_shared<Mlp>(args);
}

}  // namespace lockstep
