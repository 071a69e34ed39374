// merge_reports() and `trainmeter merge` on per-rank reports whose figures are known exactly:
// step alignment and the slowest rank, straggler counts, energy with shared machine counters
// counted once per host, carbon, peaks, missing ranks, and inputs that cannot be one run.
#include <catch2/catch.hpp>

#include <fstream>

#include <fmt/format.h>

#include "export/merge.hpp"
#include "report/json_io.hpp"
#include "support/test_support.hpp"
#include "trainmeter/error.hpp"

namespace {

using nlohmann::json;
using trainmeter::detail::merge_reports;
using trainmeter::detail::MergeOptions;
using trainmeter::detail::RankReport;
using trainmeter::test::TempDir;

struct Component {
  const char* name;
  const char* source;
  json machine_j;  // null: no machine-level figure (estimates)
  double energy_j;
};

// A schema-valid rank report: phase "train" with `train` step times (first one warm-up), phase
// "eval" with `eval` step times (first one warm-up), 8 samples per step, interleaved as a
// training loop would (eval after the 2nd and 4th training steps).
json rank_report(int rank, int world, const std::string& host,
                 const std::vector<std::int64_t>& train, const std::vector<std::int64_t>& eval,
                 const std::vector<Component>& energy, std::int64_t peak_rss,
                 const std::string& run_id = "run-42") {
  json steps = json::array();
  std::size_t ti = 0, ei = 0;
  std::int64_t offset = 1000;
  auto add = [&](const char* phase, std::int64_t wall, bool warmup) {
    steps.push_back({{"index", steps.size()},
                     {"phase", phase},
                     {"thread", 0},
                     {"start_offset_ns", offset},
                     {"wall_ns", wall},
                     {"cpu_ns", nullptr},
                     {"samples", 8},
                     {"tokens", 0},
                     {"warmup", warmup},
                     {"loss", 0.5 + rank},
                     {"peak_tensor_bytes", 100 * (rank + 1)},
                     {"energy_j", 0.25 * (rank + 1)}});
    offset += wall + 10;
  };
  while (ti < train.size() || ei < eval.size()) {
    if (ti < train.size()) {
      add("train", train[ti], ti == 0);
      ++ti;
    }
    if (ti % 2 == 0 && ei < eval.size()) {
      add("eval", eval[ei], ei == 0);
      ++ei;
    }
  }
  json components = json::array();
  double total = 0;
  for (const Component& c : energy) {
    components.push_back(
        {{"name", c.name},
         {"source", c.source},
         {"provenance", "measured"},
         {"machine_energy_j", c.machine_j},
         {"energy_j", c.energy_j},
         {"attributed_share", nullptr},
         {"average_power_w", c.energy_j / 2},
         {"machine_average_power_w",
          c.machine_j.is_null() ? json(nullptr) : json(c.machine_j.get<double>() / 2)},
         {"attribution", "cpu-time-share"},
         {"samples", 20},
         {"discarded_intervals", 0},
         {"failed_reads", 0},
         {"notes", json::array()}});
    total += c.energy_j;
  }
  const double kwh = total / 3.6e6;
  const double co2e = kwh * 1.2 * 400 / 1000;  // kWh x PUE x g/kWh
  json phase = {{"steps", 1},
                {"warmup_steps", 1},
                {"samples", 0},
                {"tokens", 0},
                {"duration_s", 0.0},
                {"step_time_ns", nullptr},
                {"samples_per_s", nullptr},
                {"tokens_per_s", nullptr},
                {"energy_j", 1.0 + rank}};
  return {{"schema_version", 1},
          {"trainmeter", {{"version", "0.1.0"}, {"build", "test"}}},
          {"run",
           {{"name", "dist"},
            {"id", run_id},
            {"status", "completed"},
            {"start_utc", fmt::format("2024-05-01T12:00:0{}.000Z", rank)},
            {"end_utc", fmt::format("2024-05-01T12:01:0{}.500Z", rank)},
            {"duration_s", 60.5},
            {"rank", rank},
            {"world_size", world},
            {"local_rank", rank},
            {"local_world_size", 2},
            {"command_line", {"dist"}},
            {"tags", json::object()},
            {"cpu_time_s", {{"user", 1.0}, {"system", 0.5}}},
            {"steps_recorded", steps.size()},
            {"steps_dropped", 0},
            {"steps_retained", steps.size()}}},
          {"host",
           {{"hostname", host},
            {"os", "Linux"},
            {"kernel", "6"},
            {"cpu_model", "cpu"},
            {"logical_cpus", 2},
            {"memory_bytes", 1 << 30},
            {"gpus", json::array()},
            {"torch_version", nullptr},
            {"cuda_version", nullptr}}},
          {"config", json::object()},
          {"model", nullptr},
          {"phases", {{"train", phase}, {"eval", phase}}},
          {"memory",
           {{"peak_rss_bytes", peak_rss},
            {"peak_rss_source", "VmHWM"},
            {"current_rss_bytes", peak_rss / 2},
            {"peak_tensor_bytes", rank == 2 ? json(nullptr) : json({{"cpu", 100 * (rank + 1)}})},
            {"cuda", nullptr},
            {"notes", json::array()},
            {"timeline",
             {{"interval_ms", 100}, {"samples", 1}, {"dropped", 0}, {"points", {{0, peak_rss}}}}}}},
          {"energy",
           {{"components", components},
            {"total_j", total},
            {"total_kwh", kwh},
            {"pue", 1.2},
            {"total_kwh_with_pue", kwh * 1.2},
            {"samples", 20},
            {"sample_interval_ms", 100},
            {"sources_tried", json::array()},
            {"step_attribution", "by time overlap"}}},
          {"carbon",
           {{"intensity_g_per_kwh", 400.0},
            {"intensity_source", "explicit"},
            {"region", nullptr},
            {"region_name", nullptr},
            {"data_source", "test"},
            {"data_year", nullptr},
            {"pue", 1.2},
            {"energy_kwh", kwh},
            {"energy_kwh_with_pue", kwh * 1.2},
            {"co2e_kg", co2e},
            {"formula", "kWh x PUE x g/kWh"},
            {"equivalents", {{"car_km", nullptr}}},
            {"time_series", nullptr}}},
          {"cost", nullptr},
          {"steps", steps},
          {"diagnostics", json::array({{{"source", "energy"},
                                        {"status", "unavailable"},
                                        {"count", 1},
                                        {"message", "no perf"}}})}};
}

// Ranks 0 and 1 share host nodeA (one CPU package, one DRAM domain, each read by both); rank 2
// is alone on nodeB with a package counter and a per-process GPU estimate.
std::vector<RankReport> three_ranks() {
  return {
      {"r0.json",
       rank_report(0, 3, "nodeA", {100, 10, 20, 30, 40}, {5, 7},
                   {{"cpu", "rapl:package-0", 100.0, 40}, {"dram", "rapl:dram", 20.0, 8}}, 1000)},
      {"r1.json",
       rank_report(1, 3, "nodeA", {90, 15, 18, 35, 41}, {6, 6},
                   {{"cpu", "rapl:package-0", 98.0, 45}, {"dram", "rapl:dram", 21.0, 9}}, 3000)},
      {"r2.json",
       rank_report(2, 3, "nodeB", {95, 12, 25, 28, 39}, {8, 4},
                   {{"cpu", "rapl:package-0", 80.0, 30}, {"gpu:0", "estimate:tdp", nullptr, 12}},
                   2000)},
  };
}

std::vector<json> phase_steps(const json& merged, const std::string& phase) {
  std::vector<json> out;
  for (const json& s : merged["steps"])
    if (s["phase"] == phase) out.push_back(s);
  return out;
}

const json& component(const json& merged, const std::string& host, const std::string& name) {
  for (const json& c : merged["energy"]["components"])
    if (c["host"] == host && c["name"] == name) return c;
  FAIL("no component " << name << " on " << host);
  static json none;
  return none;
}

std::string write_and_validate(const TempDir& dir, const json& doc) {
  const std::string path = dir / "merged.json";
  trainmeter::test::write_file(path, trainmeter::detail::dump_report(doc));
  return trainmeter::test::schema_errors(path);
}

}  // namespace

TEST_CASE("merge: the run's step time is the slowest rank's, with spread and straggler counts",
          "[merge]") {
  const json m = merge_reports(three_ranks(), MergeOptions());
  const auto train = phase_steps(m, "train");
  REQUIRE(train.size() == 5);
  const std::vector<std::int64_t> wall = {100, 15, 25, 35, 41};
  const std::vector<int> slowest = {0, 1, 2, 1, 1};
  const std::vector<std::int64_t> spread = {10, 5, 7, 7, 2};
  for (std::size_t k = 0; k < 5; ++k) {
    CHECK(train[k]["wall_ns"] == wall[k]);
    CHECK(train[k]["slowest_rank"] == slowest[k]);
    CHECK(train[k]["spread_ns"] == spread[k]);
    CHECK(train[k]["samples"] == 24);
    CHECK(train[k]["ranks"] == 3);
    CHECK(train[k]["peak_tensor_bytes"] == 300);
    CHECK(train[k]["energy_j"].get<double>() == Approx(0.25 + 0.5 + 0.75));
    CHECK(train[k]["loss"].get<double>() == Approx(1.5));
  }
  CHECK(train[0]["warmup"] == true);
  // Per step only what does not grow with the world size: no per-rank step times.
  CHECK_FALSE(train[1].contains("rank_wall_ns"));
  const auto eval = phase_steps(m, "eval");
  REQUIRE(eval.size() == 2);
  CHECK(eval[1]["wall_ns"] == 7);
  CHECK(eval[1]["slowest_rank"] == 0);
  CHECK(eval[1]["spread_ns"] == 3);

  // Order follows the lowest rank's interleaving: train, train, eval, train, train, eval, train.
  std::vector<std::string> order;
  for (const json& s : m["steps"]) order.push_back(s["phase"]);
  CHECK(order ==
        std::vector<std::string>{"train", "train", "eval", "train", "train", "eval", "train"});
  for (std::size_t i = 0; i < m["steps"].size(); ++i) CHECK(m["steps"][i]["index"] == i);

  const json& tp = m["phases"]["train"];
  CHECK(tp["steps"] == 5);
  CHECK(tp["warmup_steps"] == 1);
  CHECK(tp["samples"] == 4 * 24);
  CHECK(tp["duration_s"].get<double>() == Approx(116e-9));
  CHECK(tp["samples_per_s"].get<double>() == Approx(96 / 116e-9));
  CHECK(tp["step_time_ns"]["mean"].get<double>() == Approx(29.0));
  CHECK(tp["step_time_ns"]["min"] == 15);
  CHECK(tp["step_time_ns"]["max"] == 41);
  CHECK(tp["step_time_ns"]["p50"] == 30);  // between 25 and 35, linear interpolation
  CHECK(tp["spread_ns"]["max"].get<double>() == 7);
  CHECK(tp["spread_ns"]["mean"].get<double>() == Approx((5 + 7 + 7 + 2) / 4.0));
  CHECK(tp["slowest_rank_counts"] == json({{"1", 3}, {"2", 1}}));
  CHECK(tp["straggler_rank"] == 1);
  CHECK(tp["energy_j"].get<double>() == Approx(1 + 2 + 3));
  CHECK(m["ranks"]["slowest_rank_counts"] == json({{"0", 1}, {"1", 3}, {"2", 1}}));
  CHECK(m["ranks"]["straggler_rank"] == 1);
  CHECK(m["ranks"]["compared_steps"] == 5);
  CHECK(m["ranks"]["per_rank"][1]["slowest_steps"] == 3);
  // Every rank's own phase statistics stay available.
  CHECK(m["ranks"]["per_rank"][2]["phases"]["train"]["energy_j"] == 3.0);

  TempDir dir;
  CHECK(write_and_validate(dir, m) == "");
}

TEST_CASE("merge: energy sums attributed shares and counts a host's machine counters once",
          "[merge]") {
  const json m = merge_reports(three_ranks(), MergeOptions());
  const json& e = m["energy"];
  // Attributed: 48 + 54 + 42. Machine level: nodeA package 100 (not 100 + 98), nodeA DRAM 21,
  // nodeB package 80, plus the GPU estimate 12, which has no machine figure.
  CHECK(e["total_j"].get<double>() == Approx(144.0));
  CHECK(e["total_kwh"].get<double>() == Approx(144.0 / 3.6e6));
  CHECK(e["machine_total_j"].get<double>() == Approx(100 + 21 + 80 + 12));
  CHECK(e["total_kwh_with_pue"].get<double>() == Approx(144.0 / 3.6e6 * 1.2));
  const json& cpu_a = component(m, "nodeA", "cpu");
  CHECK(cpu_a["ranks"] == json({0, 1}));
  CHECK(cpu_a["energy_j"].get<double>() == Approx(85));
  CHECK(cpu_a["machine_energy_j"].get<double>() == Approx(100));
  CHECK(cpu_a["attributed_share"].get<double>() == Approx(0.85));
  CHECK(cpu_a["average_power_w"].get<double>() == Approx(42.5));
  CHECK(cpu_a["machine_average_power_w"].get<double>() == Approx(50));
  CHECK(cpu_a["samples"] == 40);
  const json& cpu_b = component(m, "nodeB", "cpu");
  CHECK(cpu_b["ranks"] == json({2}));
  CHECK(cpu_b["machine_energy_j"].get<double>() == Approx(80));
  CHECK(component(m, "nodeB", "gpu:0")["machine_energy_j"].is_null());
  CHECK(e["components"].size() == 4);
  CHECK(e["per_host"]["nodeA"]["machine_energy_j"].get<double>() == Approx(121));
  CHECK(e["per_host"]["nodeA"]["energy_j"].get<double>() == Approx(102));
  CHECK(e["per_host"]["nodeA"]["ranks"] == json({0, 1}));
  CHECK(e["per_host"]["nodeB"]["machine_energy_j"].get<double>() == Approx(92));

  // Carbon: each rank's kg summed (same grid), equivalents recomputed from the sum.
  const double kg = 144.0 / 3.6e6 * 1.2 * 400 / 1000;
  CHECK(m["carbon"]["co2e_kg"].get<double>() == Approx(kg));
  CHECK(m["carbon"]["energy_kwh"].get<double>() == Approx(144.0 / 3.6e6));
  CHECK(m["carbon"]["intensity_g_per_kwh"] == 400.0);
  CHECK(m["carbon"]["equivalents"]["car_km"].get<double>() == Approx(kg * 1000 / 175.0));
  CHECK(m["carbon"]["per_rank"].size() == 3);
}

TEST_CASE("merge: peaks per rank, the largest in the merged memory section", "[merge]") {
  const json m = merge_reports(three_ranks(), MergeOptions());
  CHECK(m["memory"]["peak_rss_bytes"] == 3000);
  CHECK(m["memory"]["peak_tensor_bytes"] == json({{"cpu", 200}}));  // rank 2 has none
  CHECK(m["memory"]["current_rss_bytes"] == 1500);
  CHECK(m["memory"]["cuda"].is_null());  // null on every rank stays null
  CHECK(m["memory"]["peak_rss_source"] == "VmHWM");
  const json& per = m["ranks"]["per_rank"];
  REQUIRE(per.size() == 3);
  CHECK(per[0]["memory"]["peak_rss_bytes"] == 1000);
  CHECK(per[1]["memory"]["peak_rss_bytes"] == 3000);
  CHECK(per[2]["memory"]["peak_rss_bytes"] == 2000);
  CHECK_FALSE(per[0]["memory"].contains("timeline"));
  CHECK(per[2]["hostname"] == "nodeB");
  CHECK(m["ranks"]["hosts"] == json({{"nodeA", {0, 1}}, {"nodeB", {2}}}));
}

TEST_CASE("merge: hosts are hostname plus boot id, so two machines named alike stay two",
          "[merge]") {
  // Ranks 0 and 1 say nodeA but booted differently (two machines with one name); rank 2 is
  // nodeB. Each nodeA machine's CPU energy is its own (100 J and 98 J machine-level), not one
  // machine's counted once.
  std::vector<RankReport> ranks = three_ranks();
  ranks[0].report["host"]["boot_id"] = "boot-a";
  ranks[1].report["host"]["boot_id"] = "boot-b";
  ranks[2].report["host"]["boot_id"] = "boot-c";
  const json m = merge_reports(ranks, MergeOptions());
  CHECK(m["ranks"]["hosts"] ==
        json({{"nodeA/boot-a", {0}}, {"nodeA/boot-b", {1}}, {"nodeB", {2}}}));
  CHECK(m["energy"]["per_host"]["nodeA/boot-a"]["machine_energy_j"].get<double>() == Approx(120));
  CHECK(m["energy"]["per_host"]["nodeA/boot-b"]["machine_energy_j"].get<double>() == Approx(119));

  // The same boot id on both nodeA ranks: one machine, labelled by its hostname.
  ranks[1].report["host"]["boot_id"] = "boot-a";
  const json one = merge_reports(ranks, MergeOptions());
  CHECK(one["ranks"]["hosts"] == json({{"nodeA", {0, 1}}, {"nodeB", {2}}}));
  CHECK(one["energy"]["per_host"]["nodeA"]["machine_energy_j"].get<double>() == Approx(121));
}

TEST_CASE("merge: run facts, diagnostics and rendezvous address", "[merge]") {
  MergeOptions o;
  o.master_addr.emplace(
      "10.0.0.1");  // (assigning a literal trips GCC 12 -O2 -Wmaybe-uninitialized)
  o.master_port = 29500;
  const json m = merge_reports(three_ranks(), o);
  const json& run = m["run"];
  CHECK(run["id"] == "run-42");
  CHECK(run["status"] == "completed");
  CHECK(run["world_size"] == 3);
  CHECK(run["start_utc"] == "2024-05-01T12:00:00.000Z");
  CHECK(run["end_utc"] == "2024-05-01T12:01:02.500Z");
  CHECK(run["duration_s"].get<double>() == Approx(62.5));
  CHECK(run["cpu_time_s"]["user"].get<double>() == Approx(3.0));
  CHECK(run["steps_recorded"] == 21);
  CHECK(run["missing_ranks"] == json::array());
  CHECK(run["master_addr"] == "10.0.0.1");
  CHECK(run["master_port"] == 29500);
  CHECK(m["ranks"]["merged_by"] == "merge");
  CHECK(m["ranks"]["gather"].is_null());
  // Each rank's diagnostics, tagged with the rank.
  REQUIRE(m["diagnostics"].size() == 3);
  CHECK(m["diagnostics"][2]["source"] == "rank2:energy");
  // Start offsets are on one clock: rank 0 started first, its first step 1000 ns in.
  CHECK(phase_steps(m, "train")[0]["start_offset_ns"] == 1000);

  // Rank 1 started 1 s after rank 0 (start_utc 12:00:01 vs 12:00:00). Move rank 0's steps 1.5 s
  // later: rank 1's first step (1000 ns after its own start) is now the earliest, at 1 s +
  // 1000 ns on the run's clock. Only applying rank 1's clock offset gives that figure.
  auto shifted = three_ranks();
  for (json& st : shifted[0].report["steps"])
    st["start_offset_ns"] = st["start_offset_ns"].get<std::int64_t>() + 1500000000;
  const json ms = merge_reports(shifted, o);
  CHECK(phase_steps(ms, "train")[0]["start_offset_ns"] == 1000001000);
}

TEST_CASE("merge: missing ranks are listed with their reason and the run is not 'completed'",
          "[merge]") {
  auto ranks = three_ranks();
  for (auto& r : ranks) r.report["run"]["world_size"] = 4;
  MergeOptions o;
  o.missing_reasons = {{3, "timed out after 5000 ms"}};
  const json m = merge_reports(ranks, o);
  CHECK(m["run"]["missing_ranks"] == json({3}));
  CHECK(m["run"]["status"] == "aborted");
  CHECK(m["ranks"]["missing"] == json({{{"rank", 3}, {"reason", "timed out after 5000 ms"}}}));
  CHECK(m["ranks"]["present"] == json({0, 1, 2}));
  const json& last = m["diagnostics"].back();
  CHECK(last["source"] == "merge");
  CHECK(last["status"] == "unavailable");
  CHECK(last["message"].get<std::string>().find("rank 3 (timed out after 5000 ms)") !=
        std::string::npos);
  TempDir dir;
  CHECK(write_and_validate(dir, m) == "");
}

TEST_CASE("merge: a rank that did not retain every step is flagged", "[merge]") {
  auto ranks = three_ranks();
  ranks[1].report["run"]["steps_recorded"] = 500;
  const json m = merge_reports(ranks, MergeOptions());
  CHECK(m["ranks"]["per_rank"][1]["steps_complete"] == false);
  bool flagged = false;
  for (const json& d : m["diagnostics"])
    flagged = flagged || (d["source"] == "merge" && d["status"] == "skipped");
  CHECK(flagged);
}

TEST_CASE("merge: reports that cannot be one run are refused with the reason", "[merge]") {
  auto dup = three_ranks();
  dup[2].report["run"]["rank"] = 1;
  CHECK_THROWS_WITH(merge_reports(dup, MergeOptions()),
                    Catch::Contains("r1.json and r2.json are both rank 1"));
  auto world = three_ranks();
  world[1].report["run"]["world_size"] = 2;
  CHECK_THROWS_WITH(merge_reports(world, MergeOptions()),
                    Catch::Contains("r1.json: world_size 2 differs"));
  auto ids = three_ranks();
  ids[2].report["run"]["id"] = "other";
  CHECK_THROWS_WITH(merge_reports(ids, MergeOptions()),
                    Catch::Contains("r2.json: run.id 'other' differs"));
  MergeOptions allow;
  allow.allow_mixed_run_ids = true;
  CHECK(merge_reports(ids, allow)["ranks"]["per_rank"][2]["run_id"] == "other");
  std::vector<RankReport> bad = {{"x.json", json::array()}};
  CHECK_THROWS_AS(merge_reports(bad, MergeOptions()), trainmeter::Error);
  CHECK_THROWS_AS(merge_reports({}, MergeOptions()), trainmeter::Error);
}

TEST_CASE("trainmeter merge: the CLI writes the same merged report", "[merge][cli]") {
  TempDir dir;
  std::string files;
  for (const RankReport& r : three_ranks()) {
    trainmeter::test::write_file(dir / r.origin, r.report.dump());
    files += " '" + (dir / r.origin) + "'";
  }
  const std::string out = dir / "run.json";
  auto res = trainmeter::test::run_cli("merge" + files + " -o '" + out + "' --master-port 29500");
  INFO(res.output);
  REQUIRE(res.exit_code == 0);
  CHECK(res.output.find("merged 3 of 3 rank(s)") != std::string::npos);
  CHECK(trainmeter::test::schema_errors(out) == "");
  const json m = trainmeter::test::read_json(out);
  CHECK(m["energy"]["machine_total_j"].get<double>() == Approx(213));
  CHECK(m["run"]["master_port"] == 29500);
  CHECK(m["ranks"]["per_rank"][0]["origin"] == dir / "r0.json");

  // Missing output option, a rank given twice, unreadable input: one line, exit 2.
  res = trainmeter::test::run_cli("merge" + files);
  CHECK(res.exit_code == 2);
  CHECK(res.output.find("--out") != std::string::npos);
  res = trainmeter::test::run_cli("merge '" + (dir / "r0.json") + "' '" + (dir / "r0.json") +
                                  "' -o '" + out + "'");
  CHECK(res.exit_code == 2);
  CHECK(res.output.find("both rank 0") != std::string::npos);
  CHECK(std::count(res.output.begin(), res.output.end(), '\n') == 1);
  // --world-size: the run had 4 ranks, only 3 reports: rank 3 is listed missing.
  res = trainmeter::test::run_cli("merge" + files + " -o '" + (dir / "run4.json") +
                                  "' --world-size 4");
  INFO(res.output);
  REQUIRE(res.exit_code == 0);
  CHECK(res.output.find("merged 3 of 4 rank(s)") != std::string::npos);
  const json m4 = trainmeter::test::read_json(dir / "run4.json");
  CHECK(m4["run"]["world_size"] == 4);
  CHECK(m4["run"]["missing_ranks"] == json::array({3}));
  CHECK(m4["run"]["status"] != "completed");
  CHECK(trainmeter::test::schema_errors(dir / "run4.json") == "");
  res = trainmeter::test::run_cli("merge" + files + " -o '" + (dir / "run0.json") +
                                  "' --world-size 0");
  CHECK(res.exit_code == 2);
  CHECK(res.output.find("--world-size 0") != std::string::npos);
  trainmeter::test::write_file(dir / "torn.json", "{\"run\": ");
  res = trainmeter::test::run_cli("merge '" + (dir / "torn.json") + "' -o '" + out + "'");
  CHECK(res.exit_code == 2);
  CHECK(res.output.find("torn.json") != std::string::npos);
}

TEST_CASE("merge: the compact path reduced block by block equals the whole-run merge", "[merge]") {
  // What gather() does with allreduce: every rank encodes the same plan in blocks, the blocks are
  // reduced by elementwise MAX and SUM, and merge_compact() builds the report.
  namespace d = trainmeter::detail;
  const auto inputs = three_ranks();
  std::vector<json> summaries;
  for (const RankReport& in : inputs) summaries.push_back(d::rank_summary(in.report, in.origin));
  const d::StepPlan plan = d::step_plan(summaries, 3);
  CHECK(plan.phases == std::vector<std::string>{"eval", "train"});
  CHECK(plan.counts == std::vector<std::int64_t>{2, 5});
  CHECK(plan.rank_bits == 2);
  d::ReducedSteps reduced;
  reduced.max.resize(7 * d::kStepMaxFields);
  reduced.sum.resize(7 * d::kStepSumFields);
  for (std::int64_t first = 0; first < 7; first += 3) {  // blocks of 3 aligned steps
    const std::int64_t n = std::min<std::int64_t>(3, 7 - first);
    std::vector<std::int64_t> mx(n * d::kStepMaxFields), sm(n * d::kStepSumFields);
    d::identity_steps(n, mx.data(), sm.data());
    for (std::size_t r = 0; r < inputs.size(); ++r) {
      std::vector<std::int64_t> a(mx.size()), b(sm.size());
      d::LocalSteps(inputs[r].report, summaries[r]).encode(plan, first, n, a.data(), b.data());
      for (std::size_t j = 0; j < a.size(); ++j) mx[j] = std::max(mx[j], a[j]);
      for (std::size_t j = 0; j < b.size(); ++j) sm[j] += b[j];
    }
    std::copy(mx.begin(), mx.end(), reduced.max.begin() + first * d::kStepMaxFields);
    std::copy(sm.begin(), sm.end(), reduced.sum.begin() + first * d::kStepSumFields);
  }
  const json blocked = d::merge_compact(inputs[0].report, summaries, plan, reduced, MergeOptions());
  CHECK(blocked == merge_reports(inputs, MergeOptions()));
  // A summary is small and does not carry steps.
  for (const json& s : summaries) {
    CHECK(s.dump().size() < 4096);
    CHECK_FALSE(s.contains("steps"));
  }
}

namespace {

// Three ranks of `n` training and n/4 eval steps each, with the shapes a merge meets: cpu times
// on some ranks, missing losses and energies, a rank that retained fewer steps, a steps[] entry
// that is not a step and one without wall_ns.
std::vector<RankReport> large_ranks(std::size_t n) {
  std::vector<RankReport> out;
  for (int r = 0; r < 3; ++r) {
    std::vector<std::int64_t> train, eval;
    const std::size_t mine = r == 2 ? n - n / 10 : n;
    for (std::size_t i = 0; i < mine; ++i)
      train.push_back(1000 + std::int64_t((i * 7919 + 13 * r) % 5000));
    for (std::size_t i = 0; i < mine / 4; ++i)
      eval.push_back(300 + std::int64_t((i * 104729 + r) % 900));
    json rep = rank_report(r, 3, r == 2 ? "nodeB" : "nodeA", train, eval,
                           {{"cpu", "rapl:package-0", 100.0 + r, 40.0 + r}}, 1000 * (r + 1));
    json& steps = rep["steps"];
    for (std::size_t i = 0; i < steps.size(); ++i) {
      json& s = steps[i];
      if (r == 0) s["cpu_ns"] = s["wall_ns"].get<std::int64_t>() / 2;
      if (r == 1 && i % 7 == 0) s["loss"] = nullptr;
      if (r == 2 && i % 5 == 0) s.erase("energy_j");
      if (r == 1 && i % 11 == 0) s["energy_j"] = nullptr;
      s["loss"] = s["loss"].is_null() ? json(nullptr) : json(0.001 * double(i % 1000) + r);
    }
    if (r == 1) {
      steps.push_back("not a step");
      steps.push_back({{"index", steps.size()}, {"phase", "train"}});
    }
    rep["run"]["steps_recorded"] = r == 2 ? steps.size() + 100 : steps.size();
    out.push_back({"r" + std::to_string(r) + ".json", std::move(rep)});
  }
  return out;
}

// The files of `ranks` written as a session writes them; their origins become the paths.
std::vector<std::string> write_ranks(const TempDir& dir, std::vector<RankReport>& ranks) {
  std::vector<std::string> paths;
  for (RankReport& r : ranks) {
    r.origin = dir / r.origin;
    trainmeter::test::write_file(r.origin, trainmeter::detail::dump_report(r.report));
    paths.push_back(r.origin);
  }
  return paths;
}

std::string quoted(const std::vector<std::string>& paths) {
  std::string out;
  for (const std::string& p : paths) out += " '" + p + "'";
  return out;
}

}  // namespace

TEST_CASE("merge from files, one rank at a time and steps streamed: the same bytes", "[merge]") {
  namespace d = trainmeter::detail;
  TempDir dir;
  for (const std::size_t n : {std::size_t(0), std::size_t(20000)}) {
    INFO("steps per rank: " << n);
    std::vector<RankReport> ranks = n == 0 ? three_ranks() : large_ranks(n);
    const std::vector<std::string> paths = write_ranks(dir, ranks);
    MergeOptions o;
    o.master_port = 29500;
    const std::string expected = d::dump_report(merge_reports(ranks, o));
    std::size_t steps_seen = 0;
    d::RankFiles files =
        d::read_rank_files(paths, [&](const std::string& path, const d::StepVisitor& on_step) {
          auto loaded = d::load_report_sections(path, nullptr, [&](const json& s, std::size_t i) {
            ++steps_seen;
            on_step(s, i);
          });
          REQUIRE(loaded.value);
          return std::move(*loaded.value);
        });
    std::size_t total = 0;
    for (const RankReport& r : ranks) total += r.report["steps"].size();
    CHECK(steps_seen == total);
    CHECK(files.summaries.size() == 3);
    CHECK(files.world_size == 3);
    CHECK(files.base["run"]["rank"] == 0);
    CHECK(files.base["steps"] == json::array());  // no rank's steps are kept as JSON
    for (std::size_t r = 0; r < 3; ++r)
      CHECK(files.summaries[r] == d::rank_summary(ranks[r].report, ranks[r].origin));
    const std::string out = dir / "merged.json";
    const json merged = d::write_merged_files(std::move(files), o, out);
    CHECK(merged["steps"] == json::array());
    CHECK(trainmeter::test::read_file(out) == expected);
    if (n > 0) {
      const json m = trainmeter::test::read_json(out);
      CHECK(m["ranks"]["aligned_steps"] == n + n / 4);
      CHECK(m["steps"].size() == n + n / 4);
      CHECK(trainmeter::test::schema_errors(out) == "");
    }
    // The CLI takes the same path.
    const std::string cli_out = dir / "cli.json";
    auto res = trainmeter::test::run_cli("merge" + quoted(paths) + " -o '" + cli_out +
                                         "' --master-port 29500");
    INFO(res.output);
    REQUIRE(res.exit_code == 0);
    CHECK(trainmeter::test::read_file(cli_out) == expected);
  }
}

TEST_CASE("merge from files: refusals are those of merge_reports(), nothing is written",
          "[merge]") {
  namespace d = trainmeter::detail;
  TempDir dir;
  std::vector<RankReport> ranks = three_ranks();
  ranks[1].report["run"].erase("rank");
  const std::vector<std::string> paths = write_ranks(dir, ranks);
  const auto load = [](const std::string& path, const d::StepVisitor& on_step) {
    return *d::load_report_sections(path, nullptr, on_step).value;
  };
  const std::string out = dir / "merged.json";
  CHECK_THROWS_WITH(d::write_merged_files(d::read_rank_files(paths, load), MergeOptions(), out),
                    Catch::Contains("r1.json: not a trainmeter report with run.rank"));
  CHECK_FALSE(std::ifstream(out).good());
  CHECK_THROWS_WITH(d::write_merged_files(d::read_rank_files({}, load), MergeOptions(), out),
                    "cannot merge: no reports given");
}
