// The JSONL stream through a real Session, recovery (including after SIGKILL at random moments),
// failure handling (/dev/full, vanished directory) and bad stream input.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "base/component.hpp"
#include "export/exports.hpp"
#include "export/outputs.hpp"
#include "export/recover.hpp"
#include "report/findings.hpp"
#include "report/json_io.hpp"
#include "report_fixture.hpp"
#include "support/test_support.hpp"
#include "trainmeter/session.hpp"

using nlohmann::json;
using trainmeter::test::read_file;
using trainmeter::test::schema_errors;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;
namespace d = trainmeter::detail;

namespace {

const std::string kPhase = "eval \"q\" \\ new\nline \xc3\xa9";

trainmeter::Config quiet_config(const TempDir& dir) {
  trainmeter::Config c;
  c.run_name = "stream \"test\"";
  c.output = dir / "run.json";
  c.energy_sources = {"estimate"};
  c.progress = "off";
  c.sample_interval_ms = 20;
  c.flush_interval_ms = 50;
  c.warmup_steps = 1;
  return c;
}

std::vector<json> lines_of(const std::string& path) {
  std::vector<json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
  return out;
}

// A minimal stream header line with the given config object.
std::string stream_header(const std::string& config) {
  return R"({"type":"header","stream_version":1,"schema_version":1,"trainmeter":{"version":"x"},)"
         R"("run":{"name":"n","id":"i","rank":0,"world_size":1,"start_utc":"2024-01-01T00:00:00.000Z","start_unix_ns":0,"command_line":[],"tags":{}},)"
         R"("host":{"hostname":null,"os":null,"kernel":null,"cpu_model":null,"logical_cpus":null,"memory_bytes":null,"gpus":[],"torch_version":null,"cuda_version":null},"config":)" +
         config + "}";
}

void write_recovered(const std::string& path, const json& report) {
  write_file(path, d::dump_report(report));
}

}  // namespace

TEST_CASE("Stream: header, every step, samples, footer; recover rebuilds the phases",
          "[export][stream]") {
  TempDir dir;
  trainmeter::Config c = quiet_config(dir);
  c.stream = dir / "sub/run.jsonl";
  c.tags["who"] = "tab\there";
  std::vector<std::int64_t> walls;
  {
    trainmeter::Session s(c);
    const auto eval = s.phase(kPhase.c_str());
    for (int i = 0; i < 30; ++i) {
      auto st = s.step(2, i % 3 == 2 ? eval : trainmeter::Phase{0});
      st.set_loss(i);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    const auto r = s.finish();
    REQUIRE(r.written);
  }
  const json report = trainmeter::test::read_json(dir / "run.json");
  const auto lines = lines_of(c.stream);
  REQUIRE(lines.size() >= 32);
  CHECK(lines.front()["type"] == "header");
  CHECK(lines.front()["run"]["name"] == "stream \"test\"");
  CHECK(lines.front()["run"]["tags"]["who"] == "tab\there");
  CHECK(lines.back()["type"] == "footer");
  CHECK(lines.back()["status"] == "completed");
  std::vector<json> steps;
  int samples = 0;
  for (const auto& l : lines) {
    if (l["type"] == "step") steps.push_back(l);
    if (l["type"] == "sample") ++samples;
  }
  REQUIRE(steps.size() == 30);
  CHECK(samples >= 1);
  // Each streamed step equals the report's step of the same index, key by key.
  for (std::size_t i = 0; i < steps.size(); ++i) {
    json s = steps[i];
    s.erase("type");
    json r = report["steps"][i];
    r.erase("energy_j");
    r.erase("energy_apportioned");
    CHECK(s == r);
  }
  CHECK(steps[2]["phase"] == kPhase);

  // Recovery of the complete stream: the phases equal the live report's.
  const d::RecoverResult rec = d::recover_stream(c.stream);
  REQUIRE(rec.error.empty());
  REQUIRE(rec.report);
  CHECK(rec.had_footer);
  CHECK((*rec.report)["run"]["status"] == "completed");
  for (const std::string& phase : {std::string("train"), kPhase}) {
    const json& a = report["phases"][phase];
    const json& b = (*rec.report)["phases"][phase];
    CHECK(a["steps"] == b["steps"]);
    CHECK(a["warmup_steps"] == b["warmup_steps"]);
    CHECK(a["samples"] == b["samples"]);
    for (const char* k : {"min", "max", "p50", "p90", "p95", "p99"})
      CHECK(a["step_time_ns"][k] == b["step_time_ns"][k]);
    CHECK(a["step_time_ns"]["mean"].get<double>() ==
          Approx(b["step_time_ns"]["mean"].get<double>()).epsilon(1e-12));
  }
  const std::string out = dir / "recovered.json";
  write_recovered(out, *rec.report);
  CHECK(schema_errors(out) == "");

  // The writer "dies" mid-line: drop the footer and tear the last step line.
  std::string text;
  std::size_t last_step_line = 0;
  for (std::size_t i = 0; i < lines.size(); ++i)
    if (lines[i]["type"] == "step") last_step_line = i;
  for (std::size_t i = 0; i < last_step_line; ++i) text += lines[i].dump() + "\n";
  const std::string last_step = lines[last_step_line].dump();
  std::string torn_path = dir / "torn.jsonl";
  write_file(torn_path, text + last_step.substr(0, last_step.size() / 2));
  const d::RecoverResult torn = d::recover_stream(torn_path);
  REQUIRE(torn.error.empty());
  CHECK(torn.torn_last_line);
  CHECK((*torn.report)["run"]["status"] == "crashed");
  write_recovered(out, *torn.report);
  CHECK(schema_errors(out) == "");

  // The CLI end to end.
  const auto cli = trainmeter::test::run_cli("recover '" + torn_path + "' -o '" + out + "'");
  INFO(cli.output);
  CHECK(cli.exit_code == 0);
  CHECK(trainmeter::test::read_json(out)["run"]["status"] == "crashed");
  CHECK(trainmeter::test::run_cli("validate '" + out + "'").exit_code == 0);
  // The CLI keeps no steps in memory (recover_stream without them, then a second pass over the
  // stream while writing): its file has the bytes of the report with every step in memory.
  CHECK(trainmeter::test::read_file(out) == d::dump_report(*torn.report));
  const d::RecoverResult lean = d::recover_stream(torn_path, std::size_t(1) << 30, false);
  REQUIRE(lean.error.empty());
  CHECK((*lean.report)["steps"].empty());
  CHECK(lean.steps == torn.steps);
  CHECK(lean.steps == 29);
  const std::string lean_out = dir / "lean.json";
  REQUIRE(d::write_recovered_report(torn_path, lean, lean_out) == "");
  CHECK(trainmeter::test::read_file(lean_out) == d::dump_report(*torn.report));
  // A stream that lost step lines between the passes is refused, not half-written.
  write_file(torn_path, text.substr(0, text.find("\"type\":\"step\"")));
  CHECK(d::write_recovered_report(torn_path, lean, dir / "lean2.json").find("changed while") !=
        std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "lean2.json"));
}

TEST_CASE("Stream on a full disk: diagnostics, training continues, report written",
          "[export][stream]") {
  TempDir dir;
  trainmeter::Config c = quiet_config(dir);
  c.stream = "/dev/full";
  trainmeter::Session s(c);
  for (int i = 0; i < 20; ++i) {
    auto st = s.step();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto r = s.finish();
  REQUIRE(r.written);
  const json report = trainmeter::test::read_json(dir / "run.json");
  CHECK(report["run"]["steps_recorded"] == 20);
  bool found = false;
  for (const auto& d : report["diagnostics"])
    if (d["source"] == "stream" && d["status"] == "io_error") {
      found = true;
      CHECK(d["message"].get<std::string>().find("/dev/full") != std::string::npos);
      CHECK(d["count"].get<int>() >= 2);  // failed writes, then the stream stops
    }
  CHECK(found);
  CHECK(schema_errors(dir / "run.json") == "");
}

TEST_CASE("Stream whose directory vanishes: diagnostic, report still written", "[export][stream]") {
  TempDir dir;
  trainmeter::Config c = quiet_config(dir);
  c.stream = dir / "gone/run.jsonl";
  trainmeter::Session s(c);
  for (int i = 0; i < 5; ++i) auto st = s.step();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::filesystem::remove_all(dir / "gone");
  for (int i = 0; i < 5; ++i) {
    auto st = s.step();
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  REQUIRE(s.finish().written);
  const json report = trainmeter::test::read_json(dir / "run.json");
  bool found = false;
  for (const auto& d : report["diagnostics"])
    found = found || (d["source"] == "stream" &&
                      d["message"].get<std::string>().find("was removed") != std::string::npos);
  CHECK(found);
}

TEST_CASE("A stream path that cannot be opened fails at construction naming the variable",
          "[export][stream]") {
  TempDir dir;
  write_file(dir / "file", "x");
  trainmeter::Config c = quiet_config(dir);
  c.stream = dir / "file/sub/run.jsonl";  // a regular file where a directory should be
  try {
    trainmeter::Session s(c);
    FAIL("no error");
  } catch (const trainmeter::Error& e) {
    const std::string m = e.what();
    CHECK(m.find("TRAINMETER_STREAM") != std::string::npos);
    CHECK(m.find(c.stream) != std::string::npos);
    CHECK(m.find("accepted") != std::string::npos);
  }
}

TEST_CASE("recover rejects malformed, wrongly typed and huge input naming the line",
          "[export][stream][bad-input]") {
  TempDir dir;
  const std::string header = stream_header("{}");
  const std::string step =
      R"({"type":"step","index":0,"phase":"train","thread":0,"start_offset_ns":5,"wall_ns":10,"cpu_ns":null,"samples":1,"tokens":0,"warmup":false,"loss":null,"peak_tensor_bytes":null})";
  auto recover = [&](const std::string& text) {
    write_file(dir / "s.jsonl", text);
    return d::recover_stream(dir / "s.jsonl");
  };
  const std::string p = dir / "s.jsonl";
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = step;
    s.replace(s.find(from), from.size(), to);
    return s;
  };
  CHECK(recover(header + "\n" + step + "\n").error.empty());
  CHECK(recover("").error == p + ": empty file (no stream header)");
  CHECK(recover(step + "\n").error ==
        p + ": line 1: the first line is not a trainmeter stream header");
  INFO(recover(header + "\n{not json\n" + step + "\n").error);
  CHECK(recover(header + "\n{not json\n" + step + "\n").error ==
        p + ": line 2, column 3: syntax error while parsing object key - invalid literal; last "
            "read: '{no'; expected string literal");
  CHECK(recover(header + "\n" + replaced("\"wall_ns\":10", "\"wall_ns\":\"10\"") + "\n").error ==
        p + ": line 2: key 'wall_ns': expected a non-negative integer, got string");
  CHECK(recover(header + "\n" + replaced("\"wall_ns\":10", "\"wall_ns\":1e400") + "\n")
            .error.find(p + ": line 2:") == 0);
  CHECK(recover(header + "\n" + replaced("\"wall_ns\":10", "\"wall_ns\":99999999999999999999999") +
                "\n")
            .error == p + ": line 2: key 'wall_ns': expected a non-negative integer, got a "
                          "non-integer or out-of-range number");
  CHECK(recover(header + "\n" + replaced("\"wall_ns\":10", "\"wall_ns\":-1") + "\n").error ==
        p + ": line 2: key 'wall_ns': expected >= 0, got -1");
  CHECK(recover(header + "\n" + replaced("\"phase\":\"train\"", "\"phase\":7") + "\n").error ==
        p + ": line 2: key 'phase': expected a string, got integer");
  CHECK(recover(header + "\n" + replaced("\"warmup\":false,", "") + "\n").error ==
        p + ": line 2: missing key 'warmup'");
  CHECK(recover(header + "\n" + step + "\n" + step + "\n").error ==
        p + ": line 3: step index 0 does not follow 0");
  CHECK(recover(header + "\n[1,2]\n").error == p + ": line 2: not a JSON object");
  CHECK(recover(header + "\n{\"type\":\"bogus\"}\n").error ==
        p + ": line 2: unknown line type 'bogus'");
  CHECK(recover(header.substr(0, 40)).error.find(p + ": line 1, column 41:") ==
        0);  // torn header: nothing to recover
  // A torn last line is tolerated.
  const auto torn = recover(header + "\n" + step + "\n" + step.substr(0, 30));
  CHECK(torn.error.empty());
  CHECK(torn.torn_last_line);
  CHECK(torn.steps == 1);
  // ...but not a torn line followed by more lines.
  CHECK(!recover(header + "\n" + step.substr(0, 30) + "\n" + step + "\n").error.empty());
  // The CLI prints one line naming the file and line.
  write_file(p, header + "\n" + replaced("\"wall_ns\":10", "\"wall_ns\":true") + "\n");
  const auto cli = trainmeter::test::run_cli("recover '" + p + "'");
  CHECK(cli.exit_code == 2);
  CHECK(cli.output ==
        "trainmeter recover: " + p +
            ": line 2: key 'wall_ns': expected a non-negative integer, got boolean\n");
}

TEST_CASE("SIGKILL at random moments: the recovered report holds every flushed step",
          "[export][stream][kill]") {
  std::mt19937 rng(20240501);
  const int kFlushMs = 100, kStepMs = 5;
  constexpr int kRounds = 5;
  int rounds_within_one_flush = 0;
  for (int round = 0; round < kRounds; ++round) {
    TempDir dir;
    const std::string stream = dir / "victim.jsonl";
    int out_pipe[2];
    REQUIRE(::pipe(out_pipe) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::dup2(out_pipe[1], 1);
      ::close(out_pipe[0]);
      ::setenv("TRAINMETER_STREAM", stream.c_str(), 1);
      ::setenv("TRAINMETER_FLUSH_INTERVAL_MS", std::to_string(kFlushMs).c_str(), 1);
      ::setenv("TRAINMETER_OUTPUT", (dir / "victim.json").c_str(), 1);
      ::setenv("TRAINMETER_PROGRESS", "off", 1);
      ::setenv("TRAINMETER_ENERGY_SOURCES", "estimate", 1);
      ::execl(TRAINMETER_STREAM_VICTIM, TRAINMETER_STREAM_VICTIM, std::to_string(kStepMs).c_str(),
              (char*)nullptr);
      ::_exit(127);
    }
    ::close(out_pipe[1]);
    const int kill_after_ms = std::uniform_int_distribution<int>(150, 900)(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms));
    REQUIRE(::kill(pid, SIGKILL) == 0);
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status));
    std::string printed;
    char buf[4096];
    for (ssize_t n; (n = ::read(out_pipe[0], buf, sizeof buf)) > 0;)
      printed.append(buf, static_cast<std::size_t>(n));
    ::close(out_pipe[0]);
    const auto last_nl = printed.rfind('\n', printed.size() - 1);
    const auto prev_nl = printed.rfind('\n', last_nl == 0 ? 0 : last_nl - 1);
    const long completed =
        printed.empty() ? 0
                        : std::stol(printed.substr(prev_nl == std::string::npos ? 0 : prev_nl + 1));

    const d::RecoverResult rec = d::recover_stream(stream);
    INFO("round " << round << ", killed after " << kill_after_ms << " ms, " << completed
                  << " steps completed; " << rec.error);
    REQUIRE(rec.report);
    CHECK((*rec.report)["run"]["status"] == "crashed");
    const json& steps = (*rec.report)["steps"];
    // Every recovered step is one that ran, in order, with no gap.
    for (std::size_t i = 0; i < steps.size(); ++i) CHECK(steps[i]["index"] == i);
    CHECK(static_cast<long>(steps.size()) <= completed);
    // Lost at most one flush interval plus the collector's drain latency, measured in step time.
    // A timing property: a loaded machine may stretch one round, so a majority must meet it.
    const double lost_ms = double(completed - static_cast<long>(steps.size())) * kStepMs;
    if (lost_ms <= kFlushMs + 50) ++rounds_within_one_flush;
    const std::string out = dir / "recovered.json";
    write_recovered(out, *rec.report);
    CHECK(schema_errors(out) == "");
  }
  CHECK(rounds_within_one_flush > kRounds / 2);
}

// The progress line, drawn by the outputs component driven with synthetic times (no clock, no
// terminal): stderr is redirected to a file while it runs.
TEST_CASE("progress line: steps, rate, elapsed, ETA and RSS; a final line without ETA",
          "[export][progress]") {
  TempDir dir;
  write_file(dir / "proc/self/statm", "5000 2560 100 10 0 3000 0\n");
  const long page = ::sysconf(_SC_PAGESIZE);
  d::RunContext ctx;
  ctx.config.progress = "on";
  ctx.config.total_steps = 1000;
  ctx.config.proc_root = dir / "proc";
  ctx.start_ns = 1000;
  std::uint64_t collected = 0;
  ctx.steps_collected = [&collected] { return collected; };
  const std::int64_t s = 1000000000;

  std::fflush(stderr);
  const int saved = ::dup(2);
  const int file = ::open((dir / "stderr.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(saved >= 0);
  REQUIRE(file >= 0);
  ::dup2(file, 2);
  {
    auto out = d::make_outputs_component(ctx);
    out->start(ctx.start_ns);
    collected = 100;
    out->sample(ctx.start_ns + s / 4);  // 0.25 s after the last line: not redrawn yet
    out->sample(ctx.start_ns + 10 * s);
    collected = 250;
    out->sample(ctx.start_ns + 3605 * s / 100);  // 36.05 s: 250 steps, 6.9 steps/s
    collected = 1000;
    out->stop(ctx.start_ns + 40 * s);
  }
  ::dup2(saved, 2);
  ::close(saved);
  ::close(file);
  const std::string rss = fmt::format("RSS {:.0f} MiB", 2560.0 * double(page) / (1 << 20));
  // 100 steps in 10 s: 10.0 steps/s; 900 left at that rate: 90 s. 250 in 36.05 s: 6.9 steps/s,
  // 750 left: 108.1 s -> 1m48s. The final line: 1000 steps in 40 s, 25.0 steps/s, no ETA.
  CHECK(read_file(dir / "stderr.txt") ==
        "\r[trainmeter] step 100/1000  10.0 steps/s  elapsed 10s  ETA 1m30s  " + rss + "\x1b[K" +
            "\r[trainmeter] step 250/1000  6.9 steps/s  elapsed 36s  ETA 1m48s  " + rss + "\x1b[K" +
            "\r[trainmeter] step 1000/1000  25.0 steps/s  elapsed 40s  " + rss + "\x1b[K\n");
}

TEST_CASE("recover: the memory section from the stream's samples and steps' tensor peaks",
          "[export][stream][recover]") {
  TempDir dir;
  const std::string header = stream_header(R"({"sample_interval_ms":"250"})");
  auto step = [](int i, const char* tensor) {
    return fmt::format(
        R"({{"type":"step","index":{},"phase":"train","thread":0,"start_offset_ns":{},"wall_ns":10,"cpu_ns":null,"samples":1,"tokens":0,"warmup":false,"loss":null,"peak_tensor_bytes":{}}})",
        i, 100 * i, tensor);
  };
  auto sample = [](long long t, const char* rss) {
    return fmt::format(R"({{"type":"sample","t_offset_ns":{},"rss_bytes":{}}})", t, rss);
  };
  write_file(dir / "s.jsonl",
             header + "\n" + step(0, "4096") + "\n" + sample(250000000, "3000000") + "\n" +
                 step(1, "null") + "\n" + sample(500000000, "null") + "\n" + step(2, "8192") +
                 "\n" + sample(750000000, "5000000") + "\n" + sample(1000000000, "4000000") + "\n");
  const d::RecoverResult rec = d::recover_stream(dir / "s.jsonl");
  INFO(rec.error);
  REQUIRE(rec.report);
  const json& m = (*rec.report)["memory"];
  CHECK(m["peak_rss_bytes"].is_null());           // VmHWM is not in a stream: null, never 0
  CHECK(m["sampled_peak_rss_bytes"] == 5000000);  // the largest sampled RSS
  CHECK(m["current_rss_bytes"] == 4000000);       // the last sample
  CHECK(m["peak_tensor_bytes"] == json({{"cpu", 8192}}));  // the highest step peak
  CHECK(m["timeline"]["interval_ms"] == 250);              // from the header's config
  CHECK(m["timeline"]["samples"] == 4);
  CHECK(m["timeline"]["points"] ==
        json::parse("[[250000000,3000000],[750000000,5000000],[1000000000,4000000]]"));
  CHECK(m["notes"].size() == 2);
  const std::string out = dir / "recovered.json";
  write_recovered(out, *rec.report);
  CHECK(schema_errors(out) == "");

  // No samples and no tensor peaks: no memory section at all.
  write_file(dir / "bare.jsonl", header + "\n" + step(0, "null") + "\n");
  const d::RecoverResult bare = d::recover_stream(dir / "bare.jsonl");
  REQUIRE(bare.report);
  CHECK((*bare.report)["memory"].is_null());
}

// A fixture report of 3,000 steps whose step times spread over 101 values.
static json report_of_3000_steps() {
  trainmeter::test::FixtureOptions o;
  o.walls_ns.clear();
  for (int i = 0; i < 3000; ++i) o.walls_ns.push_back(1e6 + 1000.0 * (i * 37 % 101));
  return trainmeter::test::make_report(o);
}

TEST_CASE("export trace from the file, steps read one at a time: the whole-report trace's bytes",
          "[export][sections]") {
  TempDir dir;
  json report = report_of_3000_steps();
  // Two threads, phase runs that switch, a step without a start, an entry that is not a step.
  json& steps = report["steps"];
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i % 10 == 3) steps[i]["thread"] = 1;
    if (i % 500 >= 490) steps[i]["phase"] = kPhase;
    if (i % 7 == 0) steps[i]["energy_j"] = 0.5;
  }
  steps[5].erase("start_offset_ns");
  steps.push_back(42);
  const std::string path = dir / "run.json";
  trainmeter::test::write_report(path, report);
  const std::string expected = d::export_text(report, "trace");

  // The sections with every step shown to the visitor, in order, then dropped.
  std::vector<std::size_t> order;
  std::size_t skipped = 0;
  const auto sections = d::load_report_sections(path, &skipped, [&](const json& s, std::size_t i) {
    CHECK(s == steps[i]);
    order.push_back(i);
  });
  REQUIRE(sections.value);
  CHECK((*sections.value)["steps"] == json::array());
  CHECK(skipped == steps.size());
  CHECK(order.size() == steps.size());
  CHECK(order.back() == steps.size() - 1);
  std::size_t again = 0;
  CHECK(d::for_each_step(path, [&](const json&, std::size_t) { ++again; }) == "");
  CHECK(again == steps.size());

  const d::StepSource from_file = [&](const d::StepVisitor& v) {
    return d::for_each_step(path, v);
  };
  std::string streamed;
  CHECK(d::write_trace_streamed(*sections.value, from_file,
                                [&](const std::string& t) { streamed += t; }) == "");
  CHECK(streamed == expected);
  CHECK(d::write_export_streamed(*sections.value, from_file, "trace", dir / "w.trace.json") == "");
  CHECK(read_file(dir / "w.trace.json") == expected);
  // The CLI takes that path: to stdout and to a file.
  auto cli = trainmeter::test::run_cli("export '" + path + "' -f trace -o -");
  CHECK(cli.exit_code == 0);
  CHECK(cli.output == expected);
  cli = trainmeter::test::run_cli("export '" + path + "' -f trace");
  CHECK(cli.exit_code == 0);
  CHECK(read_file(d::export_path(path, "trace")) == expected);

  // A file cut in the steps: the error names it and the byte; no trace is left behind.
  const std::string text = read_file(path);
  write_file(dir / "cut.json", text.substr(0, text.size() * 3 / 4));
  const std::string err = d::for_each_step(dir / "cut.json", [](const json&, std::size_t) {});
  CHECK(err.find("cut.json: byte ") != std::string::npos);
  const d::StepSource from_cut = [&](const d::StepVisitor& v) {
    return d::for_each_step(dir / "cut.json", v);
  };
  CHECK(d::write_export_streamed(*sections.value, from_cut, "trace", dir / "cut.trace") == err);
  CHECK_FALSE(std::ifstream(dir / "cut.trace").good());
  CHECK(d::write_export_streamed(*sections.value, from_cut, "html", dir / "cut.html") == err);
  CHECK_FALSE(std::ifstream(dir / "cut.html").good());
}

TEST_CASE("export html from the file, steps read one at a time: the whole-report page's bytes",
          "[export][sections]") {
  TempDir dir;
  json report = report_of_3000_steps();
  // Every field a chart draws, and the cases it skips: two phases, losses, samples, CPU and
  // CUDA tensor peaks on two devices (one a string, not drawn), a step without a start, warm-up
  // steps, an entry that is not a step.
  json& steps = report["steps"];
  for (std::size_t i = 0; i < steps.size(); ++i) {
    if (i % 500 >= 490) steps[i]["phase"] = kPhase;
    steps[i]["loss"] = 2.0 / double(i + 1);
    steps[i]["samples"] = 32;
    steps[i]["peak_tensor_bytes"] = 4096 + 8 * (i % 13);
    steps[i]["peak_cuda_tensor_bytes"] = {{"cuda:0", 1 << 20},
                                          {"cuda:1", i % 2 ? json(2e6) : json("x")}};
    if (i < 3) steps[i]["warmup"] = true;
  }
  steps[5].erase("start_offset_ns");
  steps[9].erase("loss");
  steps.push_back(42);
  report["findings"] = d::findings(report);
  const std::string path = dir / "run.json";
  trainmeter::test::write_report(path, report);
  const std::string expected = d::export_text(report, "html");
  CHECK(expected.find("tensors (cuda:1)") != std::string::npos);
  CHECK(expected.find("chart-loss") != std::string::npos);

  const auto sections = d::load_report_sections(path);
  REQUIRE(sections.value);
  const d::StepSource from_file = [&](const d::StepVisitor& v) {
    return d::for_each_step(path, v);
  };
  std::string streamed;
  CHECK(d::write_html_streamed(*sections.value, from_file,
                               [&](const std::string& t) { streamed += t; }) == "");
  CHECK(streamed == expected);
  auto cli = trainmeter::test::run_cli("export '" + path + "' -f html -o -");
  CHECK(cli.exit_code == 0);
  CHECK(cli.output == expected);
  cli = trainmeter::test::run_cli("export '" + path + "' -f html");
  CHECK(cli.exit_code == 0);
  CHECK(read_file(d::export_path(path, "html")) == expected);

  // A report from before the findings section: its findings are computed from its steps, as the
  // whole-report page computes them.
  report.erase("findings");
  trainmeter::test::write_report(path, report);
  const auto old_sections = d::load_report_sections(path);
  REQUIRE(old_sections.value);
  const std::string old_expected = d::export_text(report, "html");
  streamed.clear();
  CHECK(d::write_html_streamed(*old_sections.value, from_file,
                               [&](const std::string& t) { streamed += t; }) == "");
  CHECK(streamed == old_expected);
}
