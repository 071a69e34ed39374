#include <functional>
#include <vector>

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
  CHECK_THAT(msg, Catch::Contains("TRAINMETER_PROGRESS") &&
                      Catch::Contains("auto, or a boolean (1/0, true/false, yes/no, on/off)"));
}

TEST_CASE("config files: keys, comments, unknown keys and bad values with line numbers",
          "[config]") {
  TempDir dir;
  write_file(dir / "good.conf",
             "# a comment\nrun_name = filed  # trailing\nsample_interval_ms=250\n\n");
  const Config good = Config::from_file(dir / "good.conf");
  CHECK(good.run_name == "filed");
  CHECK(good.sample_interval_ms == 250);

  write_file(dir / "bad.conf", "run_name = x\nwarmup = 3\nsample_interval_ms = 0\nnot a pair\n");
  const std::string msg = error_of([&] { Config::from_file(dir / "bad.conf"); });
  CHECK_THAT(msg, Catch::Contains("bad.conf:2: unknown key 'warmup'"));
  CHECK_THAT(msg, Catch::Contains("bad.conf:3: invalid value '0' for sample_interval_ms"));
  CHECK_THAT(msg, Catch::Contains("bad.conf:4: expected 'key = value'"));
  CHECK_THAT(error_of([&] { Config::from_file(dir / "missing.conf"); }),
             Catch::Contains("cannot read"));

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
  CHECK_THAT(error_of([&] { p.set("pue", "0.9"); }), Catch::Contains("a number from 1 to 3"));
  CHECK_THAT(error_of([&] { p.set("exports", "csv,pdf"); }),
             Catch::Contains("csv,prom,trace,html"));
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

// A set() that does nothing would pass the round trip above (it writes each default back into a
// default Config). Here every key gets a valid value that differs from its default, typed out by
// hand, and both the struct field and get() must show it.
TEST_CASE("set() stores a non-default value for every key, seen in the field and in get()",
          "[config]") {
  struct Case {
    const char* key;
    const char* input;     // the textual value given to set()
    const char* expected;  // what get() must return afterwards
    std::function<bool(const Config&)> field_holds;
  };
  const std::vector<Case> cases = {
      {"enabled", "off", "0", [](const Config& c) { return !c.enabled; }},
      {"run_name", " nightly ", "nightly", [](const Config& c) { return c.run_name == "nightly"; }},
      {"output", "out/r.json", "out/r.json",
       [](const Config& c) { return c.output == "out/r.json"; }},
      {"run_id", "run-42", "run-42", [](const Config& c) { return c.run_id == "run-42"; }},
      {"warmup_steps", "7", "7", [](const Config& c) { return c.warmup_steps == 7; }},
      {"max_retained_steps", "12", "12",
       [](const Config& c) { return c.max_retained_steps == 12; }},
      {"step_cpu_time", "yes", "1", [](const Config& c) { return c.step_cpu_time; }},
      {"sample_interval_ms", "250", "250",
       [](const Config& c) { return c.sample_interval_ms == 250; }},
      {"max_retained_samples", "9", "9",
       [](const Config& c) { return c.max_retained_samples == 9; }},
      {"tags", "team=ml,size=big", "size=big,team=ml",
       [](const Config& c) {
         return c.tags.size() == 2 && c.tags.at("team") == "ml" && c.tags.at("size") == "big";
       }},
      {"proc_root", "/tmp/fake-proc", "/tmp/fake-proc",
       [](const Config& c) { return c.proc_root == "/tmp/fake-proc"; }},
      {"track_tensor_memory", "false", "0", [](const Config& c) { return !c.track_tensor_memory; }},
      {"cuda_peak_reset", "true", "1", [](const Config& c) { return c.cuda_peak_reset; }},
      {"gpu_step_time", "0", "0", [](const Config& c) { return !c.gpu_step_time; }},
      {"powercap_root", "/tmp/pc", "/tmp/pc",
       [](const Config& c) { return c.powercap_root == "/tmp/pc"; }},
      {"perf_event_root", "/tmp/ev", "/tmp/ev",
       [](const Config& c) { return c.perf_event_root == "/tmp/ev"; }},
      {"nvml_library", "/tmp/libfake.so", "/tmp/libfake.so",
       [](const Config& c) { return c.nvml_library == "/tmp/libfake.so"; }},
      {"amdsmi_library", "/opt/rocm/lib/libamd_smi.so", "/opt/rocm/lib/libamd_smi.so",
       [](const Config& c) { return c.amdsmi_library == "/opt/rocm/lib/libamd_smi.so"; }},
      {"energy_sources", "nvml, rapl", "nvml,rapl",
       [](const Config& c) {
         return c.energy_sources == std::vector<std::string>{"nvml", "rapl"};
       }},
      {"rapl_psys", "on", "1", [](const Config& c) { return c.rapl_psys; }},
      {"cpu_tdp_w", "125", "125", [](const Config& c) { return c.cpu_tdp_w == 125.0; }},
      {"pue", "1.5", "1.5", [](const Config& c) { return c.pue == 1.5; }},
      {"carbon_intensity", "56.5", "56.5",
       [](const Config& c) { return c.carbon_intensity == 56.5; }},
      {"carbon_intensity_file", "grid.csv", "grid.csv",
       [](const Config& c) { return c.carbon_intensity_file == "grid.csv"; }},
      {"cloud_region", "gcp:europe-west9", "gcp:europe-west9",
       [](const Config& c) { return c.cloud_region == "gcp:europe-west9"; }},
      {"country", "FR", "FR", [](const Config& c) { return c.country == "FR"; }},
      {"price_per_hour", "3.25", "3.25", [](const Config& c) { return c.price_per_hour == 3.25; }},
      {"energy_price_per_kwh", "0.2", "0.2",
       [](const Config& c) { return c.energy_price_per_kwh == 0.2; }},
      {"currency", "EUR", "EUR", [](const Config& c) { return c.currency == "EUR"; }},
      {"stream", "s.jsonl", "s.jsonl", [](const Config& c) { return c.stream == "s.jsonl"; }},
      {"flush_interval_ms", "50", "50", [](const Config& c) { return c.flush_interval_ms == 50; }},
      {"exports", "csv,html", "csv,html",
       [](const Config& c) {
         return c.exports == std::vector<std::string>{"csv", "html"};
       }},
      {"progress", "on", "on", [](const Config& c) { return c.progress == "on"; }},
      {"metrics_port", "9464", "9464", [](const Config& c) { return c.metrics_port == 9464; }},
      {"metrics_address", "::1", "::1", [](const Config& c) { return c.metrics_address == "::1"; }},
      {"total_steps", "1000", "1000", [](const Config& c) { return c.total_steps == 1000; }},
      {"ops", "1", "1", [](const Config& c) { return c.ops; }},
      {"ops_every", "3", "3", [](const Config& c) { return c.ops_every == 3; }},
      {"rank", "2", "2", [](const Config& c) { return c.rank == 2; }},
      {"world_size", "4", "4", [](const Config& c) { return c.world_size == 4; }},
      {"local_rank", "1", "1", [](const Config& c) { return c.local_rank == 1; }},
      {"local_world_size", "2", "2", [](const Config& c) { return c.local_world_size == 2; }},
  };
  const Config defaults;
  for (const auto& key : trainmeter::config_keys()) {
    INFO(key.name);
    const Case* found = nullptr;
    for (const auto& k : cases)
      if (std::string(k.key) == key.name) found = &k;
    REQUIRE(found != nullptr);                         // a new key needs a row here
    CHECK(defaults.get(key.name) != found->expected);  // the value really differs from the default
    CHECK_FALSE(found->field_holds(defaults));
    Config c;
    c.set(key.name, found->input);
    CHECK(c.get(key.name) == found->expected);
    CHECK(found->field_holds(c));
  }
  CHECK(cases.size() == trainmeter::config_keys().size());
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
