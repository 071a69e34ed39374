// The golden report: the whole report step of finish() (write_run_report: builder, the built-in
// components' sections and per-step values, the writer) over fixed fake inputs (synthetic step
// records and times, a fake /proc and powercap tree with known joules, fixed carbon settings),
// compared byte for byte with tests/report/golden/report.json. A refactor of how the report is
// assembled must leave this file unchanged; regenerate it only for an intended change of the
// report (TRAINMETER_UPDATE_GOLDEN=1), and say why in the commit.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "base/component.hpp"
#include "core/session_impl.hpp"
#include "energy/energy_fakes.hpp"
#include "report/builder.hpp"

using namespace trainmeter;
using namespace trainmeter::detail;
using trainmeter::test::FakeMachine;
using trainmeter::test::kSecond;

namespace {

const std::string kGolden = std::string(TRAINMETER_SOURCE_DIR) + "/tests/report/golden/report.json";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// Facts of the machine and build running the test (temp folders, uname, getrusage, the library
// version and build type) are not inputs we can fake: they are replaced by fixed text, key by
// key, before comparing.
std::string mask_machine_facts(std::string text, const std::vector<std::string>& temp_dirs) {
  for (const std::string& dir : temp_dirs) text = replace_all(text, dir, "<tmp>");
  static const char* const kKeys[] = {"hostname", "os",   "kernel", "getrusage_max_rss_bytes",
                                      "version",  "build"};
  for (const char* key : kKeys) {
    const std::regex re(std::string("\"") + key + "\": (\"[^\"]*\"|-?[0-9.e+]+|null)");
    text = std::regex_replace(text, re, std::string("\"") + key + "\": \"<machine>\"");
  }
  return text;
}

StepRecord record(std::uint16_t phase, std::uint16_t thread, std::uint64_t seq, std::int64_t start,
                  std::int64_t wall, double loss) {
  StepRecord r{};
  r.seq = seq;
  r.phase = phase;
  r.thread = thread;
  r.start_ns = start;
  r.wall_ns = wall;
  r.cpu_ns = -1;
  r.samples = 32;
  r.tokens = 0;
  r.loss = loss;
  r.peak_tensor_bytes = -1;
  r.gpu_ns = -1;
  r.cuda_peak_tensor_bytes = -1;
  r.cuda_device = -1;
  r.gpu_slot = -1;
  for (double& m : r.metrics) m = std::nan("");
  return r;
}

// What SessionImpl::process() does with a drained record: the real aggregation, then retention.
void aggregate(RunState& state, StepAggregator& agg, StepRecord& r, std::uint64_t warmup_steps) {
  if (!agg.add(state.phases[r.phase], r, warmup_steps)) ++state.phases[r.phase].retained;
  state.records.push_back(r);
}

struct GoldenRun {
  std::string text;  // the report file, machine facts masked
  std::string json;  // Report::json, masked the same way
  nlohmann::json doc;
};

GoldenRun golden_run() {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 1'000'000);
  m.zone("intel-rapl:0:1", "dram", 100'000);
  // 16,384 resident pages; a high-water mark of 80 MiB
  test::write_file(m.proc + "/self/statm", "40000 16384 1000 10 0 20000 0\n");
  // This boot's id, as the kernel writes it (host.boot_id; merge keys hosts by it).
  test::write_file(m.proc + "/sys/kernel/random/boot_id", "7f3e0c52-1b2a-4c5d-9e8f-0a1b2c3d4e5f\n");
  test::write_file(m.proc + "/self/status",
                   "Name:\tgolden\nVmHWM:\t   81920 kB\nVmRSS:\t   65536 kB\n");
  test::TempDir out;

  RunContext ctx;
  m.configure(ctx);
  ctx.config.run_name = "golden";
  ctx.config.warmup_steps = 2;
  ctx.config.country = "FR";
  ctx.config.pue = 1.2;
  ctx.config.energy_price_per_kwh = 0.25;
  ctx.config.run_id = "golden-0001";
  ctx.config.progress = "off";
  ctx.report_path = out / "report.json";
  ctx.start_ns = 1000;
  ctx.start_unix_ns = 1'764'547'200'000'000'000;  // 2025-12-01T00:00:00Z
  ctx.phase_name = [](std::uint16_t id) { return std::string(id == 0 ? "train" : "eval"); };
  std::uint64_t collected = 0;
  ctx.steps_collected = [&collected] { return collected; };

  auto components = make_builtin_components(ctx);
  const double hz = test::clock_ticks_per_s();
  const auto ticks = [hz](double s) { return static_cast<std::uint64_t>(std::llround(s * hz)); };
  for (auto& c : components) c->start(ctx.start_ns);

  RunState state;
  StepAggregator agg;
  state.phases.resize(2);
  state.phases[0].name = "train";
  state.phases[1].name = "eval";
  state.command_line = {"train_mlp", "--steps", "40"};
  state.tags = {{"team", "perf"}};

  // Four seconds: each second 9 training steps of 50 ms, 5 ms apart, on thread 0 (the fifth of
  // second 2 takes 150 ms) and one 100 ms evaluation step on thread 1; the package draws 20 W,
  // DRAM 2 W, and this process is half of the machine's CPU time.
  std::uint64_t seq = 0;
  for (int second = 0; second < 4; ++second) {
    const std::int64_t t0 = ctx.start_ns + second * kSecond;
    std::vector<StepRecord> batch;
    std::int64_t t = t0 + 10'000'000;
    for (int k = 0; k < 9; ++k) {
      const std::int64_t wall = (second == 2 && k == 4) ? 150'000'000 : 50'000'000;
      batch.push_back(record(0, 0, seq, t, wall, 2.0 / double(seq + 1)));
      t += wall + 5'000'000;
      ++seq;
    }
    batch.push_back(record(1, 1, seq++, t0 + 800'000'000, 100'000'000, std::nan("")));
    for (StepRecord& r : batch) aggregate(state, agg, r, ctx.config.warmup_steps);
    collected += batch.size();
    for (auto& c : components) c->steps(batch.data(), batch.size());
    const double s = second + 1;
    m.set_uj("intel-rapl:0", 1'000'000 + static_cast<std::uint64_t>(20e6 * s));
    m.set_uj("intel-rapl:0:1", 100'000 + static_cast<std::uint64_t>(2e6 * s));
    m.set_proc(ticks(s), ticks(2 * s), 64 << 20);
    for (auto& c : components) c->sample(t0 + kSecond);
  }
  const std::int64_t end = ctx.start_ns + 4 * kSecond;
  for (auto& c : components) c->stop(end);
  state.steps_recorded = seq;
  state.end_ns = end;
  state.end_unix_ns = ctx.start_unix_ns + 4 * kSecond;
  state.cpu_user_s = 1.5;
  state.cpu_system_s = 0.5;
  state.total_steps = 40;

  Report report;
  write_run_report(ctx, state, components, &report);
  REQUIRE(report.written);
  const std::vector<std::string> temp_dirs = {m.dir.path(), out.path()};
  GoldenRun run;
  run.text = mask_machine_facts(read_all(ctx.report_path), temp_dirs);
  run.json = mask_machine_facts(report.json, temp_dirs);
  run.doc = nlohmann::json::parse(run.text);
  return run;
}

}  // namespace

TEST_CASE("golden report: fixed fake inputs give the pinned report, byte for byte", "[golden]") {
  const GoldenRun run = golden_run();
  const std::string& text = run.text;
  CHECK(text == run.json);

  if (const char* update = std::getenv("TRAINMETER_UPDATE_GOLDEN"); update && *update == '1') {
    std::ofstream(kGolden, std::ios::binary) << text;
    WARN("golden report rewritten: " << kGolden);
  }
  const std::string golden = read_all(kGolden);
  REQUIRE_FALSE(golden.empty());
  CHECK(text == golden);
}

TEST_CASE("golden report: time between steps, per phase and thread, warm-up excluded",
          "[golden][between_steps]") {
  const nlohmann::json doc = golden_run().doc;
  // train (thread 0), warm-up 2 steps: second 0 has 7 counted gaps of 5 ms, seconds 1-3 have 8
  // each plus the gap from the previous second's last step (510, 510 and, after the 150 ms
  // step, 410 ms). The steps after those gaps: 33 of 50 ms and the 150 ms one.
  const auto& train = doc["phases"]["train"]["between_steps"];
  CHECK(train["count"] == 34);
  CHECK(train["total_ns"] == 1'585'000'000);
  CHECK(train["max_ns"].get<double>() == 510'000'000.0);
  CHECK(train["share_of_wall"].get<double>() == Approx(1585.0 / (1585.0 + 1800.0)).epsilon(1e-12));
  CHECK(train["p50_ns"].get<double>() ==
        Approx(5'000'000.0).epsilon(train["relative_accuracy"].get<double>()));
  // eval (thread 1): 4 steps, 2 of them warm-up; the other two each follow a 900 ms gap.
  const auto& eval = doc["phases"]["eval"]["between_steps"];
  CHECK(eval["count"] == 2);
  CHECK(eval["total_ns"] == 1'800'000'000);
  CHECK(eval["share_of_wall"].get<double>() == Approx(0.9).epsilon(1e-12));
}
