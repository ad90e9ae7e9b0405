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
    const TraceSlot& t = *trace_;
    torch::Tensor h = t("fc1", fc1_(x));  // [B, hidden]
    h = t("norm", norm_(h));
    h = t("relu", torch::relu(h));
    h = t("drop", drop_(h));
    torch::Tensor logits = t("fc2", fc2_(h));  // [B, C]
    BatchLoss out;
    out.loss_sum = t("loss", torch::nn::functional::cross_entropy(
                                 logits, y, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)));
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
  CausalSelfAttention(const TrainingArgs& a, std::shared_ptr<TraceSlot> trace, std::string name)
      : n_head_(a.n_head),
        trace_(std::move(trace)),
        name_(std::move(name)),
        c_attn_(register_module("c_attn", nn::Linear(a.n_embd, 3 * a.n_embd))),
        c_proj_(register_module("c_proj", nn::Linear(a.n_embd, a.n_embd))),
        attn_drop_(register_module("attn_drop", nn::Dropout(a.dropout))),
        resid_drop_(register_module("resid_drop", nn::Dropout(a.dropout))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t B = x.size(0), T = x.size(1), C = x.size(2), hs = C / n_head_;
    const TraceSlot& t = *trace_;
    auto qkv = t(name_ + ".c_attn", c_attn_(x)).split(C, 2);    // 3 x [B, T, C]
    auto q = qkv[0].view({B, T, n_head_, hs}).transpose(1, 2);  // [B, nh, T, hs]
    auto k = qkv[1].view({B, T, n_head_, hs}).transpose(1, 2);
    auto v = qkv[2].view({B, T, n_head_, hs}).transpose(1, 2);
    auto att = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(hs)));
    auto mask = torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(x.device())).triu(1);
    att = t(name_ + ".softmax", torch::softmax(att.masked_fill(mask, -INFINITY), -1));  // [B, nh, T, T]
    att = attn_drop_(att);
    auto y = torch::matmul(att, v).transpose(1, 2).contiguous().view({B, T, C});
    return t(name_, resid_drop_(t(name_ + ".c_proj", c_proj_(y))));
  }

 private:
  int64_t n_head_;
  std::shared_ptr<TraceSlot> trace_;
  std::string name_;  // "h.0.attn"
  nn::Linear c_attn_, c_proj_;
  nn::Dropout attn_drop_, resid_drop_;
};

class Block : public nn::Module {
 public:
  Block(const TrainingArgs& a, std::shared_ptr<TraceSlot> trace, std::string name)
      : trace_(trace),
        name_(name),
        ln_1_(register_module("ln_1", nn::LayerNorm(nn::LayerNormOptions({a.n_embd})))),
        attn_(register_module("attn", std::make_shared<CausalSelfAttention>(a, trace, name + ".attn"))),
        ln_2_(register_module("ln_2", nn::LayerNorm(nn::LayerNormOptions({a.n_embd})))),
        c_fc_(register_module("c_fc", nn::Linear(a.n_embd, 4 * a.n_embd))),
        c_proj_(register_module("c_proj", nn::Linear(4 * a.n_embd, a.n_embd))),
        drop_(register_module("drop", nn::Dropout(a.dropout))) {}

  torch::Tensor forward(torch::Tensor x) {  // [B, T, C] -> [B, T, C]
    const TraceSlot& t = *trace_;
    x = x + attn_->forward(t(name_ + ".ln_1", ln_1_(x)));
    torch::Tensor h = t(name_ + ".ln_2", ln_2_(x));
    h = t(name_ + ".mlp.gelu", torch::gelu(t(name_ + ".mlp.c_fc", c_fc_(h))));
    return t(name_, x + drop_(t(name_ + ".mlp.c_proj", c_proj_(h))));
  }

 private:
  std::shared_ptr<TraceSlot> trace_;
  std::string name_;  // "h.0"
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
      auto block = std::make_shared<Block>(a, trace_, "h." + std::to_string(i));
      h_->push_back(block);
      blocks_.push_back(block);
    }
    // GPT-2 initialisation: N(0, 0.02) weights, zero biases, drawn from the seeded global RNG.
    torch::NoGradGuard no_grad;
    for (auto& p : named_parameters()) {
      if (p.key().find("ln_") != std::string::npos) continue;  // LayerNorm keeps ones/zeros
      if (p.key().find("bias") != std::string::npos)
        p.value().zero_();
      else
        p.value().normal_(0.0, 0.02);
    }
  }

  BatchLoss Loss(const torch::Tensor& idx, const torch::Tensor& targets) override {
    const int64_t T = idx.size(1);
    auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kInt64).device(idx.device()));
    const TraceSlot& t = *trace_;
    torch::Tensor x = t("drop", drop_(t("wte", wte_(idx)) + t("wpe", wpe_(pos))));  // [B, T, C]
    for (auto& b : blocks_) x = b->forward(x);
    torch::Tensor logits = t("lm_head", lm_head_(t("ln_f", ln_f_(x))));  // [B, T, V]
    BatchLoss out;
    out.loss_sum = t("loss", torch::nn::functional::cross_entropy(
                                 logits.view({-1, logits.size(-1)}), targets.view({-1}),
                                 torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum)));
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
