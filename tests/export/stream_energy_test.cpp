// Section 2 of issue 16: the stream keeps energy. A real process (stream_victim) measures a fake
// RAPL package counter that this test advances at a known power, with a fake /proc in which the
// process is all of the machine's busy CPU time; it is killed with SIGKILL at seeded random
// moments, and `recover` must give the counter's watts x recovered duration within one flush
// interval, the attributed share of it as the run's total, and carbon from the header's
// configuration. (The attributed share reads 0.7-0.8 rather than 1 here: the fake stat files are
// rewritten in place while the victim reads them, so some intervals see a torn file.)
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "base/component.hpp"

namespace trainmeter::test {
using detail::StepRecord;  // energy_fakes.hpp names it unqualified
}

#include "energy/energy_fakes.hpp"
#include "export/recover.hpp"

using namespace trainmeter::test;

TEST_CASE("SIGKILL while a fake RAPL counter runs at known watts: recover keeps the energy",
          "[stream][energy]") {
  constexpr double kWatts = 40.0;
  constexpr double kFlushS = 0.2, kSampleS = 0.05;
  std::mt19937 rng(20261201);
  std::uniform_real_distribution<double> kill_after(0.8, 2.0);
  for (int round = 0; round < 3; ++round) {
    FakeMachine m;
    m.zone("intel-rapl:0", "package-0", 0);
    std::atomic<bool> stop{false};
    const auto t0 = std::chrono::steady_clock::now();
    // The fake machine: energy at kWatts, and CPU time all this process's (proc = busy ticks).
    std::thread counter([&] {
      while (!stop.load()) {
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const auto ticks = static_cast<std::uint64_t>(s * clock_ticks_per_s());
        m.set_proc(ticks, ticks, 0);
        m.set_uj("intel-rapl:0", static_cast<std::uint64_t>(kWatts * s * 1e6));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    });
    const std::string stream = m.dir / "run.jsonl";
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::setenv("TRAINMETER_STREAM", stream.c_str(), 1);
      ::setenv("TRAINMETER_OUTPUT", (m.dir / "report.json").c_str(), 1);
      ::setenv("TRAINMETER_FLUSH_INTERVAL_MS", "200", 1);
      ::setenv("TRAINMETER_SAMPLE_INTERVAL_MS", "50", 1);
      ::setenv("TRAINMETER_PROC_ROOT", m.proc.c_str(), 1);
      ::setenv("TRAINMETER_POWERCAP_ROOT", m.powercap.c_str(), 1);
      ::setenv("TRAINMETER_PERF_EVENT_ROOT", m.perf.c_str(), 1);
      ::setenv("TRAINMETER_NVML_LIBRARY", "/nonexistent/libnvml.so", 1);
      ::setenv("TRAINMETER_ENERGY_SOURCES", "rapl", 1);
      ::setenv("TRAINMETER_COUNTRY", "FR", 1);
      ::setenv("TRAINMETER_PROGRESS", "0", 1);
      std::freopen("/dev/null", "w", stdout);
      ::execl(TRAINMETER_STREAM_VICTIM, TRAINMETER_STREAM_VICTIM, "5", nullptr);
      ::_exit(127);
    }
    const double delay = kill_after(rng);
    std::this_thread::sleep_for(std::chrono::duration<double>(delay));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    stop.store(true);
    counter.join();
    REQUIRE(WIFSIGNALED(status));

    const trainmeter::detail::RecoverResult r = trainmeter::detail::recover_stream(stream);
    INFO("round " << round << ", killed after " << delay << " s: " << r.error);
    REQUIRE(r.report);
    const nlohmann::json& rep = *r.report;
    REQUIRE(rep["energy"].is_object());
    const double duration = rep["run"]["duration_s"].get<double>();
    const double energy = rep["energy"]["total_j"].get<double>();
    INFO("recovered " << energy << " J over " << duration << " s");
    CHECK(rep["energy"]["components"][0]["source"] == "rapl:package-0");
    CHECK(rep["energy"]["components"][0]["provenance"] == "measured");
    const nlohmann::json& pkg = rep["energy"]["components"][0];
    const double machine = pkg["machine_energy_j"].get<double>();
    INFO("machine " << machine << " J, attributed share " << pkg["attributed_share"]);
    CHECK(duration > 0.3);
    // The counter's joules: watts x the recovered duration, within one flush (and one sample).
    CHECK(std::abs(machine - kWatts * duration) <= kWatts * (kFlushS + kSampleS));
    // The run's total is the attributed share of it, as recorded per component.
    CHECK(energy == Approx(pkg["energy_j"].get<double>()));
    CHECK(energy <= machine * (1 + 1e-9));
    CHECK(energy == Approx(machine * pkg["attributed_share"].get<double>()));
    // Carbon from the header's configuration (country FR) over the recovered energy.
    const double g_per_kwh = rep["carbon"]["intensity_g_per_kwh"].get<double>();
    CHECK(rep["carbon"]["co2e_kg"].get<double>() ==
          Approx(energy / 3.6e6 * g_per_kwh / 1000.0).epsilon(1e-9));
    CHECK(rep["diagnostics"].dump().find("recovered from the stream") != std::string::npos);
    write_file(m.dir / "recovered.json", rep.dump());
    CHECK(schema_errors(m.dir / "recovered.json").empty());
  }
}
