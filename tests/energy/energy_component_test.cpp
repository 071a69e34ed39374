// The energy component driven directly with synthetic times over fake hardware: known joules in,
// exact joules out.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "energy/energy.hpp"
#include "energy/perf_power.hpp"
#include "energy_fakes.hpp"

using namespace trainmeter;
using namespace trainmeter::detail;
using nlohmann::json;
using trainmeter::test::FakeMachine;
using trainmeter::test::kSecond;
using trainmeter::test::ScopedEnv;
using trainmeter::test::write_file;

namespace {

constexpr double kUj = 1e-6;  // exact to the counter's resolution

using trainmeter::test::blank_report;
const auto& component = trainmeter::test::energy_component;
const auto& tried = trainmeter::test::energy_tried;

std::int64_t at(double seconds) {
  return 1000 + static_cast<std::int64_t>(seconds * kSecond);
}

}  // namespace

TEST_CASE("one package with core and dram: exact joules, children never added", "[energy]") {
  FakeMachine m;
  const double hz = trainmeter::test::clock_ticks_per_s();
  m.zone("intel-rapl:0", "package-0", 1000000);
  m.zone("intel-rapl:0:0", "core", 500000);
  m.zone("intel-rapl:0:1", "dram", 200000);
  RunContext ctx;
  m.configure(ctx);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));

  // Interval 1: package +10 J, core +8 J, dram +2 J; this process used half the busy CPU time.
  m.set_uj("intel-rapl:0", 11000000);
  m.set_uj("intel-rapl:0:0", 8500000);
  m.set_uj("intel-rapl:0:1", 2200000);
  m.set_proc(50, 100, 1 << 30);
  energy->sample(at(1));
  // Interval 2: package +20 J, dram +3 J; this process a quarter.
  m.set_uj("intel-rapl:0", 31000000);
  m.set_uj("intel-rapl:0:1", 5200000);
  m.set_proc(75, 200, 1 << 30);
  energy->sample(at(2));
  energy->stop(at(2));

  json report = blank_report();
  report["phases"] = {{"train", json::object()}, {"eval", json::object()}};
  report["steps"] = json::array({
      {{"index", 0}, {"phase", "train"}, {"start_offset_ns", 0}, {"wall_ns", kSecond}},
      {{"index", 1}, {"phase", "train"}, {"start_offset_ns", kSecond}, {"wall_ns", kSecond / 2}},
      {{"index", 2},
       {"phase", "eval"},
       {"start_offset_ns", 3 * kSecond / 2},
       {"wall_ns", kSecond / 2}},
  });
  trainmeter::test::contribute_steps(*energy, ctx, report);
  const json& e = report["energy"];
  REQUIRE(e["components"].size() == 2);
  const json* cpu = component(report, "rapl:package-0");
  const json* dram = component(report, "rapl:package-0:dram");
  REQUIRE(cpu);
  REQUIRE(dram);
  CHECK((*cpu)["name"] == "cpu");
  CHECK((*cpu)["provenance"] == "measured");
  CHECK((*cpu)["machine_energy_j"].get<double>() == Approx(30.0).margin(kUj));
  CHECK((*cpu)["energy_j"].get<double>() == Approx(10 * 0.5 + 20 * 0.25).margin(kUj));
  CHECK((*cpu)["attributed_share"].get<double>() == Approx(10.0 / 30.0).margin(1e-9));
  CHECK((*cpu)["average_power_w"].get<double>() == Approx(5.0).margin(kUj));
  CHECK((*cpu)["attribution"] == "cpu-time-share");
  CHECK((*cpu)["samples"] == 2);
  CHECK((*dram)["name"] == "dram");
  CHECK((*dram)["machine_energy_j"].get<double>() == Approx(5.0).margin(kUj));
  CHECK((*dram)["energy_j"].get<double>() == Approx(2 * 0.5 + 3 * 0.25).margin(kUj));
  CHECK(component(report, "estimate:tdp") == nullptr);  // measured CPU wins over the estimate
  CHECK(tried(report, "rapl:package-0:core")->at("status") == "skipped");
  CHECK(e["total_j"].get<double>() == Approx(11.75).margin(kUj));
  CHECK(e["total_kwh"].get<double>() == Approx(11.75 / 3.6e6).epsilon(1e-12));
  CHECK(e["sample_interval_ms"] == 100);
  (void)hz;

  // Steps: constant attributed power per interval, interpolated.
  const json& steps = report["steps"];
  CHECK(steps[0]["energy_j"].get<double>() == Approx(5.0 + 1.0).margin(kUj));
  CHECK_FALSE(steps[0].contains("energy_apportioned"));
  CHECK(steps[1]["energy_j"].get<double>() == Approx((5.0 + 0.75) / 2).margin(kUj));
  CHECK(steps[1]["energy_apportioned"] == true);
  CHECK(steps[2]["energy_j"].get<double>() == Approx((5.0 + 0.75) / 2).margin(kUj));
  CHECK(report["phases"]["train"]["energy_j"].get<double>() == Approx(6.0 + 2.875).margin(kUj));
  CHECK(report["phases"]["eval"]["energy_j"].get<double>() == Approx(2.875).margin(kUj));
  CHECK(ctx.diagnostics.to_json().empty());
}

TEST_CASE("two packages are both counted, each once", "[energy]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 0);
  m.zone("intel-rapl:1", "package-1", 7000000);
  RunContext ctx;
  m.configure(ctx);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_uj("intel-rapl:0", 12345678);
  m.set_uj("intel-rapl:1", 7000001);
  m.set_proc(100, 100, 0);  // this process did all the work: share 1
  energy->sample(at(1));
  energy->stop(at(1));
  json report = blank_report();
  energy->contribute(report);
  // Two CPU components (one per package) and the RAM estimate, as no DRAM domain is measured.
  REQUIRE(report["energy"]["components"].size() == 3);
  CHECK((*component(report, "estimate:rss"))["energy_j"] == 0.0);
  CHECK((*component(report, "rapl:package-0"))["energy_j"].get<double>() ==
        Approx(12.345678).margin(kUj));
  CHECK((*component(report, "rapl:package-1"))["energy_j"].get<double>() ==
        Approx(0.000001).margin(1e-9));
  CHECK(report["energy"]["total_j"].get<double>() == Approx(12.345679).margin(kUj));
}

TEST_CASE("a counter that wraps mid-run is corrected at max_energy_range_uj", "[energy]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 999000000, 1000000000);
  RunContext ctx;
  m.configure(ctx);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_uj("intel-rapl:0", 999600000);
  m.set_proc(10, 10, 0);
  energy->sample(at(1));
  m.set_uj("intel-rapl:0", 4000000);  // wrapped: 0.4 J to the top, then 4 J
  m.set_proc(20, 20, 0);
  energy->sample(at(2));
  energy->stop(at(2));
  json report = blank_report();
  energy->contribute(report);
  const json* cpu = component(report, "rapl:package-0");
  REQUIRE(cpu);
  CHECK((*cpu)["machine_energy_j"].get<double>() == Approx(0.6 + 4.4).margin(kUj));
  CHECK((*cpu)["discarded_intervals"] == 0);
  CHECK((*cpu)["notes"][0].get<std::string>().find("wrapped 1 time") != std::string::npos);
}

TEST_CASE("a reset and an implausible jump are discarded with a diagnostic", "[energy]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 5000000, 0);  // no max_energy_range_uj
  RunContext ctx;
  m.configure(ctx);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_uj("intel-rapl:0", 6000000);  // +1 J
  m.set_proc(10, 10, 0);
  energy->sample(at(1));
  m.set_uj("intel-rapl:0", 100);  // backwards with no known range
  m.set_proc(20, 20, 0);
  energy->sample(at(2));
  m.set_uj("intel-rapl:0", 2000100);  // +2 J
  m.set_proc(30, 30, 0);
  energy->sample(at(3));
  m.set_uj("intel-rapl:0", 9002000100ULL);  // +9000 J in one second
  m.set_proc(40, 40, 0);
  energy->sample(at(4));
  energy->stop(at(4));
  json report = blank_report();
  energy->contribute(report);
  const json* cpu = component(report, "rapl:package-0");
  REQUIRE(cpu);
  CHECK((*cpu)["machine_energy_j"].get<double>() == Approx(3.0).margin(kUj));
  CHECK((*cpu)["discarded_intervals"] == 2);
  CHECK(ctx.diagnostics.count("rapl:package-0", "invalid_reading") == 2);
}

TEST_CASE("a counter still over one short busy interval is not yet unavailable", "[energy]") {
  // Read every 10 ms on a loaded machine (or refreshed by another process), a live counter can
  // stand still for one interval and move the next: its joules arrive with the move.
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 1000000);
  RunContext ctx;
  m.configure(ctx);
  m.set_proc(0, 0, 2LL << 30);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_proc(1, 2, 2LL << 30);  // busy 10 ms, counter unchanged
  energy->sample(at(0.01));
  m.set_uj("intel-rapl:0", 2000000);  // +1 J over the next 10 ms
  m.set_proc(2, 4, 2LL << 30);
  energy->sample(at(0.02));
  energy->stop(at(0.02));
  json report = blank_report();
  energy->contribute(report);
  const json* cpu = component(report, "rapl:package-0");
  REQUIRE(cpu);
  CHECK((*cpu)["machine_energy_j"].get<double>() == Approx(1.0).margin(kUj));
  CHECK((*cpu)["samples"] == 2);
  CHECK((*cpu)["discarded_intervals"] == 0);
  // 1 J over the 20 ms both intervals covered, not over the last 10 ms alone.
  CHECK((*cpu)["machine_average_power_w"].get<double>() == Approx(50.0).epsilon(1e-9));
  CHECK(ctx.diagnostics.count("rapl:package-0", "reads_zero") == 0);
}

TEST_CASE("a counter still over 100 ms of busy intervals is unavailable", "[energy]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 1000000);
  RunContext ctx;
  m.configure(ctx);
  m.set_proc(0, 0, 2LL << 30);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  for (int i = 1; i <= 5; ++i) {  // five busy 25 ms intervals, the counter never moves
    m.set_proc(i, 2 * i, 2LL << 30);
    energy->sample(at(0.025 * i));
  }
  m.set_uj("intel-rapl:0", 2000000);  // too late: the source was dropped after 100 ms
  m.set_proc(6, 12, 2LL << 30);
  energy->sample(at(0.15));
  energy->stop(at(0.15));
  json report = blank_report();
  energy->contribute(report);
  CHECK(component(report, "rapl:package-0") == nullptr);
  const json* t = tried(report, "rapl:package-0");
  REQUIRE(t);
  CHECK(t->at("status") == "reads_zero");
  CHECK(t->at("reason").get<std::string>().find(" ms in which the CPUs were busy") !=
        std::string::npos);
  CHECK(ctx.diagnostics.count("rapl:package-0", "reads_zero") == 1);
}

TEST_CASE("a counter stuck at 0 is unavailable, never 0 J measured", "[energy]") {
  FakeMachine m;  // Xeon Platinum 8375C: 300 W in the table, 4 logical CPUs
  m.zone("intel-rapl:0", "package-0", 0);
  RunContext ctx;
  m.configure(ctx);
  m.set_proc(0, 0, 2LL << 30);
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_proc(50, 120, 2LL << 30);  // busy interval, counter unchanged
  energy->sample(at(1));
  energy->stop(at(1));
  json report = blank_report();
  energy->contribute(report);
  CHECK(component(report, "rapl:package-0") == nullptr);
  CHECK(tried(report, "rapl:package-0")->at("status") == "reads_zero");
  CHECK(ctx.diagnostics.count("rapl:package-0", "reads_zero") == 1);
  const json* cpu = component(report, "estimate:tdp");
  REQUIRE(cpu);
  const double cpu_s = 50 / trainmeter::test::clock_ticks_per_s();
  // 300 W x process CPU time / 4 logical CPUs.
  CHECK((*cpu)["energy_j"].get<double>() == Approx(300.0 * cpu_s / 4).margin(1e-9));
  CHECK((*cpu)["provenance"] == "estimated");
  CHECK((*cpu)["machine_energy_j"].is_null());
  CHECK((*cpu)["inputs"]["tdp_w"] == 300.0);
  CHECK((*cpu)["inputs"]["tdp_basis"] == "table");
  CHECK((*cpu)["inputs"]["logical_cpus"] == 4);
  CHECK((*cpu)["constants"]["default_w_per_thread"] == 4.0);
  const json* ram = component(report, "estimate:rss");
  REQUIRE(ram);
  // 2 GiB resident for 1 s at 3/8 W per GiB.
  CHECK((*ram)["energy_j"].get<double>() == Approx(0.75).margin(1e-9));
  CHECK((*ram)["constants"]["w_per_gib"] == 0.375);
}

TEST_CASE("an unreadable energy_uj is reported and the next source used", "[energy]") {
  FakeMachine m("Intel(R) Xeon(R) Processor @ 2.10GHz");
  m.zone("intel-rapl:0", "package-0", 100);
  std::filesystem::remove(m.powercap + "/intel-rapl:0/energy_uj");
  std::filesystem::create_directory(m.powercap + "/intel-rapl:0/energy_uj");
  RunContext ctx;
  m.configure(ctx);
  ctx.config.energy_sources = {"rapl", "perf", "estimate"};
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_proc(100, 100, 0);
  energy->sample(at(1));
  energy->stop(at(1));
  json report = blank_report();
  energy->contribute(report);
  CHECK(tried(report, "rapl:package-0")->at("status") == "io_error");
  CHECK(ctx.diagnostics.count("rapl:package-0", "io_error") == 1);
  CHECK(tried(report, "perf")->at("status") == "unavailable");
  CHECK(tried(report, "nvml")->at("status") == "skipped");
  const json* cpu = component(report, "estimate:tdp");
  REQUIRE(cpu);
  // Unknown model: 4 W per thread x 4 threads = 16 W machine TDP, one CPU-second over 4.
  const double cpu_s = 100 / trainmeter::test::clock_ticks_per_s();
  CHECK((*cpu)["inputs"]["tdp_basis"] == "per-thread default");
  CHECK((*cpu)["energy_j"].get<double>() == Approx(16.0 * cpu_s / 4).margin(1e-9));
}

TEST_CASE("TRAINMETER_CPU_TDP_W overrides the table; sources can be restricted", "[energy]") {
  FakeMachine m;
  RunContext ctx;
  m.configure(ctx);
  ctx.config.cpu_tdp_w = 100.0;
  ctx.config.energy_sources = {"estimate"};
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  m.set_proc(200, 400, 0);
  energy->sample(at(2));
  energy->stop(at(2));
  json report = blank_report();
  energy->contribute(report);
  const json* cpu = component(report, "estimate:tdp");
  REQUIRE(cpu);
  CHECK((*cpu)["inputs"]["tdp_basis"] == "override");
  CHECK((*cpu)["energy_j"].get<double>() ==
        Approx(100.0 * (200 / trainmeter::test::clock_ticks_per_s()) / 4).margin(1e-9));
  CHECK(tried(report, "rapl")->at("status") == "skipped");

  RunContext bad;
  bad.config.energy_sources = {"rapl", "watts"};
  CHECK_THROWS_WITH(make_energy_component(bad), Catch::Contains("energy_sources") &&
                                                    Catch::Contains("watts") &&
                                                    Catch::Contains("rapl, perf, nvml, estimate"));
}

TEST_CASE("no energy source at all: totals are null, not 0", "[energy]") {
  FakeMachine m;
  RunContext ctx;
  m.configure(ctx);
  ctx.config.energy_sources = {"rapl", "nvml"};
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  energy->sample(at(1));
  energy->stop(at(1));
  json report = blank_report();
  report["phases"] = {{"train", json::object()}};
  report["steps"] = json::array(
      {{{"index", 0}, {"phase", "train"}, {"start_offset_ns", 0}, {"wall_ns", kSecond}}});
  trainmeter::test::contribute_steps(*energy, ctx, report);
  CHECK(report["energy"]["components"].empty());
  CHECK(report["energy"]["total_j"].is_null());
  CHECK(report["energy"]["total_kwh"].is_null());
  CHECK(report["steps"][0]["energy_j"].is_null());
  CHECK(report["phases"]["train"]["energy_j"].is_null());
  CHECK(tried(report, "nvml")->at("status") == "unavailable");
  CHECK(ctx.diagnostics.count("nvml", "unavailable") == 0);  // quietly
}

TEST_CASE("a bounded timeline decimates without losing energy", "[energy]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 0);
  RunContext ctx;
  m.configure(ctx);
  ctx.config.max_retained_samples = 8;
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  for (int i = 1; i <= 40; ++i) {
    m.set_uj("intel-rapl:0", static_cast<std::uint64_t>(i) * 250000);  // 0.25 W
    m.set_proc(static_cast<std::uint64_t>(i) * 10, static_cast<std::uint64_t>(i) * 10, 0);
    energy->sample(at(i));
  }
  energy->stop(at(40));
  json report = blank_report();
  report["steps"] = json::array(
      {{{"index", 0}, {"phase", "train"}, {"start_offset_ns", 0}, {"wall_ns", 40 * kSecond}}});
  trainmeter::test::contribute_steps(*energy, ctx, report);
  CHECK(report["energy"]["timeline"]["decimations"].get<int>() > 0);
  CHECK(report["energy"]["timeline"]["points"].get<int>() <= 8);
  CHECK(report["energy"]["total_j"].get<double>() == Approx(10.0).margin(kUj));
  CHECK(report["steps"][0]["energy_j"].get<double>() == Approx(10.0).margin(kUj));
}

// ---- NVML through the real dlopen path ------------------------------------------------------

namespace {

using GpuRun = trainmeter::test::EnergyRun;

GpuRun run_gpu(FakeMachine& m, const std::string& library, int samples) {
  return trainmeter::test::run_energy(m, {"nvml", "estimate"}, samples, library);
}

}  // namespace

TEST_CASE("NVML energy counter: mJ differenced, per-process share, host and memory",
          "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv gpus("FAKE_NVML_GPUS", "1");
  ScopedEnv name("FAKE_NVML_GPU0_NAME", "NVIDIA H100 80GB HBM3");
  ScopedEnv uuid("FAKE_NVML_GPU0_UUID", "GPU-1234");
  ScopedEnv energy("FAKE_NVML_GPU0_ENERGY_MJ", "1000,6000,16000");
  ScopedEnv power("FAKE_NVML_GPU0_POWER_MW", "300000");
  ScopedEnv limit("FAKE_NVML_GPU0_POWER_LIMIT_MW", "700000");
  ScopedEnv total("FAKE_NVML_GPU0_MEM_TOTAL", "85000000000");
  ScopedEnv used("FAKE_NVML_GPU0_MEM_USED", "1000,5000,3000");
  ScopedEnv util("FAKE_NVML_GPU0_UTIL", "90");
  ScopedEnv procs("FAKE_NVML_GPU0_PROCS", "self:4000");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 2);
  const json* gpu = component(r.report, "nvml:gpu0:energy-counter");
  REQUIRE(gpu);
  CHECK((*gpu)["name"] == "gpu:0");
  CHECK((*gpu)["provenance"] == "measured");
  CHECK((*gpu)["machine_energy_j"].get<double>() == Approx(15.0).margin(1e-9));
  CHECK((*gpu)["energy_j"].get<double>() == Approx(15.0).margin(1e-9));
  CHECK((*gpu)["attributed_share"] == 1.0);
  CHECK((*gpu)["attribution"] == "process-exclusive");
  const json& host_gpu = r.report["host"]["gpus"][0];
  CHECK(host_gpu["index"] == 0);
  CHECK(host_gpu["name"] == "NVIDIA H100 80GB HBM3");
  CHECK(host_gpu["uuid"] == "GPU-1234");
  CHECK(host_gpu["power_limit_w"] == 700.0);
  CHECK(host_gpu["memory_total_bytes"] == 85000000000LL);
  CHECK(r.report["memory"]["gpu_device_used_peak_bytes"]["gpu:0"] == 5000);
  CHECK(r.ctx->diagnostics.to_json().empty());
}

// Three GPUs, each with its own kind of reading: every one is its own component, with its own
// exact joules and attribution, and listed in host.gpus in NVML's order.
TEST_CASE("NVML with three GPUs: a counter, a power-only GPU and a shared one, each exact",
          "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv gpus("FAKE_NVML_GPUS", "3");
  ScopedEnv n0("FAKE_NVML_GPU0_NAME", "NVIDIA H100 80GB HBM3");
  ScopedEnv n1("FAKE_NVML_GPU1_NAME", "NVIDIA A100-SXM4-40GB");
  ScopedEnv n2("FAKE_NVML_GPU2_NAME", "NVIDIA L4");
  ScopedEnv u2("FAKE_NVML_GPU2_UUID", "GPU-2222");
  ScopedEnv e0("FAKE_NVML_GPU0_ENERGY_MJ", "1000,6000,16000");  // +15 J
  ScopedEnv p0("FAKE_NVML_GPU0_PROCS", "self:4000");
  ScopedEnv w1("FAKE_NVML_GPU1_POWER_MW", "100000,200000,200000");  // 150 J + 200 J
  ScopedEnv e2("FAKE_NVML_GPU2_ENERGY_MJ", "0,10000,20000");        // +20 J, a quarter ours
  ScopedEnv p2("FAKE_NVML_GPU2_PROCS", "self:1000,99999:3000");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 2);
  INFO(r.report["energy"].dump(2));
  const json* g0 = component(r.report, "nvml:gpu0:energy-counter");
  const json* g1 = component(r.report, "nvml:gpu1:power");
  const json* g2 = component(r.report, "nvml:gpu2:energy-counter");
  REQUIRE(g0);
  REQUIRE(g1);
  REQUIRE(g2);
  CHECK((*g0)["name"] == "gpu:0");
  CHECK((*g1)["name"] == "gpu:1");
  CHECK((*g2)["name"] == "gpu:2");
  CHECK((*g0)["energy_j"].get<double>() == Approx(15.0).margin(1e-9));
  CHECK((*g0)["attribution"] == "process-exclusive");
  CHECK((*g1)["provenance"] == "integrated");
  CHECK((*g1)["energy_j"].get<double>() == Approx(350.0).margin(1e-9));
  CHECK((*g2)["machine_energy_j"].get<double>() == Approx(20.0).margin(1e-9));
  CHECK((*g2)["energy_j"].get<double>() == Approx(5.0).margin(1e-9));
  CHECK((*g2)["attribution"] == "process-memory-share");
  const json& host = r.report["host"]["gpus"];
  REQUIRE(host.size() == 3);
  CHECK(host[0]["index"] == 0);
  CHECK(host[1]["name"] == "NVIDIA A100-SXM4-40GB");
  CHECK(host[2]["index"] == 2);
  CHECK(host[2]["uuid"] == "GPU-2222");
}

TEST_CASE("NVML: a GPU shared with another process gets its memory share", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv energy("FAKE_NVML_GPU0_ENERGY_MJ", "0,10000");
  ScopedEnv procs("FAKE_NVML_GPU0_PROCS", "self:1000,99999:3000");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 1);
  const json* gpu = component(r.report, "nvml:gpu0:energy-counter");
  REQUIRE(gpu);
  CHECK((*gpu)["machine_energy_j"].get<double>() == Approx(10.0).margin(1e-9));
  CHECK((*gpu)["energy_j"].get<double>() == Approx(2.5).margin(1e-9));
  CHECK((*gpu)["attribution"] == "process-memory-share");
}

TEST_CASE("NVML: our pid not among the GPU's processes keeps the whole device", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv energy("FAKE_NVML_GPU0_ENERGY_MJ", "0,4000");
  ScopedEnv procs("FAKE_NVML_GPU0_PROCS", "99999:1000");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 1);
  const json* gpu = component(r.report, "nvml:gpu0:energy-counter");
  REQUIRE(gpu);
  CHECK((*gpu)["energy_j"].get<double>() == Approx(4.0).margin(1e-9));
  CHECK((*gpu)["attributed_share"] == 1.0);
  CHECK((*gpu)["attribution"] == "device-pid-not-listed");
}

TEST_CASE("NVML power-only GPU is integrated with the trapezoid rule", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv power("FAKE_NVML_GPU0_POWER_MW", "100000,200000,200000");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 2);
  const json* gpu = component(r.report, "nvml:gpu0:power");
  REQUIRE(gpu);
  CHECK((*gpu)["provenance"] == "integrated");
  CHECK((*gpu)["energy_j"].get<double>() == Approx(150.0 + 200.0).margin(1e-9));
  CHECK((*gpu)["attribution"] == "device-no-processes");  // NVML lists no compute process
}

TEST_CASE("NVML without the energy symbol falls back to power", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv energy("FAKE_NVML_GPU0_ENERGY_MJ", "1000,2000,3000");
  ScopedEnv power("FAKE_NVML_GPU0_POWER_MW", "50000");
  GpuRun r = run_gpu(m, FAKE_NVML_OMIT_ENERGY, 2);
  CHECK(component(r.report, "nvml:gpu0:energy-counter") == nullptr);
  const json* gpu = component(r.report, "nvml:gpu0:power");
  REQUIRE(gpu);
  CHECK((*gpu)["energy_j"].get<double>() == Approx(100.0).margin(1e-9));
}

TEST_CASE("NVML missing a required symbol is unsupported, with its name", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv energy("FAKE_NVML_GPU0_ENERGY_MJ", "1000,2000");
  GpuRun r = run_gpu(m, FAKE_NVML_OMIT_HANDLE, 1);
  CHECK(r.report["energy"]["components"].size() == 2);  // CPU and RAM estimates only
  const json* t = tried(r.report, "nvml");
  REQUIRE(t);
  CHECK(t->at("status") == "unsupported");
  CHECK(t->at("reason").get<std::string>().find("nvmlDeviceGetHandleByIndex_v2") !=
        std::string::npos);
  CHECK(r.ctx->diagnostics.count("nvml", "unsupported") == 1);
}

TEST_CASE("an NVML call that starts failing mid-run keeps what was measured", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv energy("FAKE_NVML_GPU0_ENERGY_MJ", "1000,2500,4000,8000");
  ScopedEnv fail("FAKE_NVML_GPU0_FAIL_AFTER", "2");  // the probe call and one sample succeed
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 3);
  const json* gpu = component(r.report, "nvml:gpu0:energy-counter");
  REQUIRE(gpu);
  CHECK((*gpu)["energy_j"].get<double>() == Approx(1.5).margin(1e-9));
  CHECK((*gpu)["failed_reads"] == 2);
  CHECK(r.ctx->diagnostics.count("nvml:gpu0:energy-counter", "io_error") == 2);
}

TEST_CASE("a GPU with utilisation only is estimated from its TDP", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv name("FAKE_NVML_GPU0_NAME", "NVIDIA L4");
  ScopedEnv util("FAKE_NVML_GPU0_UTIL", "50,50,100");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 2);
  const json* gpu = component(r.report, "estimate:gpu-tdp");
  REQUIRE(gpu);
  CHECK((*gpu)["name"] == "gpu:0");
  // Samples see 50 % then 100 % (the probe consumed the first value): 36 W, then 72 W.
  // Trapezoid from the second sample: (36 + 72) / 2 x 1 s.
  CHECK((*gpu)["energy_j"].get<double>() == Approx(54.0).margin(1e-9));
  CHECK((*gpu)["inputs"]["tdp_w"] == 72.0);
  CHECK((*gpu)["provenance"] == "estimated");
}

TEST_CASE("NVML absent or failing to initialise is quietly unavailable", "[energy][nvml]") {
  FakeMachine m;
  ScopedEnv init("FAKE_NVML_INIT_RESULT", "9");
  GpuRun r = run_gpu(m, FAKE_NVML_FULL, 1);
  CHECK(tried(r.report, "nvml")->at("status") == "unavailable");
  CHECK(r.ctx->diagnostics.to_json().empty());
  CHECK(r.report["memory"].is_null());
}

TEST_CASE("trainmeter probe lists every source with its status and the estimator TDP",
          "[energy][cli]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 123);  // never moves: reads zero under a busy loop
  m.zone("intel-rapl:0:0", "core", 5);
  ScopedEnv root("TRAINMETER_POWERCAP_ROOT", m.powercap);
  ScopedEnv perf("TRAINMETER_PERF_EVENT_ROOT", m.perf);
  ScopedEnv lib("TRAINMETER_NVML_LIBRARY", FAKE_NVML_FULL);
  ScopedEnv gpu_name("FAKE_NVML_GPU0_NAME", "NVIDIA A100-SXM4-40GB");
  ScopedEnv gpu_energy("FAKE_NVML_GPU0_ENERGY_MJ", "5");
  ScopedEnv tdp("TRAINMETER_CPU_TDP_W", "120");
  auto text = trainmeter::test::run_cli("probe");
  INFO(text.output);
  REQUIRE(text.exit_code == 0);
  CHECK(text.output.find("reads_zero") != std::string::npos);
  CHECK(text.output.find("nvml:gpu0:energy-counter") != std::string::npos);
  CHECK(text.output.find("120.0 W (override") != std::string::npos);
  auto js = trainmeter::test::run_cli("probe --json");
  REQUIRE(js.exit_code == 0);
  const json j = json::parse(js.output);
  CHECK(j["estimator"]["cpu_tdp_w"] == 120.0);
  CHECK(j["gpus"][0]["name"] == "NVIDIA A100-SXM4-40GB");
  CHECK(j["gpus"][0]["estimate_tdp_w"] == 400.0);
  bool zero = false, core_skipped = false;
  for (const json& s : j["sources"]) {
    zero = zero || (s["source"] == "rapl:package-0" && s["status"] == "reads_zero");
    core_skipped =
        core_skipped || (s["source"] == "rapl:package-0:core" && s["status"] == "skipped");
  }
  CHECK(zero);
  CHECK(core_skipped);
}

// --- the perf power PMU, through the perf_event_open seam (energy/perf_power.hpp) -------------

namespace {

// A fake perf_event_open: energy-pkg (config 2) gets the read end of a non-blocking pipe whose
// write end the test feeds 8-byte counts into, one per read, starting with g_pkg_first (what
// the prime read at start sees); an empty pipe is a failed read (EAGAIN). energy-ram (config 3)
// fails with g_ram_errno.
int g_pkg_write_fd = -1;
std::uint64_t g_pkg_first = 0;
int g_pkg_errno = 0;
int g_ram_errno = ENOENT;
int g_open_calls = 0;

int fake_perf_open(int type, std::uint64_t config, int cpu) {
  ++g_open_calls;
  if (type != 23 || cpu != 0) return -EINVAL;
  if (config == 3) return -g_ram_errno;
  if (config != 2) return -EINVAL;
  if (g_pkg_errno != 0) return -g_pkg_errno;
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return -errno;
  g_pkg_write_fd = fds[1];
  if (::write(fds[1], &g_pkg_first, sizeof g_pkg_first) != static_cast<ssize_t>(sizeof g_pkg_first))
    return -EIO;
  return fds[0];
}

void put_count(std::uint64_t v) {
  REQUIRE(::write(g_pkg_write_fd, &v, sizeof v) == static_cast<ssize_t>(sizeof v));
}

struct FakePerf {
  explicit FakePerf(FakeMachine& m) {
    write_file(m.perf + "/power/type", "23\n");
    write_file(m.perf + "/power/cpumask", "0\n");
    write_file(m.perf + "/power/events/energy-pkg", "event=0x02\n");
    write_file(m.perf + "/power/events/energy-pkg.scale", "1e-06\n");  // 1 uJ per count
    write_file(m.perf + "/power/events/energy-pkg.unit", "Joules\n");
    write_file(m.perf + "/power/events/energy-ram", "event=0x03\n");
    write_file(m.perf + "/power/events/energy-ram.scale", "1e-06\n");
    write_file(m.perf + "/power/events/energy-ram.unit", "Joules\n");
    g_pkg_write_fd = -1;
    g_pkg_errno = 0;
    g_ram_errno = ENOENT;
    g_open_calls = 0;
    set_perf_event_open_for_testing(&fake_perf_open);
  }
  ~FakePerf() {
    set_perf_event_open_for_testing(nullptr);
    if (g_pkg_write_fd >= 0) ::close(g_pkg_write_fd);
  }
};

}  // namespace

TEST_CASE("perf: perf_event_open refused is permission_denied with the fix; unsupported named",
          "[energy][perf]") {
  FakeMachine m;
  FakePerf perf(m);
  g_pkg_errno = EACCES;
  g_ram_errno = ENOENT;
  RunContext ctx;
  m.configure(ctx);
  ctx.config.energy_sources = {"perf", "estimate"};
  auto energy = make_energy_component(ctx);
  energy->start(at(0));
  energy->stop(at(1));
  json report = blank_report();
  energy->contribute(report);
  CHECK(g_open_calls == 2);
  const json* pkg = tried(report, "perf:energy-pkg");
  REQUIRE(pkg);
  CHECK(pkg->at("status") == "permission_denied");
  CHECK_THAT(pkg->at("reason").get<std::string>(),
             Catch::Contains("perf_event_open(power/energy-pkg/, cpu 0) failed") &&
                 Catch::Contains("kernel.perf_event_paranoid=0"));
  const json* ram = tried(report, "perf:energy-ram");
  REQUIRE(ram);
  CHECK(ram->at("status") == "unsupported");
  CHECK_THAT(ram->at("reason").get<std::string>(), Catch::Contains("does not support this event"));
  CHECK(component(report, "perf:energy-pkg") == nullptr);
  CHECK(component(report, "estimate:tdp") != nullptr);  // the next source is used
  CHECK(ctx.diagnostics.count("perf:energy-pkg", "permission_denied") == 1);
  CHECK(ctx.diagnostics.count("perf:energy-ram", "unsupported") == 0);  // sources_tried only
}

TEST_CASE("perf: counts read through the counter, exact joules; a failed read is counted",
          "[energy][perf]") {
  FakeMachine m;
  FakePerf perf(m);
  g_ram_errno = EOPNOTSUPP;
  RunContext ctx;
  m.configure(ctx);
  ctx.config.energy_sources = {"perf"};
  auto energy = make_energy_component(ctx);
  g_pkg_first = 1000000;  // read when the counter is primed at start: 1 J
  energy->start(at(0));
  REQUIRE(g_pkg_write_fd >= 0);
  put_count(11000000);  // +10 J
  m.set_proc(50, 100, 1 << 30);
  energy->sample(at(1));
  energy->sample(at(2));  // nothing to read: the read fails (EAGAIN)
  put_count(31000000);    // +20 J since the last good reading
  m.set_proc(100, 200, 1 << 30);
  energy->sample(at(3));
  energy->stop(at(3));
  json report = blank_report();
  energy->contribute(report);
  const json* pkg = component(report, "perf:energy-pkg");
  REQUIRE(pkg);
  INFO(report["energy"].dump(2));
  CHECK(pkg->at("name") == "cpu");
  CHECK(pkg->at("provenance") == "measured");
  CHECK(pkg->at("failed_reads") == 1);
  CHECK(pkg->at("machine_energy_j").get<double>() == Approx(30.0).margin(kUj));
  CHECK(tried(report, "perf:energy-pkg")->at("reason") == "opened, 1e-06 J per count");
  CHECK(tried(report, "perf:energy-ram")->at("status") == "unsupported");
  CHECK(ctx.diagnostics.count("perf:energy-pkg", "io_error") == 1);
}
