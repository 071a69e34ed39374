// Real distributed runs on localhost: N processes of dist_rank (a c10d Gloo process group over a
// FileStore), each with a Session, gathering to rank 0. The merged report is checked against the
// reports the ranks wrote themselves.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <thread>

#include "support/test_support.hpp"

namespace {

using nlohmann::json;
using trainmeter::test::read_json;
using trainmeter::test::TempDir;
using Clock = std::chrono::steady_clock;

struct Ranks {
  std::vector<int> exit_codes;  // -1: killed at the deadline
  double seconds = 0;
};

// Starts `world` ranks and waits for all of them, at most `limit_s` (then kills the rest, so a
// hang fails the test instead of blocking it).
Ranks run_ranks(const TempDir& dir, int world, const std::vector<std::string>& extra,
                double limit_s = 45) {
  const std::string store = dir / "store";
  std::vector<pid_t> pids;
  const auto t0 = Clock::now();
  for (int r = 0; r < world; ++r) {
    std::vector<std::string> args = {TM_DIST_RANK, "store=" + store, "rank=" + std::to_string(r),
                                     "world=" + std::to_string(world), "out=" + dir.path()};
    args.insert(args.end(), extra.begin(), extra.end());
    const std::string log = dir / ("rank" + std::to_string(r) + ".log");
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      setenv("OMP_NUM_THREADS", "1", 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    pids.push_back(pid);
  }
  Ranks out;
  out.exit_codes.assign(static_cast<std::size_t>(world), -2);
  std::size_t done = 0;
  while (done < pids.size()) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (out.exit_codes[i] != -2) continue;
      int status = 0;
      if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        out.exit_codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ++done;
      }
    }
    if (std::chrono::duration<double>(Clock::now() - t0).count() > limit_s) {
      for (std::size_t i = 0; i < pids.size(); ++i)
        if (out.exit_codes[i] == -2) {
          kill(pids[i], SIGKILL);
          waitpid(pids[i], nullptr, 0);
          out.exit_codes[i] = -1;
        }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int r = 0; r < world; ++r)
    UNSCOPED_INFO(
        "rank " << r << " log:\n"
                << trainmeter::test::read_file(dir / ("rank" + std::to_string(r) + ".log")));
  return out;
}

// Shell-quoted arguments for run_cli.
std::string fmt_args(const std::vector<std::string>& args) {
  std::string out;
  for (const std::string& a : args) out += (out.empty() ? "'" : " '") + a + "'";
  return out;
}

// Steps of one phase in a report, in order.
std::vector<json> steps_of(const json& report, const std::string& phase) {
  std::vector<json> out;
  for (const json& s : report["steps"])
    if (s["phase"] == phase) out.push_back(s);
  return out;
}

// Checks the merged steps against the ranks' own: same count, wall = max, slowest = argmax,
// samples summed. Returns how often each rank was slowest (non-warm-up steps).
std::map<int, int> check_steps(const json& merged, const std::vector<json>& ranks) {
  const auto m = steps_of(merged, "train");
  std::vector<std::vector<json>> per;
  for (const json& r : ranks) per.push_back(steps_of(r, "train"));
  std::map<int, int> slowest;
  for (const auto& p : per) REQUIRE(p.size() == m.size());
  for (std::size_t k = 0; k < m.size(); ++k) {
    std::int64_t max = -1, min = INT64_MAX;
    int arg = -1;
    std::uint64_t samples = 0;
    for (std::size_t r = 0; r < per.size(); ++r) {
      const std::int64_t w = per[r][k]["wall_ns"];
      if (w > max) {
        max = w;
        arg = ranks[r]["run"]["rank"];
      }
      min = std::min(min, w);
      samples += per[r][k]["samples"].get<std::uint64_t>();
    }
    CHECK(m[k]["wall_ns"] == max);
    CHECK(m[k]["slowest_rank"] == arg);
    CHECK(m[k]["spread_ns"] == max - min);
    CHECK(m[k]["samples"] == samples);
    CHECK(m[k]["ranks"] == per.size());
    if (!m[k]["warmup"].get<bool>()) ++slowest[arg];
  }
  return slowest;
}

}  // namespace

TEST_CASE("gather over Gloo, 2 ranks: merged steps, straggler and shared RAPL package counted once",
          "[distributed]") {
  TempDir dir;
  // A fake powercap tree: one package both ranks read; rank 0 advances it at 100 W.
  trainmeter::test::write_file(dir / "powercap/intel-rapl:0/name", "package-0\n");
  trainmeter::test::write_file(dir / "powercap/intel-rapl:0/energy_uj", "1000000000000\n");
  trainmeter::test::write_file(dir / "powercap/intel-rapl:0/max_energy_range_uj",
                               "9999999999999\n");
  const Ranks ranks =
      run_ranks(dir, 2, {"steps=12", "slow_rank=1", "slow_ms=15", "rapl=" + (dir / "powercap")});
  REQUIRE(ranks.exit_codes == std::vector<int>{0, 0});

  const json r0 = read_json(dir / "run.rank0.json");
  const json r1 = read_json(dir / "run.rank1.json");
  const json m = read_json(dir / "run.json");
  CHECK(trainmeter::test::schema_errors(dir / "run.json") == "");
  // distributed_config(): one run id on every rank.
  CHECK(r0["run"]["id"] == r1["run"]["id"]);
  CHECK(m["run"]["id"] == r0["run"]["id"]);
  CHECK(m["run"]["world_size"] == 2);
  CHECK(m["run"]["missing_ranks"] == json::array());
  CHECK(m["run"]["status"] == "completed");
  CHECK(m["ranks"]["merged_by"] == "gather");
  CHECK(m["ranks"]["gather"]["backend"] == "gloo");

  const auto slowest = check_steps(m, {r0, r1});
  // Rank 1 sleeps 15 ms in every step: the slowest rank of most of the 11 counted steps (not
  // necessarily all: on a loaded machine rank 0 can be descheduled for longer than that).
  CHECK(slowest.count(1) == 1);
  CHECK(slowest.at(1) > 11 / 2);
  CHECK(m["ranks"]["straggler_rank"] == 1);
  CHECK(m["phases"]["train"]["slowest_rank_counts"]["1"] == slowest.at(1));
  CHECK(m["phases"]["train"]["slowest_rank_counts"].value("0", 0) ==
        (slowest.count(0) ? slowest.at(0) : 0));
  CHECK(m["phases"]["train"]["samples"] == 11 * 32);

  // Energy: attributed shares summed; the one package counted once (the larger reading).
  auto cpu = [](const json& r) -> const json& {
    for (const json& c : r["energy"]["components"])
      if (c["name"] == "cpu") return c;
    FAIL("no cpu component");
    return r;
  };
  // The driver adds 0.5 J (500,000 uJ) per tick to a counter both ranks read: each rank's machine
  // figure is a whole number of ticks, at least one, and at most what the counter advanced over
  // the whole test (read back from the file, now that the driver has stopped).
  const double m0 = cpu(r0)["machine_energy_j"], m1 = cpu(r1)["machine_energy_j"];
  const double advanced_j =
      double(std::stoll(trainmeter::test::read_file(dir / "powercap/intel-rapl:0/energy_uj")) -
             1000000000000LL) /
      1e6;
  for (double mj : {m0, m1}) {
    CHECK(std::fmod(mj, 0.5) == 0.0);
    CHECK(mj >= 0.5);
    CHECK(mj <= advanced_j);
  }
  CHECK(cpu(r0)["energy_j"].get<double>() <= m0);  // the attributed share of the machine figure
  CHECK(cpu(r1)["energy_j"].get<double>() <= m1);
  CHECK(m["energy"]["total_j"].get<double>() ==
        Approx(r0["energy"]["total_j"].get<double>() + r1["energy"]["total_j"].get<double>()));
  CHECK(m["energy"]["machine_total_j"].get<double>() == Approx(std::max(m0, m1)));
  CHECK(cpu(m)["ranks"] == json({0, 1}));
  CHECK(cpu(m)["energy_j"].get<double>() ==
        Approx(cpu(r0)["energy_j"].get<double>() + cpu(r1)["energy_j"].get<double>()));

  // Per-rank figures as each rank recorded them.
  for (const json* r : {&r0, &r1}) {
    const int k = (*r)["run"]["rank"];
    const json& pr = m["ranks"]["per_rank"][static_cast<std::size_t>(k)];
    CHECK(pr["memory"]["peak_rss_bytes"] == (*r)["memory"]["peak_rss_bytes"]);
    CHECK(pr["phases"]["train"]["step_time_ns"] == (*r)["phases"]["train"]["step_time_ns"]);
    CHECK(pr["energy_j"] == (*r)["energy"]["total_j"]);
  }
  CHECK(m["memory"]["peak_rss_bytes"] ==
        std::max(r0["memory"]["peak_rss_bytes"].get<std::int64_t>(),
                 r1["memory"]["peak_rss_bytes"].get<std::int64_t>()));

  // What each rank said about the gather: a 4096-byte summary, then 12 aligned steps of 7 MAX
  // and 8 SUM int64 fields by allreduce (12 x 15 x 8 = 1440 bytes); not the rank's report.
  const json g0 = read_json(dir / "gather.rank0.json");
  const json g1 = read_json(dir / "gather.rank1.json");
  CHECK(g0["merged_written"] == true);
  CHECK(g0["merged_path"] == dir / "run.json");
  CHECK(g0["error"] == "");
  CHECK(g1["sent"] == true);
  CHECK(g1["error"] == "");
  CHECK(g1["payload_bytes"] == 4096 + 1440);
  CHECK(g0["payload_bytes"] == 1440);
  CHECK(g0["received_bytes"] == 4096);
  CHECK(m["ranks"]["gather"]["mode"] == "allreduce");
  CHECK(m["ranks"]["gather"]["step_blocks"] == 1);
  CHECK(m["ranks"]["gather"]["payload_bytes"][1].get<std::int64_t>() < 4096);
  CHECK(m["ranks"]["gather"]["payload_bytes"][1].get<std::int64_t>() <
        std::int64_t(std::filesystem::file_size(dir / "run.rank1.json")));
}

TEST_CASE("gather over Gloo, 3 ranks: every rank's steps and peaks in the merged report",
          "[distributed]") {
  TempDir dir;
  const Ranks ranks = run_ranks(dir, 3, {"steps=10", "slow_rank=2", "slow_ms=15"});
  REQUIRE(ranks.exit_codes == std::vector<int>{0, 0, 0});
  std::vector<json> r;
  for (int k = 0; k < 3; ++k)
    r.push_back(read_json(dir / ("run.rank" + std::to_string(k) + ".json")));
  const json m = read_json(dir / "run.json");
  CHECK(trainmeter::test::schema_errors(dir / "run.json") == "");
  CHECK(m["ranks"]["present"] == json({0, 1, 2}));
  const auto slowest = check_steps(m, r);
  CHECK(slowest.count(2) == 1);
  CHECK(slowest.at(2) > 9 / 2);  // rank 2 sleeps 15 ms per step: slowest in most of the 9
  CHECK(m["ranks"]["straggler_rank"] == 2);
  double total = 0;
  for (const json& x : r) total += x["energy"]["total_j"].get<double>();
  CHECK(m["energy"]["total_j"].get<double>() == Approx(total));
  std::int64_t recorded = 0;
  for (const json& x : r) recorded += x["run"]["steps_recorded"].get<std::int64_t>();
  CHECK(m["run"]["steps_recorded"] == recorded);
  for (int k = 0; k < 3; ++k)
    CHECK(m["ranks"]["per_rank"][k]["memory"]["peak_rss_bytes"] ==
          r[k]["memory"]["peak_rss_bytes"]);

  // Offline, from the rank files: the same merged report but for where it came from.
  const auto cli =
      trainmeter::test::run_cli(fmt_args({"merge", dir / "run.rank0.json", dir / "run.rank1.json",
                                          dir / "run.rank2.json", "-o", dir / "offline.json"}));
  REQUIRE(cli.exit_code == 0);
  json off = read_json(dir / "offline.json");
  json on = m;
  for (json* d : {&on, &off}) {
    (*d)["ranks"].erase("merged_by");
    (*d)["ranks"].erase("gather");
    for (json& p : (*d)["ranks"]["per_rank"]) p.erase("origin");
    (*d)["trainmeter"].erase("build");
    (*d)["run"].erase("master_addr");
    (*d)["run"].erase("master_port");
  }
  for (const char* key : {"run", "phases", "steps", "energy", "carbon", "cost", "memory", "ranks",
                          "diagnostics", "host", "config"}) {
    INFO(key);
    CHECK(on[key] == off[key]);
  }
  CHECK(on == off);
  // Neither an already merged report nor the output path itself is an input.
  const auto again = trainmeter::test::run_cli(
      fmt_args({"merge", dir / "run.json", dir / "run.rank1.json", "-o", dir / "again.json"}));
  CHECK(again.exit_code != 0);
  CHECK(again.output.find("already a merged report") != std::string::npos);
  const auto over = trainmeter::test::run_cli(fmt_args(
      {"merge", dir / "run.rank0.json", dir / "run.rank1.json", "-o", dir / "run.rank1.json"}));
  CHECK(over.exit_code != 0);
  CHECK_FALSE(std::filesystem::exists(dir / "again.json"));
}

TEST_CASE("gather over Gloo: a rank that dies before finish() is reported missing, in bounded time",
          "[distributed]") {
  TempDir dir;
  const Ranks ranks = run_ranks(dir, 3, {"steps=6", "die_rank=2", "timeout_ms=8000"});
  REQUIRE(ranks.exit_codes == std::vector<int>{0, 0, 3});
  CHECK(ranks.seconds < 30);
  CHECK_FALSE(std::filesystem::exists(dir / "run.rank2.json"));
  const json m = read_json(dir / "run.json");
  CHECK(trainmeter::test::schema_errors(dir / "run.json") == "");
  CHECK(m["run"]["missing_ranks"] == json({2}));
  CHECK(m["run"]["status"] == "aborted");
  CHECK(m["ranks"]["present"] == json({0, 1}));
  REQUIRE(m["ranks"]["missing"].size() == 1);
  CHECK(m["ranks"]["missing"][0]["reason"].get<std::string>().rfind("no report received", 0) == 0);
  // With a rank missing a collective would fail: the steps came to the root point-to-point.
  CHECK(m["ranks"]["gather"]["mode"] == "point-to-point");
  const json r0 = read_json(dir / "run.rank0.json"), r1 = read_json(dir / "run.rank1.json");
  check_steps(m, {r0, r1});
  const json g0 = read_json(dir / "gather.rank0.json");
  CHECK(g0["merged_written"] == true);
  CHECK(g0["missing_ranks"] == json({2}));
  CHECK(g0["wall_ns"].get<std::int64_t>() < 8'000'000'000 + 2'000'000'000);
  CHECK(read_json(dir / "gather.rank1.json")["sent"] == true);
}
