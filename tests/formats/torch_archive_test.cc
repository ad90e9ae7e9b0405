// torch.save archives and pickles read as data (formats/pickle_data.h, torch_archive.h):
// the fixtures were written by torch itself (fixtures/torch/make_fixtures.py) and by
// transformers 5.17 (fixtures/hf); hostile pickles are refused by name, never followed.
#include "formats/torch_archive.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "formats/pickle_data.h"
#include "tests/test_util.h"

namespace lockstep {
namespace {

const std::string kTorch = std::string(LOCKSTEP_FIXTURES_DIR) + "/torch/";

std::vector<float> Floats(const std::vector<uint8_t>& bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST(TorchArchive, NamesTensorsByTheirPlaceInThePickle) {
  TorchArchive a;
  ASSERT_OK(ReadTorchArchive(kTorch + "optimizer_lr01.pt", &a));
  std::vector<std::string> names;
  for (const auto& t : a.tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq", "state.1.step",
                                             "state.1.exp_avg", "state.1.exp_avg_sq"}));
  EXPECT_EQ(a.values["param_groups"][0]["lr"], 0.1);
  EXPECT_EQ(a.values["state"]["0"]["exp_avg"]["tensor"], "state.0.exp_avg");
  EXPECT_EQ(a.tensors[1].shape, (std::vector<int64_t>{2, 3}));
  std::vector<uint8_t> bytes;
  ASSERT_OK(ReadTorchTensor(a, a.tensors[0], &bytes));
  EXPECT_EQ(Floats(bytes), std::vector<float>{3.0f});
}

// Issue 21, finding 6: the same state_dict with its keys in another order has the same names.
TEST(TorchArchive, KeysInAnotherOrderNameTheSameTensors) {
  TorchArchive a, b;
  ASSERT_OK(ReadTorchArchive(kTorch + "model.pt", &a));
  ASSERT_OK(ReadTorchArchive(kTorch + "model_reordered.pt", &b));
  ASSERT_EQ(a.tensors.size(), 2u);
  ASSERT_EQ(b.tensors.size(), 2u);
  EXPECT_EQ(a.tensors[0].name, "fc.weight");
  EXPECT_EQ(b.tensors[1].name, "fc.weight");
  std::vector<uint8_t> x, y;
  ASSERT_OK(ReadTorchTensor(a, a.tensors[0], &x));
  ASSERT_OK(ReadTorchTensor(b, b.tensors[1], &y));
  EXPECT_EQ(x, y);
}

TEST(TorchArchive, ViewsAreGatheredFromTheirStorage) {
  TorchArchive a;
  ASSERT_OK(ReadTorchArchive(kTorch + "views.pt", &a));
  ASSERT_EQ(a.tensors.size(), 3u);
  std::vector<uint8_t> bytes;
  ASSERT_OK(ReadTorchTensor(a, a.tensors[0], &bytes));  // w.t()
  EXPECT_EQ(Floats(bytes), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  ASSERT_OK(ReadTorchTensor(a, a.tensors[1], &bytes));  // w[1]: an offset into w's storage
  EXPECT_EQ(Floats(bytes), (std::vector<float>{3, 4, 5}));
}

// Issue 21, finding 3: transformers' training_args.bin is a TrainingArguments object; its
// fields are its state. The old scanner took the output_dir value for a key.
TEST(TorchArchive, TrainingArgumentsFieldsAreTheirOwnKeys) {
  test::ScratchDir dir;
  ASSERT_EQ(std::system(
                ("tar xzf " + std::string(LOCKSTEP_FIXTURES_DIR) + "/hf/hf_gpt2_run.tar.gz -C " + dir.path()).c_str()),
            0);
  TorchArchive a;
  ASSERT_OK(ReadTorchArchive(dir.Join("hf_gpt2_run/checkpoint-16/training_args.bin"), &a));
  EXPECT_EQ(a.values["call"], "transformers.training_args.TrainingArguments");
  const nlohmann::json s = PickledScalars(a);
  EXPECT_EQ(s["output_dir"], "/tmp/hfpub/run");
  EXPECT_EQ(s["per_device_train_batch_size"], 5);
  EXPECT_EQ(s["learning_rate"], 0.001);
  EXPECT_EQ(s["save_total_limit"], 2);
  for (const auto& [k, v] : s.items()) EXPECT_NE(k.front(), '/') << k << " = " << v;
  EXPECT_GT(s.size(), 100u);
}

PickleData Evaluated(const std::string& bytes, Status* st) {
  PickleData d;
  *st = EvaluatePickle(bytes, "x.pkl", &d);
  return d;
}

TEST(PickleData, HostilePicklesAreRefusedByName) {
  Status st;
  // A list that contains itself: ]  q0  h0  a  .   (EMPTY_LIST, BINPUT 0, BINGET 0, APPEND, STOP)
  PickleData d = Evaluated(std::string("]q\x00h\x00"
                                       "a.",
                                       7),
                           &st);
  ASSERT_OK(st);
  nlohmann::json j;
  st = d.ToJson(d.root(), "x.pkl", nullptr, &j);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("contains itself"), std::string::npos) << st.message();
  // A list holding the previous one twice, 40 times over: 2^40 values if expanded.
  std::string bomb("]q\x00", 3);  // EMPTY_LIST, BINPUT 0
  for (int i = 0; i < 40; ++i)
    bomb += std::string(
        "(h\x00h\x00lq\x00"
        "0",
        9);  // MARK GET GET LIST PUT POP
  bomb += std::string("h\x00.", 3);
  d = Evaluated(bomb, &st);
  ASSERT_OK(st);
  st = d.ToJson(d.root(), "x.pkl", nullptr, &j);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  for (const std::string& bad : {std::string("h\x05."),
                                 std::string("X\xff\xff\xff\x7f"
                                             "abc"),
                                 std::string("a."), std::string("\x80\x02]"), std::string("\xfe")}) {
    Evaluated(bad, &st);
    EXPECT_TRUE(st.IsCorruption()) << st.ToString();
    EXPECT_NE(st.message().find("x.pkl"), std::string::npos) << st.message();
  }
}

// Found by the pickle fuzzer: a dict key that is not a string is shown as its JSON text, and
// a hostile pickle's strings need not be UTF-8. It used to throw out of ToJson (a crash).
TEST(PickleData, AKeyHoldingBytesThatAreNotUtf8IsShownNotThrown) {
  Status st;
  // PROTO 2, EMPTY_DICT, SHORT_BINUNICODE "\xae", TUPLE1, NONE, SETITEM, STOP: {("\xae",): None}
  PickleData d = Evaluated(std::string("\x80\x02}\x8c\x01\xae\x85Ns.", 10), &st);
  ASSERT_OK(st);
  nlohmann::json j;
  ASSERT_OK(d.ToJson(d.root(), "x.pkl", nullptr, &j));
  ASSERT_EQ(j.size(), 1u) << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  EXPECT_TRUE(j.begin().value().is_null());
}

TEST(TorchArchive, ATensorPastItsStorageIsCorruptionNamingIt) {
  // The views fixture with w's storage entry cut: every tensor over it now reaches past its end.
  test::ScratchDir dir;
  const std::string cut = dir.Join("cut.pt");
  ASSERT_EQ(std::system(("/usr/bin/python3 -c \"import zipfile,sys; a=zipfile.ZipFile('" + kTorch +
                         "views.pt'); "
                         "b=zipfile.ZipFile('" +
                         cut +
                         "','w'); [b.writestr(i, a.read(i)[:8] if '/data/' in i.filename "
                         "else a.read(i)) for i in a.infolist()]\"")
                            .c_str()),
            0);
  TorchArchive a;
  const Status st = ReadTorchArchive(cut, &a);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("reaches past the end of its storage"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("cut.pt"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace lockstep
