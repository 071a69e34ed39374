#include <catch2/catch.hpp>

#include <trainmeter/trainmeter.hpp>

#include "support/test_support.hpp"

using trainmeter::Config;
using trainmeter::test::ScopedEnv;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const trainmeter::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("environment overrides the base config", "[config]") {
  ScopedEnv a("TRAINMETER_RUN_NAME", "from-env");
  ScopedEnv b("TRAINMETER_WARMUP_STEPS", "7");
  ScopedEnv c("TRAINMETER_ENABLED", "off");
  ScopedEnv d("TRAINMETER_TAGS", "team=ml, size = big");
  Config base;
  base.run_name = "base";
  base.max_retained_steps = 5;
  const Config cfg = Config::from_env(base);
  CHECK(cfg.run_name == "from-env");
  CHECK(cfg.warmup_steps == 7);
  CHECK_FALSE(cfg.enabled);
  CHECK(cfg.max_retained_steps == 5);
  CHECK(cfg.tags.at("team") == "ml");
  CHECK(cfg.tags.at("size") == "big");
}

TEST_CASE("torchrun's variables set rank and world size", "[config]") {
  ScopedEnv a("RANK", "2");
  ScopedEnv b("WORLD_SIZE", "4");
  const Config cfg = Config::from_env();
  CHECK(cfg.rank == 2);
  CHECK(cfg.world_size == 4);
}

TEST_CASE("every invalid variable is reported at once, naming key, value and accepted values",
          "[config]") {
  ScopedEnv a("TRAINMETER_WARMUP_STEPS", "abc");
  ScopedEnv b("TRAINMETER_MAX_RETAINED_STEPS", "-3");
  ScopedEnv c("TRAINMETER_NO_SUCH_KEY", "1");
  ScopedEnv d("TRAINMETER_PROGRESS", "sometimes");
  const std::string msg = error_of([] { Config::from_env(); });
  CHECK_THAT(msg, Catch::Contains("TRAINMETER_WARMUP_STEPS") && Catch::Contains("'abc'") &&
                      Catch::Contains("an integer from 0 to"));
  CHECK_THAT(msg, Catch::Contains("TRAINMETER_MAX_RETAINED_STEPS") && Catch::Contains("'-3'"));
  CHECK_THAT(msg, Catch::Contains("TRAINMETER_NO_SUCH_KEY: unknown variable"));
  CHECK_THAT(msg, Catch::Contains("TRAINMETER_PROGRESS") && Catch::Contains("auto, on, off"));
}

TEST_CASE("config files: keys, comments, unknown keys and bad values with line numbers", "[config]") {
  TempDir dir;
  write_file(dir / "good.conf", "# a comment\nrun_name = filed  # trailing\nsample_interval_ms=250\n\n");
  const Config good = Config::from_file(dir / "good.conf");
  CHECK(good.run_name == "filed");
  CHECK(good.sample_interval_ms == 250);

  write_file(dir / "bad.conf", "run_name = x\nwarmup = 3\nsample_interval_ms = 0\nnot a pair\n");
  const std::string msg = error_of([&] { Config::from_file(dir / "bad.conf"); });
  CHECK_THAT(msg, Catch::Contains("bad.conf:2: unknown key 'warmup'"));
  CHECK_THAT(msg, Catch::Contains("bad.conf:3: invalid value '0' for sample_interval_ms"));
  CHECK_THAT(msg, Catch::Contains("bad.conf:4: expected 'key = value'"));
  CHECK_THAT(error_of([&] { Config::from_file(dir / "missing.conf"); }), Catch::Contains("cannot read"));

  ScopedEnv e("TRAINMETER_CONFIG_FILE", dir / "good.conf");
  ScopedEnv f("TRAINMETER_SAMPLE_INTERVAL_MS", "500");  // the environment wins over the file
  const Config layered = Config::from_env();
  CHECK(layered.run_name == "filed");
  CHECK(layered.sample_interval_ms == 500);
}

TEST_CASE("cross-field rules", "[config]") {
  Config c;
  c.rank = 3;
  c.world_size = 2;
  CHECK_THAT(error_of([&] { c.validate(); }), Catch::Contains("rank 3 is not below world_size 2"));
  Config p;
  CHECK_THAT(error_of([&] { p.set("pue", "0.9"); }), Catch::Contains("a number from 1.0 to 3.0"));
  CHECK_THAT(error_of([&] { p.set("exports", "csv,pdf"); }), Catch::Contains("csv,prom,trace,html"));
}

TEST_CASE("every key round-trips through set() and get()", "[config]") {
  Config c;
  for (const auto& key : trainmeter::config_keys()) {
    INFO(key.name);
    const std::string text = c.get(key.name);
    Config copy;
    if (!text.empty()) copy.set(key.name, text);
    CHECK(copy.get(key.name) == text);
    CHECK(trainmeter::env_name(key.name).rfind("TRAINMETER_", 0) == 0);
    CHECK(std::string(key.help).size() > 10);
  }
}

TEST_CASE("an output that cannot be created fails at construction naming the key", "[config]") {
  Config c;
  c.output = "/dev/null/sub/report.json";  // a file as a parent directory
  CHECK_THAT(error_of([&] { trainmeter::Session s(c); }),
             Catch::Contains("output") && Catch::Contains("cannot create directory"));
  Config d;
  TempDir dir;
  d.output = dir.path();  // a directory, not a file
  CHECK_THAT(error_of([&] { trainmeter::Session s(d); }), Catch::Contains("is a directory"));
  Config ro;
  ro.output = "/proc/self/trainmeter-report.json";  // a file system that refuses new files
  CHECK_THAT(error_of([&] { trainmeter::Session s(ro); }), Catch::Contains("not writable"));
}
