// Hostile input to inspect and the framework-free readers: every bad safetensors header,
// zip entries escaping the archive, invalid UTF-8, seeded mutants of every format, and
// JSON of the wrong types. Each is a named problem, never a crash or an exception.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>
#include "formats/safetensors.h"
#include "formats/zip_archive.h"

#include "formats/file_util.h"
#include "formats/json_file.h"
#include "inspect/audit.h"
#include "inspect/show.h"
#include "tests/inspect_helpers.h"
#include "tests/test_util.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace lockstep {
using namespace test;  // the helpers: Train, Audit, Find, HfRun, WriteSafetensors, ...

TEST(Safetensors, EveryBadHeaderIsNamed) {
  test::ScratchDir dir;
  const std::string p = dir.Join("bad.safetensors");
  const std::string ok_entry = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
  WriteSafetensors(p, "{" + ok_entry + "}", std::string(8, '\0'), 1000);
  ExpectCorrupt(HeaderOf(p), "runs past the end");
  WriteSafetensors(p, "{" + ok_entry + "}", std::string(8, '\0'), (200ll << 20));
  ExpectCorrupt(HeaderOf(p), "over the 100 MB limit");
  WriteSafetensors(p, "[" + ok_entry + "]", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "does not start with '{'");
  WriteSafetensors(
      p,
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
      std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "overlaps");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "hole of 4 bytes");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "run past the end of the data");
  WriteSafetensors(p, R"({"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "unknown dtype 'F31'");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "needs 12 bytes");
  WriteSafetensors(p, "{" + ok_entry + "}", std::string(12, '\0'));
  ExpectCorrupt(HeaderOf(p), "belong to none");
  test::WriteAll(p, "abc");
  ExpectCorrupt(HeaderOf(p), "too short");
  // Issue 33, finding 10: an overflowing shape was "not a list of sizes".
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})",
                   std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "larger than any tensor a file can hold");
  WriteSafetensors(p, R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", std::string(8, '\0'));
  ExpectCorrupt(HeaderOf(p), "holds -2, not a size");
}

// Bytes that are not UTF-8 reach messages and names (a safetensors header, a zip entry);
// the report must still print, as text and as JSON, with exit 1 or 2, never an abort.
TEST(Safetensors, InvalidUtf8ReachesTheReportWithoutACrash) {
  test::ScratchDir dir;
  WriteSafetensors(dir.Join("bad.safetensors"),
                   "{\"t\xff\xfe\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", std::string(4, '\0'));
  const std::string cmd =
      "cd " + dir.path() +
      " && python3 -c \"import zipfile;z=zipfile.ZipFile('x.pt','w');"
      "z.writestr(zipfile.ZipInfo('archive/data.pkl'),b'\\x80\\x02X\\x02\\x00\\x00\\x00\\xff\\xfe.');z.close()\"";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  for (const std::string file : {"bad.safetensors", "x.pt"}) {
    for (const std::string flags : {"", " --json"}) {
      const int status =
          std::system((std::string(LOCKSTEP_BIN) + " inspect " + dir.Join(file) + flags + " > /dev/null 2>&1").c_str());
      ASSERT_TRUE(WIFEXITED(status)) << file << flags;
      EXPECT_LE(WEXITSTATUS(status), 2) << file << flags;
    }
  }
}

// The fuzzing that found two aborts (type errors and invalid UTF-8), kept as a test:
// every mutant is reported, as a table or as problems, and never throws.
TEST(HostileFiles, SeededMutantsOfEveryFormatAreReportedNeverThrown) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  const std::string hf = HfRun() + "/checkpoint-16/";
  std::mt19937 gen(20261122);
  for (const std::string source :
       {hf + "model.safetensors", hf + "optimizer.pt", hf + "rng_state.pth", hf + "training_args.bin",
        run + "/checkpoint-16/model.h5", run + "/checkpoint-16/optimizer.h5"}) {
    const std::string data = test::ReadAll(source);
    const std::string mutant = dir.Join("mutant" + fs::path(source).extension().string());
    int with_problems = 0;
    for (int i = 0; i < 60; ++i) {
      test::WriteAll(mutant, test::Mutate(data, &gen));
      json report;
      std::string text;
      EXPECT_NO_THROW({
        if (ShowPath(mutant, ShowOptions(), &report).ok()) text = DumpJson(report, 2);
      }) << source
         << " mutant " << i;
      with_problems += !report["problems"].empty();
    }
    EXPECT_GT(with_problems, 0) << source;  // the mutations do reach the readers
  }
}

TEST(TorchArchive, EntriesEscapingTheArchiveAreRefused) {
  test::ScratchDir dir;
  for (const std::string name : {"../evil", "/abs/evil", "a/../../evil"}) {
    const std::string zip = dir.Join("x.pt");
    const std::string cmd = "cd " + dir.path() +
                            " && rm -f x.pt && python3 -c \"import zipfile;z=zipfile.ZipFile('x.pt','w');"
                            "z.writestr(zipfile.ZipInfo('" +
                            name + "'),'data');z.close()\"";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    std::vector<ZipEntry> entries;
    ExpectCorrupt(ListZip(zip, &entries), "escapes the archive");
  }
  test::WriteAll(dir.Join("y.pt"), "PK\x03\x04 not really a zip archive, only its first bytes");
  std::vector<ZipEntry> entries;
  ExpectCorrupt(ListZip(dir.Join("y.pt"), &entries), "no zip end-of-directory record");
}

// JSON that parses but holds the wrong types where the readers expect others: each case
// is a named problem, never an exception (json::value() throws on a type mismatch).
TEST(LockstepAudit, JsonOfTheWrongTypesIsNamedNotACrash) {
  test::ScratchDir dir;
  const std::string run = Train(dir.Join("run"));
  test::WriteAll(run + "/checkpoint-16/manifest.json", R"({"magic": 5, "files": "all"})");
  test::WriteAll(run + "/trainer_state.json", "[1, 2]");
  AuditReport r = Audit(run);
  EXPECT_EQ(Find(r, 16).status, "corrupt");
  EXPECT_NE(Find(r, 16).problems.at(0).find("not a Lockstep manifest"), std::string::npos) << Find(r, 16).problems[0];
  EXPECT_EQ(Find(r, 12).status, "complete");
  bool named = false;
  for (const auto& p : r.problems) named |= p.find("trainer_state.json: not a JSON object") != std::string::npos;
  EXPECT_TRUE(named) << AuditReportJson(r).dump(2);
  for (const std::string best : {"7", "\"../../\"", "\"\"", "\"/elsewhere/checkpoint-99/\""}) {
    test::WriteAll(run + "/trainer_state.json", "{\"best_model_checkpoint\": " + best + "}");
    r = Audit(run);
    EXPECT_FALSE(r.healthy()) << best;
    named = false;
    for (const auto& p : r.problems) named |= p.find("best_model_checkpoint") != std::string::npos;
    EXPECT_TRUE(named) << best << AuditReportJson(r).dump(2);
  }
  test::WriteAll(run + "/trainer_state.json", R"({"best_model_checkpoint": "/elsewhere/checkpoint-12/"})");
  r = Audit(run);
  EXPECT_EQ(r.findings["best_model_checkpoint"]["in_this_run"], "checkpoint-12");  // matched by name
  EXPECT_EQ(r.findings["best_model_checkpoint"]["exists"], true);
}

}  // namespace lockstep
