// AMD GPUs through AMD SMI, via a fake libamd_smi.so (tests/energy/fake_amdsmi) loaded through the
// real dlopen path: known counter ticks and resolutions in, exact joules and bytes out.
#include <catch2/catch.hpp>

#include "energy_fakes.hpp"

using namespace trainmeter;
using namespace trainmeter::detail;
using nlohmann::json;
using trainmeter::test::FakeMachine;
using trainmeter::test::ScopedEnv;

namespace {

using AmdRun = trainmeter::test::EnergyRun;

AmdRun run_amd(FakeMachine& m, const std::string& amdsmi, int samples,
               std::vector<std::string> sources = {"amdsmi", "estimate"},
               const std::string& nvml = "/nonexistent/libnvml.so") {
  return trainmeter::test::run_energy(m, std::move(sources), samples, nvml, amdsmi);
}

const auto& component = trainmeter::test::energy_component;
const auto& tried = trainmeter::test::energy_tried;

}  // namespace

// Two sockets with one GPU each, and an AMD CPU listed first on socket 0 (skipped: not a GPU).
// GPU 0 counts 15.625 uJ per tick: the probe reads 1,000,000 ticks, the samples +640,000 ticks
// (10 J) then +1,280,000 ticks (20 J). GPU 1 counts 1 uJ per tick: +5,000,000 ticks (5 J), then
// none.
TEST_CASE("AMD SMI: energy accumulator ticks x resolution, VRAM peak, host.gpus",
          "[energy][amdsmi]") {
  FakeMachine m;
  ScopedEnv sockets("FAKE_AMDSMI_SOCKETS", "2");
  ScopedEnv cpu("FAKE_AMDSMI_CPU_FIRST", "1");
  ScopedEnv n0("FAKE_AMDSMI_GPU0_NAME", "AMD Instinct MI250X");
  ScopedEnv u0("FAKE_AMDSMI_GPU0_UUID", "b0ff74a1-0000-1000-80e1-4d8b22f3a1c5");
  ScopedEnv e0("FAKE_AMDSMI_GPU0_ENERGY_TICKS", "1000000,1640000,2920000");
  ScopedEnv r0("FAKE_AMDSMI_GPU0_RESOLUTION_UJ", "15.625");
  ScopedEnv t0("FAKE_AMDSMI_GPU0_VRAM_TOTAL", "68702699520");
  ScopedEnv v0("FAKE_AMDSMI_GPU0_VRAM_USED", "1073741824,4294967296,2147483648");
  ScopedEnv e1("FAKE_AMDSMI_GPU1_ENERGY_TICKS", "0,5000000,5000000");
  ScopedEnv r1("FAKE_AMDSMI_GPU1_RESOLUTION_UJ", "1");
  AmdRun r = run_amd(m, FAKE_AMDSMI_FULL, 2);
  INFO(r.report.dump(2));
  const json* g0 = component(r.report, "amdsmi:gpu0:energy-counter");
  const json* g1 = component(r.report, "amdsmi:gpu1:energy-counter");
  REQUIRE(g0);
  REQUIRE(g1);
  CHECK((*g0)["name"] == "gpu:0");
  CHECK((*g0)["provenance"] == "measured");
  CHECK((*g0)["machine_energy_j"].get<double>() == Approx(30.0).margin(1e-9));
  CHECK((*g0)["energy_j"].get<double>() == Approx(30.0).margin(1e-9));
  CHECK((*g0)["attributed_share"] == 1.0);
  CHECK((*g0)["attribution"] == "device");
  CHECK((*g0)["average_power_w"].get<double>() == Approx(15.0).margin(1e-9));
  CHECK((*g0)["inputs"]["counter_resolution_uj"] == 15.625);
  CHECK((*g0)["samples"] == 2);
  CHECK((*g1)["name"] == "gpu:1");
  CHECK((*g1)["energy_j"].get<double>() == Approx(5.0).margin(1e-9));
  // CPU (estimate) + RAM (estimate) + two GPUs.
  CHECK(r.report["energy"]["components"].size() == 4);
  const json& host = r.report["host"]["gpus"];
  REQUIRE(host.size() == 2);
  CHECK(host[0]["index"] == 0);
  CHECK(host[0]["name"] == "AMD Instinct MI250X");
  CHECK(host[0]["uuid"] == "b0ff74a1-0000-1000-80e1-4d8b22f3a1c5");
  CHECK(host[0]["memory_total_bytes"] == 68702699520LL);
  CHECK(host[0]["power_limit_w"].is_null());
  CHECK(host[1]["index"] == 1);
  CHECK(host[1]["name"].is_null());
  CHECK(host[1]["memory_total_bytes"].is_null());
  // Two samples read 1 GiB then 4 GiB in use.
  CHECK(r.report["memory"]["gpu_device_used_peak_bytes"]["gpu:0"] == 4294967296LL);
  CHECK(r.report["memory"]["gpu_device_used_peak_bytes"]["gpu:1"].is_null());
  CHECK(tried(r.report, "amdsmi:gpu0:energy-counter")->at("status") == "ok");
  CHECK(r.ctx->diagnostics.to_json().empty());
}

// NVIDIA and AMD GPUs in one machine: NVML's come first, AMD's are numbered after them.
TEST_CASE("AMD SMI beside NVML: GPUs numbered in probe order, each exact", "[energy][amdsmi]") {
  FakeMachine m;
  ScopedEnv nv("FAKE_NVML_GPU0_ENERGY_MJ", "1000,4000");  // +3 J
  ScopedEnv e0("FAKE_AMDSMI_GPU0_ENERGY_TICKS", "0,2000000");
  ScopedEnv r0("FAKE_AMDSMI_GPU0_RESOLUTION_UJ", "2");  // +4 J
  AmdRun r = run_amd(m, FAKE_AMDSMI_FULL, 1, {"nvml", "amdsmi"}, FAKE_NVML_FULL);
  INFO(r.report.dump(2));
  const json* nvidia = component(r.report, "nvml:gpu0:energy-counter");
  const json* amd = component(r.report, "amdsmi:gpu1:energy-counter");
  REQUIRE(nvidia);
  REQUIRE(amd);
  CHECK((*nvidia)["name"] == "gpu:0");
  CHECK((*amd)["name"] == "gpu:1");
  CHECK((*nvidia)["energy_j"].get<double>() == Approx(3.0).margin(1e-9));
  CHECK((*amd)["energy_j"].get<double>() == Approx(4.0).margin(1e-9));
  CHECK(r.report["energy"]["total_j"].get<double>() == Approx(7.0).margin(1e-9));
  REQUIRE(r.report["host"]["gpus"].size() == 2);
  CHECK(r.report["host"]["gpus"][1]["index"] == 1);
}

TEST_CASE("AMD SMI missing a required symbol is unsupported, with its name", "[energy][amdsmi]") {
  FakeMachine m;
  ScopedEnv e0("FAKE_AMDSMI_GPU0_ENERGY_TICKS", "0,1000");
  AmdRun r = run_amd(m, FAKE_AMDSMI_OMIT_HANDLES, 1);
  CHECK(r.report["energy"]["components"].size() == 2);  // CPU and RAM estimates only
  const json* t = tried(r.report, "amdsmi");
  REQUIRE(t);
  CHECK(t->at("status") == "unsupported");
  CHECK(t->at("reason").get<std::string>().find("amdsmi_get_processor_handles") !=
        std::string::npos);
  CHECK(r.ctx->diagnostics.count("amdsmi", "unsupported") == 1);
  CHECK(r.report["memory"].is_null());
}

TEST_CASE("AMD SMI without the energy symbol still reports the GPU and its memory",
          "[energy][amdsmi]") {
  FakeMachine m;
  ScopedEnv t0("FAKE_AMDSMI_GPU0_VRAM_TOTAL", "1000000");
  ScopedEnv v0("FAKE_AMDSMI_GPU0_VRAM_USED", "300000,200000");
  AmdRun r = run_amd(m, FAKE_AMDSMI_OMIT_ENERGY, 2);
  CHECK(component(r.report, "amdsmi:gpu0:energy-counter") == nullptr);
  const json* t = tried(r.report, "amdsmi:gpu0");
  REQUIRE(t);
  CHECK(t->at("status") == "unsupported");
  CHECK(t->at("reason") == "the library lacks amdsmi_get_energy_count");
  CHECK(r.report["host"]["gpus"][0]["memory_total_bytes"] == 1000000);
  CHECK(r.report["memory"]["gpu_device_used_peak_bytes"]["gpu:0"] == 300000);
  CHECK(r.ctx->diagnostics.to_json().empty());
}

TEST_CASE("an AMD SMI energy call that starts failing mid-run keeps what was measured",
          "[energy][amdsmi]") {
  FakeMachine m;
  ScopedEnv e0("FAKE_AMDSMI_GPU0_ENERGY_TICKS", "1000,2500,4000,8000");
  ScopedEnv r0("FAKE_AMDSMI_GPU0_RESOLUTION_UJ", "1000");  // 1 mJ per tick
  ScopedEnv fail("FAKE_AMDSMI_GPU0_FAIL_AFTER", "2");      // the probe call and one sample
  AmdRun r = run_amd(m, FAKE_AMDSMI_FULL, 3);
  const json* gpu = component(r.report, "amdsmi:gpu0:energy-counter");
  REQUIRE(gpu);
  CHECK((*gpu)["energy_j"].get<double>() == Approx(1.5).margin(1e-9));
  CHECK((*gpu)["failed_reads"] == 2);
  CHECK(r.ctx->diagnostics.count("amdsmi:gpu0:energy-counter", "io_error") == 2);
}

TEST_CASE("AMD SMI absent, failing to initialise or without GPUs is quietly unavailable",
          "[energy][amdsmi]") {
  FakeMachine m;
  SECTION("no library") {
    AmdRun r = run_amd(m, "/nonexistent/libamd_smi.so", 1);
    CHECK(tried(r.report, "amdsmi")->at("status") == "unavailable");
    CHECK(r.ctx->diagnostics.to_json().empty());
  }
  SECTION("amdsmi_init fails") {
    ScopedEnv init("FAKE_AMDSMI_INIT_RESULT", "18");  // AMDSMI_STATUS_INIT_ERROR
    AmdRun r = run_amd(m, FAKE_AMDSMI_FULL, 1);
    const json* t = tried(r.report, "amdsmi");
    REQUIRE(t);
    CHECK(t->at("status") == "unavailable");
    CHECK(t->at("reason").get<std::string>().find("amdsmi_init failed") != std::string::npos);
    CHECK(r.ctx->diagnostics.to_json().empty());
    CHECK(r.report["memory"].is_null());
  }
  SECTION("no GPU") {
    ScopedEnv none("FAKE_AMDSMI_GPUS_PER_SOCKET", "0");
    AmdRun r = run_amd(m, FAKE_AMDSMI_FULL, 1);
    CHECK(tried(r.report, "amdsmi")->at("reason") == "AMD SMI loaded but reports no GPU");
  }
}

TEST_CASE("trainmeter probe lists AMD GPUs through AMD SMI", "[energy][amdsmi][cli]") {
  FakeMachine m;
  ScopedEnv root("TRAINMETER_POWERCAP_ROOT", m.powercap);
  ScopedEnv perf("TRAINMETER_PERF_EVENT_ROOT", m.perf);
  ScopedEnv nvml("TRAINMETER_NVML_LIBRARY", "/nonexistent/libnvml.so");
  ScopedEnv lib("TRAINMETER_AMDSMI_LIBRARY", FAKE_AMDSMI_FULL);
  ScopedEnv name("FAKE_AMDSMI_GPU0_NAME", "AMD Instinct MI300X");
  ScopedEnv ticks("FAKE_AMDSMI_GPU0_ENERGY_TICKS", "5");
  auto js = trainmeter::test::run_cli("probe --json");
  INFO(js.output);
  REQUIRE(js.exit_code == 0);
  const json j = json::parse(js.output);
  CHECK(j["enabled"]["amdsmi"] == true);
  REQUIRE(j["gpus"].size() == 1);
  CHECK(j["gpus"][0]["name"] == "AMD Instinct MI300X");
  CHECK(j["gpus"][0]["estimate_tdp_w"] == 200.0);  // not in the table, no power limit: default
  bool listed = false;
  for (const json& s : j["sources"])
    listed = listed || (s["source"] == "amdsmi:gpu0:energy-counter" && s["status"] == "ok");
  CHECK(listed);
}
