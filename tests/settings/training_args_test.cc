#include "settings/training_args.h"

#include <gtest/gtest.h>

namespace lockstep {
namespace {
std::string Problems(const TrainingArgs& a) { return ValidateTrainingArgs(a).message(); }
}  // namespace

TEST(TrainingArgs, DefaultsAreValidAndHfLike) {
  TrainingArgs a;
  EXPECT_TRUE(ValidateTrainingArgs(a).ok());
  EXPECT_EQ(a.learning_rate, 5e-5);
  EXPECT_EQ(a.lr_scheduler_type, "linear");
  EXPECT_EQ(a.seed, 42);
}

TEST(TrainingArgs, BatchSizeZeroIsRefused) {
  TrainingArgs a;
  a.per_device_train_batch_size = 0;
  EXPECT_NE(Problems(a).find("per_device_train_batch_size must be >= 1, got 0"), std::string::npos);
}

TEST(TrainingArgs, UnknownSchedulerIsRefused) {
  TrainingArgs a;
  a.lr_scheduler_type = "cosine_annealing";
  EXPECT_NE(Problems(a).find("unknown lr_scheduler_type 'cosine_annealing'"), std::string::npos);
}

TEST(TrainingArgs, LoadBestNeedsMatchingStrategiesAndSteps) {
  TrainingArgs a;
  a.load_best_model_at_end = true;
  a.eval_strategy = "epoch";
  a.save_strategy = "steps";
  EXPECT_NE(Problems(a).find("requires the save and eval strategy to match"), std::string::npos);
  a.eval_strategy = "steps";
  a.eval_steps = 3;
  a.save_steps = 5;
  EXPECT_NE(Problems(a).find("the saving steps to be a round multiple of the evaluation steps"), std::string::npos);
  a.save_steps = 6;
  EXPECT_TRUE(ValidateTrainingArgs(a).ok()) << Problems(a);
}

TEST(TrainingArgs, EveryProblemIsListed) {
  TrainingArgs a;
  a.gradient_accumulation_steps = 0;
  a.n_embd = 30;
  a.n_head = 4;
  a.model = "gpt";
  a.eval_strategy = "sometimes";
  const std::string p = Problems(a);
  EXPECT_NE(p.find("gradient_accumulation_steps"), std::string::npos);
  EXPECT_NE(p.find("n_embd (30) must be divisible by n_head (4)"), std::string::npos);
  EXPECT_NE(p.find("eval_strategy must be no, steps or epoch, got 'sometimes'"), std::string::npos);
}

TEST(TrainingArgs, ConfigJsonUsesTheSameNames) {
  TrainingArgs a;
  Status st = ApplyArgsJson({{"per_device_train_batch_size", 4},
                             {"lr_scheduler_kwargs", {{"num_cycles", 2}}},
                             {"save_total_limit", nullptr},
                             {"gradient_accumulation_steps", 2.0}},
                            "cfg.json", &a);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(a.per_device_train_batch_size, 4);
  EXPECT_EQ(a.gradient_accumulation_steps, 2);
  EXPECT_EQ(a.lr_scheduler_kwargs["num_cycles"], 2);
  EXPECT_FALSE(a.save_total_limit.has_value());
}

TEST(TrainingArgs, ConfigUnknownKeyAndWrongTypeAreRefused) {
  TrainingArgs a;
  Status st = ApplyArgsJson({{"fp16", true}}, "cfg.json", &a);
  EXPECT_NE(st.message().find("cfg.json: unknown setting 'fp16'"), std::string::npos) << st.message();
  st = ApplyArgsJson({{"learning_rate", "fast"}}, "cfg.json", &a);
  EXPECT_NE(st.message().find("learning_rate must be a number"), std::string::npos) << st.message();
  EXPECT_TRUE(ApplyArgsJson(nlohmann::json::array(), "cfg.json", &a).IsInvalidArgument());
}

TEST(TrainingArgs, TextFlagsParseStrictly) {
  TrainingArgs a;
  const auto& specs = TrainingArgSpecs();
  auto spec = [&](const std::string& n) {
    return *std::find_if(specs.begin(), specs.end(), [&](const ArgSpec& s) { return s.name == n; });
  };
  EXPECT_TRUE(spec("per_device_train_batch_size").set_text("12", &a).ok());
  EXPECT_EQ(a.per_device_train_batch_size, 12);
  EXPECT_FALSE(spec("per_device_train_batch_size").set_text("12x", &a).ok());
  EXPECT_TRUE(spec("load_best_model_at_end").set_text("True", &a).ok());
  EXPECT_TRUE(a.load_best_model_at_end);
  EXPECT_TRUE(spec("save_total_limit").set_text("none", &a).ok());
  EXPECT_FALSE(a.save_total_limit.has_value());
  EXPECT_FALSE(spec("lr_scheduler_kwargs").set_text("{bad", &a).ok());
}

TEST(TrainingArgs, JsonRoundTripCoversEveryKnob) {
  TrainingArgs a;
  a.seed = 7;
  a.metric_for_best_model = "accuracy";
  const nlohmann::json j = TrainingArgsToJson(a);
  EXPECT_EQ(j.size(), TrainingArgSpecs().size());
  TrainingArgs b;
  ASSERT_TRUE(ApplyArgsJson(j, "roundtrip", &b).ok());
  EXPECT_EQ(TrainingArgsToJson(b), j);
}

}  // namespace lockstep
