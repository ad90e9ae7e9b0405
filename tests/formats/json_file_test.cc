#include "formats/json_file.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace lockstep {

TEST(JsonFile, InvalidJsonNamesTheFile) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("bad.json"), "{\"a\": 1,");
  nlohmann::json j;
  Status st = ReadJsonFile(dir.Join("bad.json"), &j);
  ASSERT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("bad.json"), std::string::npos);
  EXPECT_NE(st.message().find("invalid JSON"), std::string::npos);
}

TEST(JsonFile, PythonsNanAndInfinitiesAreReadAsFloatsOutsideStringsOnly) {
  // What json.dump writes by default, and so HF's trainer_state.json once a loss diverges.
  nlohmann::json j;
  ASSERT_OK(ParseJson(R"({"loss": NaN, "grad_norm": Infinity, "m": [-Infinity, 1], "s": "NaN \" Infinity",)"
                      R"( "NaN": "-Infinity"})",
                      "trainer_state.json", &j));
  EXPECT_TRUE(std::isnan(j["loss"].get<double>()));
  EXPECT_EQ(j["grad_norm"].get<double>(), std::numeric_limits<double>::infinity());
  EXPECT_EQ(j["m"][0].get<double>(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(j["m"][1], 1);
  EXPECT_EQ(j["s"], "NaN \" Infinity") << "words inside strings are text";
  EXPECT_EQ(j["NaN"], "-Infinity");
  // Anything else bare is still not JSON.
  EXPECT_EQ(ParseJson(R"({"loss": NaNa})", "x.json", &j).code(), Status::Code::kCorruption);
  EXPECT_EQ(ParseJson(R"({"loss": nan})", "x.json", &j).code(), Status::Code::kCorruption);
}

// The parser quotes the bytes it last read: a damaged file's raw bytes must not reach a
// terminal (or make grep take the output for binary).
TEST(JsonFile, TheParsersQuoteOfADamagedFileIsPrintable) {
  nlohmann::json j;
  const Status st = ParseJson("{\"global_step\": 1\xff\x01}", "trainer_state.json", &j);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("1\\xff"), std::string::npos) << st.message();
  for (const unsigned char c : st.message()) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << st.message();
}

TEST(JsonFile, DeepNestingIsRefusedWithoutRecursion) {
  const std::string hostile(1000000, '[');
  nlohmann::json j;
  Status st = ParseJson(hostile, "hostile.json", &j);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("nests 1000000 levels"), std::string::npos) << st.message();
}

TEST(JsonFile, OversizedFileIsRefused) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("big.json"), "[" + std::string(2000, ' ') + "]");
  JsonLimits limits;
  limits.max_bytes = 1000;
  nlohmann::json j;
  Status st = ReadJsonFile(dir.Join("big.json"), &j, limits);
  ASSERT_TRUE(st.IsCorruption());
  EXPECT_NE(st.message().find("over the limit"), std::string::npos);
}

TEST(JsonFile, InvalidUtf8IsReplacedWhenDumpedNotThrown) {
  // A name read from a hostile archive: json::dump() throws type_error 316 on it.
  const nlohmann::json j = {{"entry", std::string("evil\xff\xfe.pkl")}};
  EXPECT_THROW(j.dump(), nlohmann::json::type_error);
  EXPECT_EQ(DumpJson(j), "{\"entry\":\"evil\xef\xbf\xbd\xef\xbf\xbd.pkl\"}");  // U+FFFD twice
}

TEST(JsonFile, FieldsOfTheWrongTypeFallBack) {
  const nlohmann::json j = nlohmann::json::parse(R"({"step": "7", "n": 3, "h": [1], "s": {}})");
  EXPECT_EQ(IntField(j, "step", -1), -1);
  EXPECT_EQ(IntField(j, "n", -1), 3);
  EXPECT_EQ(IntField(nlohmann::json::array(), "n", -1), -1);
  EXPECT_EQ(ArrayField(j, "h").size(), 1u);
  EXPECT_TRUE(ArrayField(j, "s").empty());
  EXPECT_TRUE(ArrayField("text", "h").empty());
}

TEST(JsonFile, MissingFileIsNotFound) {
  nlohmann::json j;
  EXPECT_TRUE(ReadJsonFile("/nonexistent/x.json", &j).IsNotFound());
}

TEST(JsonFile, WriteThenReadRoundTrips) {
  test::ScratchDir dir;
  const nlohmann::json v = {{"b", 1}, {"a", {1.5, "x", nullptr}}};
  ASSERT_TRUE(WriteJsonFile(dir.Join("v.json"), v).ok());
  nlohmann::json back;
  ASSERT_TRUE(ReadJsonFile(dir.Join("v.json"), &back).ok());
  EXPECT_EQ(back, v);
}

// Issue 33, finding 10: a 0-byte JSON file said the parser's raw text.
TEST(JsonFile, AnEmptyFileSaysItIsEmpty) {
  test::ScratchDir dir;
  test::WriteAll(dir.Join("a.json"), "");
  test::WriteAll(dir.Join("b.json"), " \n");
  nlohmann::json j;
  Status st = ReadJsonFile(dir.Join("a.json"), &j);
  EXPECT_TRUE(st.IsCorruption());
  EXPECT_EQ(st.message(), dir.Join("a.json") + ": empty (0 bytes), not JSON: cut short, or never written");
  st = ReadJsonFile(dir.Join("b.json"), &j);
  EXPECT_NE(st.message().find("holds only whitespace"), std::string::npos) << st.message();
}

}  // namespace lockstep
