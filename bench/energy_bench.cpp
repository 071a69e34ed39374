// Cost of one energy sampler tick with every source on: a fake powercap tree (package + dram),
// the real /proc, and the fake NVML library built by the tests (one GPU with energy counter,
// power, utilisation, memory and process queries). core_pct_at_10Hz is the share of one core the
// sampler takes at the default 100 ms interval.
//
//   cmake --build build --target bench_energy energy_tests && ./build/bin/bench_energy
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/component.hpp"
#include "energy/energy.hpp"

namespace fs = std::filesystem;
using namespace trainmeter::detail;

namespace {

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string fake_nvml_path() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  const fs::path lib = exe.parent_path().parent_path() / "tests/lib/libfake_nvml_full.so";
  return fs::exists(lib, ec) ? lib.string() : std::string();
}

void put(int fd, unsigned long long v) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%020llu\n", v);
  if (::pwrite(fd, buf, static_cast<size_t>(n), 0) != n) std::abort();
}

void BM_EnergySamplerTick(benchmark::State& state) {
  const fs::path root =
      fs::temp_directory_path() / ("tm-energy-bench-" + std::to_string(::getpid()));
  write(root / "intel-rapl:0/name", "package-0\n");
  write(root / "intel-rapl:0/max_energy_range_uj", "262143328850\n");
  write(root / "intel-rapl:0/energy_uj", "00000000000000000000\n");
  write(root / "intel-rapl:0:0/name", "dram\n");
  write(root / "intel-rapl:0:0/max_energy_range_uj", "65712999613\n");
  write(root / "intel-rapl:0:0/energy_uj", "00000000000000000000\n");
  const int pkg = ::open((root / "intel-rapl:0/energy_uj").c_str(), O_WRONLY);
  const int dram = ::open((root / "intel-rapl:0:0/energy_uj").c_str(), O_WRONLY);
  const std::string nvml = fake_nvml_path();
  ::setenv("FAKE_NVML_GPU0_NAME", "NVIDIA H100 80GB HBM3", 1);
  ::setenv("FAKE_NVML_GPU0_ENERGY_MJ", "1000", 1);
  ::setenv("FAKE_NVML_GPU0_POWER_MW", "300000", 1);
  ::setenv("FAKE_NVML_GPU0_UTIL", "90", 1);
  ::setenv("FAKE_NVML_GPU0_MEM_TOTAL", "85000000000", 1);
  ::setenv("FAKE_NVML_GPU0_MEM_USED", "1000", 1);
  ::setenv("FAKE_NVML_GPU0_PROCS", "self:1000", 1);
  {
    RunContext ctx;
    ctx.config.powercap_root = root.string();
    ctx.config.nvml_library = nvml.empty() ? "/nonexistent/libnvidia-ml.so.1" : nvml;
    auto energy = make_energy_component(ctx);
    std::int64_t now = 0;
    unsigned long long uj = 0;
    energy->start(now);
    for (auto _ : state) {
      state.PauseTiming();
      uj += 1000000;  // counters must move, or the sampler (rightly) stops reading them
      put(pkg, uj);
      put(dram, uj / 4);
      now += 100000000;
      state.ResumeTiming();
      energy->sample(now);
    }
    state.counters["core_pct_at_10Hz"] =
        benchmark::Counter(static_cast<double>(state.iterations()) / 1000.0,
                           benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
    state.SetLabel(nvml.empty() ? "rapl pkg+dram, /proc (fake NVML not built)"
                                : "rapl pkg+dram, /proc, fake NVML 1 GPU");
  }
  ::close(pkg);
  ::close(dram);
  std::error_code ec;
  fs::remove_all(root, ec);
}
BENCHMARK(BM_EnergySamplerTick);

}  // namespace

BENCHMARK_MAIN();
