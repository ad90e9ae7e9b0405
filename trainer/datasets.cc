#include "trainer/datasets.h"

#include <cmath>
#include <vector>

#include "formats/checksum.h"

namespace lockstep {
namespace {

// The data are a fixed task, independent of the training seed (like a real corpus).
constexpr uint64_t kTaskSeed = 0x4c6f636b73746570ull;  // "Lockstep"

uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class SampleRng {
 public:
  SampleRng(uint64_t split, uint64_t index) : state_(kTaskSeed ^ (split << 56) ^ (index * 0x2545f4914f6cdd1dull)) {}
  uint64_t Next() { return SplitMix64(&state_); }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }  // [0, 1)
  double Normal() {
    const double u1 = 1.0 - Uniform(), u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

 private:
  uint64_t state_;
};

Dataset MakeClusters(const TrainingArgs& a, int64_t n, uint64_t split) {
  // Class centres: one fixed draw per (class, feature).
  std::vector<float> centres(static_cast<size_t>(a.num_labels * a.input_dim));
  SampleRng centre_rng(/*split=*/255, /*index=*/0);
  for (auto& c : centres) c = static_cast<float>(1.5 * centre_rng.Normal());
  torch::Tensor x = torch::empty({n, a.input_dim}, torch::kFloat32);
  torch::Tensor y = torch::empty({n}, torch::kInt64);
  float* xp = x.data_ptr<float>();
  int64_t* yp = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    SampleRng rng(split, static_cast<uint64_t>(i));
    const int64_t label = static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(a.num_labels));
    yp[i] = label;
    for (int64_t f = 0; f < a.input_dim; ++f) {
      xp[i * a.input_dim + f] = centres[label * a.input_dim + f] + static_cast<float>(rng.Normal());
    }
  }
  return {x, y};
}

Dataset MakeMarkov(const TrainingArgs& a, int64_t n, uint64_t split) {
  // Each token has 4 likely successors (probabilities .5 .25 .15 .1): learnable, not trivial.
  constexpr int kFanout = 4;
  const double kCumulative[kFanout] = {0.5, 0.75, 0.9, 1.0};
  std::vector<int64_t> successors(static_cast<size_t>(a.vocab_size * kFanout));
  SampleRng table_rng(/*split=*/254, /*index=*/0);
  for (auto& s : successors) s = static_cast<int64_t>(table_rng.Next() % static_cast<uint64_t>(a.vocab_size));
  const int64_t t_len = a.block_size;
  torch::Tensor x = torch::empty({n, t_len}, torch::kInt64);
  torch::Tensor y = torch::empty({n, t_len}, torch::kInt64);
  int64_t* xp = x.data_ptr<int64_t>();
  int64_t* yp = y.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    SampleRng rng(split, static_cast<uint64_t>(i));
    int64_t tok = static_cast<int64_t>(rng.Next() % static_cast<uint64_t>(a.vocab_size));
    for (int64_t t = 0; t <= t_len; ++t) {
      if (t < t_len) xp[i * t_len + t] = tok;
      if (t > 0) yp[i * t_len + t - 1] = tok;
      const double u = rng.Uniform();
      int k = 0;
      while (k + 1 < kFanout && u >= kCumulative[k]) ++k;
      tok = successors[tok * kFanout + k];
    }
  }
  return {x, y};
}

void HashTensor(const torch::Tensor& t, Xxh3Stream* h) {
  h->Update(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
}

}  // namespace

DatasetPair MakeDatasets(const TrainingArgs& args) {
  DatasetPair d;
  if (args.model == "gpt") {
    d.name = "markov";
    d.train = MakeMarkov(args, args.train_samples, 0);
    d.eval = MakeMarkov(args, args.eval_samples, 1);
  } else {
    d.name = "clusters";
    d.train = MakeClusters(args, args.train_samples, 0);
    d.eval = MakeClusters(args, args.eval_samples, 1);
  }
  Xxh3Stream h;
  for (const auto* t : {&d.train.inputs, &d.train.targets, &d.eval.inputs, &d.eval.targets}) {
    HashTensor(*t, &h);
  }
  d.digest = h.HexDigest();
  return d;
}

}  // namespace lockstep
