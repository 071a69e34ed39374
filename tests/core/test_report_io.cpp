#include <catch2/catch.hpp>

#include <cmath>

#include <trainmeter/trainmeter.hpp>

#include "report/json_io.hpp"
#include "report/schema.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using namespace trainmeter::detail;
using trainmeter::test::TempDir;

namespace {
json small_report(const TempDir& dir) {
  trainmeter::Config c;
  c.run_name = "io";
  c.output = dir / "io.json";
  trainmeter::Session s(c);
  for (int i = 0; i < 5; ++i) auto st = s.step(2);
  return trainmeter::test::read_json(s.finish().path);
}
}  // namespace

TEST_CASE("atomic writes replace the file whole and leave no temp files", "[report]") {
  TempDir dir;
  const std::string path = dir / "r.json";
  REQUIRE(write_file_atomic(path, "{\"a\": 1}\n") == "");
  REQUIRE(write_file_atomic(path, "{\"a\": 2}\n") == "");
  CHECK(trainmeter::test::read_file(path) == "{\"a\": 2}\n");
  CHECK(trainmeter::test::run_command("ls '" + dir.path() + "' | wc -l").output == "1\n");
  CHECK_THAT(write_file_atomic(dir / "missing/r.json", "{}"), Catch::Contains("cannot create"));
  CHECK_THAT(write_file_atomic("/dev/null", "{}"), Catch::Contains("not a regular file"));
}

TEST_CASE("the report layout: one step per line, non-finite numbers as null", "[report]") {
  json doc = {{"schema_version", 1}, {"x", std::nan("")}, {"steps", json::array({{{"i", 0}}, {{"i", 1}}})}};
  const std::string text = dump_report(doc);
  CHECK_THAT(text, Catch::Contains("\n    {\"i\":0},\n    {\"i\":1}\n  ]"));
  CHECK(json::parse(text)["x"].is_null());
}

TEST_CASE("parse errors name line and column", "[report]") {
  const auto bad = parse_json_text("{\n  \"a\": 1,\n  \"b\": ]\n}");
  REQUIRE_FALSE(bad.value);
  CHECK_THAT(bad.error, Catch::StartsWith("line 3, column 8"));
  TempDir dir;
  const auto missing = load_json_file(dir / "nope.json");
  CHECK_THAT(missing.error, Catch::Contains("nope.json: cannot read"));
}

TEST_CASE("the compiled-in validator and Python's jsonschema agree", "[report][schema]") {
  TempDir dir;
  json doc = small_report(dir);
  CHECK(validate_schema(doc, report_schema()).empty());
  CHECK(trainmeter::test::schema_errors(dir / "io.json") == "");

  struct Case {
    const char* name;
    std::function<void(json&)> break_it;
  };
  const Case cases[] = {
      {"missing run", [](json& d) { d.erase("run"); }},
      {"wrong status", [](json& d) { d["run"]["status"] = "exploded"; }},
      {"negative steps", [](json& d) { d["phases"]["train"]["steps"] = -1; }},
      {"string wall time", [](json& d) { d["steps"][0]["wall_ns"] = "12"; }},
      {"diagnostic without count", [](json& d) { d["diagnostics"] = json::array({{{"source", "x"}, {"status", "y"}, {"message", "z"}}}); }},
      {"schema version 2", [](json& d) { d["schema_version"] = 2; }},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    json broken = doc;
    c.break_it(broken);
    CHECK_FALSE(validate_schema(broken, report_schema()).empty());
    trainmeter::test::write_file(dir / "broken.json", broken.dump());
    CHECK(trainmeter::test::schema_errors(dir / "broken.json") != "");
  }
}
