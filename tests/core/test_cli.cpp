#include <catch2/catch.hpp>

#include <algorithm>

#include <trainmeter/trainmeter.hpp>

#include "support/test_support.hpp"

using trainmeter::test::run_cli;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;

namespace {
std::string make_report(const TempDir& dir) {
  trainmeter::Config c;
  c.run_name = "cli";
  c.output = dir / "cli.json";
  c.warmup_steps = 1;
  trainmeter::Session s(c);
  for (int i = 0; i < 20; ++i) auto st = s.step(16);
  return s.finish().path;
}
int lines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}
}  // namespace

TEST_CASE("summary and validate on a real report", "[cli]") {
  TempDir dir;
  const std::string path = make_report(dir);
  auto v = run_cli("validate " + path);
  CHECK(v.exit_code == 0);
  CHECK_THAT(v.output, Catch::Contains("valid"));
  auto s = run_cli("summary " + path);
  CHECK(s.exit_code == 0);
  CHECK_THAT(s.output, Catch::Contains("train: 20 steps (1 warm-up)") && Catch::Contains("p50") &&
                           Catch::Contains("samples/s"));
}

TEST_CASE("bad inputs give one line and a non-zero exit, never a crash", "[cli]") {
  TempDir dir;
  const std::string good = make_report(dir);
  write_file(dir / "malformed.json", "{\n  \"schema_version\": 1,\n  oops\n}\n");
  write_file(dir / "newer.json", "{\"schema_version\": 99}");
  write_file(dir / "array.json", "[1, 2]");
  auto doc = trainmeter::test::read_json(good);
  doc["phases"]["train"]["steps"] = "many";
  write_file(dir / "shape.json", doc.dump());
  struct Case {
    std::string args, expect;
    int code;
  };
  const Case cases[] = {
      {"summary " + dir / "missing.json", "cannot read", 2},
      {"summary " + dir / "malformed.json", "line 3, column 3", 2},
      {"validate " + dir / "newer.json", "schema_version 99 is newer", 2},
      {"summary " + dir / "array.json", "not a trainmeter report", 2},
      {"summary " + dir / "shape.json", "/phases/train/steps", 2},
      {"validate " + dir / "shape.json", "/phases/train/steps", 1},
      {"summary", "expected 1 argument", 2},
      {"summary --bogus x", "unknown option '--bogus'", 2},
      {"frobnicate", "unknown command", 2},
  };
  for (const Case& c : cases) {
    INFO(c.args);
    auto r = run_cli(c.args);
    CHECK(r.exit_code == c.code);
    CHECK_THAT(r.output, Catch::Contains(c.expect));
    if (c.args.rfind("validate " + dir / "shape", 0) != 0) CHECK(lines(r.output) == 1);
  }
}

TEST_CASE("help for the tool and every command", "[cli]") {
  auto top = run_cli("--help");
  CHECK(top.exit_code == 0);
  CHECK_THAT(top.output, Catch::Contains("summary") && Catch::Contains("validate"));
  for (const char* cmd : {"summary", "validate", "config"}) {
    INFO(cmd);
    auto r = run_cli(std::string(cmd) + " --help");
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::StartsWith(std::string("usage: trainmeter ") + cmd));
  }
}

TEST_CASE("docs/configuration.md is what the key table generates", "[cli][docs]") {
  auto r = run_cli("config --markdown");
  REQUIRE(r.exit_code == 0);
  const std::string doc =
      trainmeter::test::read_file(TRAINMETER_SOURCE_DIR "/docs/configuration.md");
  CHECK(doc ==
        r.output);  // regenerate: build/bin/trainmeter config --markdown > docs/configuration.md
}

TEST_CASE("config --effective: the values this environment yields; bad ones fail naming the key",
          "[cli][config]") {
  trainmeter::test::ScopedEnv a("TRAINMETER_WARMUP_STEPS", "7");
  trainmeter::test::ScopedEnv b("TRAINMETER_RUN_NAME", "effective-run");
  trainmeter::test::ScopedEnv c("TRAINMETER_EXPORTS", "csv, html");
  auto r = run_cli("config --effective");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("\nTRAINMETER_WARMUP_STEPS=7\n") &&
                           Catch::Contains("\nTRAINMETER_RUN_NAME=effective-run\n") &&
                           Catch::Contains("\nTRAINMETER_EXPORTS=csv,html\n") &&
                           Catch::Contains("\nTRAINMETER_SAMPLE_INTERVAL_MS=100\n"));  // a default
  // One line per key of the table.
  CHECK(lines(r.output) == static_cast<int>(trainmeter::config_keys().size()));
  trainmeter::test::ScopedEnv bad("TRAINMETER_SAMPLE_INTERVAL_MS", "0");
  r = run_cli("config --effective");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("TRAINMETER_SAMPLE_INTERVAL_MS") &&
                           Catch::Contains("invalid value '0'"));
}

TEST_CASE("validate --quiet: nothing printed when valid, the error when not", "[cli]") {
  TempDir dir;
  const std::string good = make_report(dir);
  auto r = run_cli("validate --quiet '" + good + "'");
  CHECK(r.exit_code == 0);
  CHECK(r.output.empty());
  auto doc = trainmeter::test::read_json(good);
  doc["phases"]["train"]["steps"] = "many";
  write_file(dir / "shape.json", doc.dump());
  r = run_cli("validate --quiet '" + good + "' '" + (dir / "shape.json") + "'");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("shape.json") && Catch::Contains("/phases/train/steps"));
  CHECK(r.output.find(good + ": valid") == std::string::npos);
}

TEST_CASE("recompute --currency: the new prices' currency in the cost section", "[cli][carbon]") {
  TempDir dir;
  const std::string path = make_report(dir);
  const double duration_h =
      trainmeter::test::read_json(path)["run"]["duration_s"].get<double>() / 3600;
  auto r = run_cli("recompute '" + path +
                   "' --intensity 100 --price-per-hour 3.6 --currency EUR --json");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.output);
  CHECK(j["cost"]["currency"] == "EUR");
  CHECK(j["cost"]["compute"].get<double>() == Approx(3.6 * duration_h));
  r = run_cli("recompute '" + path + "' --intensity 100 --price-per-hour 3.6 --currency EUR");
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains(" EUR\n"));
  r = run_cli("recompute '" + path + "' --intensity 100 --price-per-hour 3.6");
  CHECK_THAT(r.output, Catch::Contains(" USD\n"));  // the default without --currency
  r = run_cli("recompute '" + path + "' --intensity 100 --currency ''");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("--currency must not be empty"));
}
