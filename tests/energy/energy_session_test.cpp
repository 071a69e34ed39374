// End to end: a real Session over a fake powercap tree whose counter a helper thread advances,
// then the written report checked against the schema and for exact machine joules.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "energy_fakes.hpp"
#include "trainmeter/session.hpp"

using namespace trainmeter;
using nlohmann::json;
using trainmeter::test::FakeMachine;
using trainmeter::test::ScopedEnv;

namespace {

// Fixed-width value written in place with one pwrite, so a concurrent reader never sees a
// truncated file.
void put_uj(int fd, std::uint64_t uj) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%020llu\n", static_cast<unsigned long long>(uj));
  REQUIRE(::pwrite(fd, buf, static_cast<size_t>(n), 0) == n);
}

}  // namespace

TEST_CASE("a Session measures a fake RAPL package and attributes energy to steps",
          "[energy][session]") {
  FakeMachine m;
  m.zone("intel-rapl:0", "package-0", 0);
  const int fd = ::open((m.powercap + "/intel-rapl:0/energy_uj").c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  const std::uint64_t start_uj = 5000000;
  put_uj(fd, start_uj);
  ScopedEnv root("TRAINMETER_POWERCAP_ROOT", m.powercap);
  ScopedEnv nvml("TRAINMETER_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1");
  ScopedEnv interval("TRAINMETER_SAMPLE_INTERVAL_MS", "20");
  ScopedEnv out("TRAINMETER_OUTPUT", m.dir / "run.json");

  std::atomic<bool> running{true};
  std::atomic<std::uint64_t> written{start_uj};
  std::uint64_t final_uj = 0;
  {
    Session session;
    std::thread writer([&] {
      std::uint64_t v = start_uj;
      while (running.load()) {
        v += 1000;  // 1 mJ per ms: 1 W
        put_uj(fd, v);
        written.store(v);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    volatile double sink = 0;
    for (int step = 0; step < 6; ++step) {
      auto scope = session.step(32);
      const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(50);
      while (std::chrono::steady_clock::now() < end) sink = sink + 1.0;
    }
    running.store(false);
    writer.join();
    final_uj = written.load();
    session.finish();
  }
  ::close(fd);

  const json report = trainmeter::test::read_json(m.dir / "run.json");
  CHECK(trainmeter::test::schema_errors(m.dir / "run.json") == "");
  const json& e = report["energy"];
  REQUIRE(e.is_object());
  const json* cpu = nullptr;
  for (const json& c : e["components"])
    if (c["source"] == "rapl:package-0") cpu = &c;
  REQUIRE(cpu);
  // The session primes the counter in its constructor (start_uj: the writer starts after it)
  // and reads it last in finish() (final_uj: the writer stopped before it), so the machine
  // figure is exactly what was written, to the counter's 1 uJ resolution.
  const double written_j = static_cast<double>(final_uj - start_uj) * 1e-6;
  REQUIRE(final_uj > start_uj);
  CHECK((*cpu)["machine_energy_j"].get<double>() == Approx(written_j).margin(1e-9));
  const double attributed = (*cpu)["energy_j"].get<double>();
  CHECK(attributed <= (*cpu)["machine_energy_j"].get<double>() + 1e-9);
  double steps_j = 0;
  for (const json& s : report["steps"]) {
    REQUIRE(s["energy_j"].is_number());
    steps_j += s["energy_j"].get<double>();
  }
  // Steps cover part of the run; their energy cannot exceed the run's attributed total.
  CHECK(steps_j <= e["total_j"].get<double>() + 1e-9);
  CHECK(report["phases"]["train"]["energy_j"].get<double>() == Approx(steps_j).margin(1e-9));
}
