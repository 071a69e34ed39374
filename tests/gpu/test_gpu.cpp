// The CUDA and NVML paths on a real GPU (scripts/gpu-check.sh runs these; docs/gpu.md holds the
// results). Every test needs a CUDA device; none runs in CI, which has no GPU.
#include <catch2/catch.hpp>

#include <torch/torch.h>

#include <c10/cuda/CUDACachingAllocator.h>

#include <chrono>

#include <trainmeter/torch.hpp>
#include <trainmeter/trainmeter.hpp>

#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::TempDir;

namespace {

struct Net : torch::nn::Module {
  explicit Net(int width)
      : a(register_module("a", torch::nn::Linear(width, width))),
        b(register_module("b", torch::nn::Linear(width, width))) {}
  torch::Tensor forward(torch::Tensor x) { return b->forward(torch::relu(a->forward(x))); }
  torch::nn::Linear a, b;
};

trainmeter::Config gpu_config(const TempDir& dir, const std::string& name) {
  trainmeter::Config c;
  c.run_name = name;
  c.output = dir / (name + ".json");
  c.warmup_steps = 2;
  c.sample_interval_ms = 20;
  return c;
}

std::int64_t stat_peak(bool reserved) {
  const auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
  return reserved ? s.reserved_bytes[0].peak : s.allocated_bytes[0].peak;
}

}  // namespace

TEST_CASE("CUDA allocator peaks in the report equal the caching allocator's own", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  TempDir dir;
  trainmeter::Session session(gpu_config(dir, "cuda_peaks"));
  torch::manual_seed(0);
  Net net(2048);
  net.to(torch::kCUDA);
  torch::optim::SGD opt(net.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  auto x = torch::randn({512, 2048}, torch::kCUDA);
  for (int i = 0; i < 20; ++i) {
    auto step = session.step(512);
    opt.zero_grad();
    auto loss = net.forward(x).pow(2).mean();
    loss.backward();
    opt.step();
  }
  torch::cuda::synchronize();
  const std::int64_t allocated_peak = stat_peak(false), reserved_peak = stat_peak(true);
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  INFO(doc["memory"].dump(2));
  const auto& cuda = doc["memory"]["cuda"]["cuda:0"];
  CHECK(cuda["allocated_peak_bytes"].get<std::int64_t>() == allocated_peak);
  CHECK(cuda["reserved_peak_bytes"].get<std::int64_t>() == reserved_peak);
  CHECK(allocated_peak > 4 * 2048 * 2048 * 4);  // two weight matrices, grads and momentum at least
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}

TEST_CASE("NVML through dlopen of the driver library: energy counter, names, power limit", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  TempDir dir;
  auto cfg = gpu_config(dir, "nvml");
  cfg.energy_sources = {"nvml"};
  trainmeter::Session session(cfg);
  auto a = torch::randn({8192, 8192}, torch::kCUDA);
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(3)) {
    auto step = session.step(1);
    for (int i = 0; i < 10; ++i) a = torch::tanh(a.matmul(a) * 1e-4);
    torch::cuda::synchronize();
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  INFO(doc["energy"].dump(2));
  INFO(doc["host"]["gpus"].dump(2));
  REQUIRE(doc["host"]["gpus"].size() >= 1);
  const auto& gpu = doc["host"]["gpus"][0];
  CHECK_FALSE(gpu["name"].get<std::string>().empty());  // any NVIDIA GPU, not one family
  CHECK(gpu["uuid"].get<std::string>().rfind("GPU-", 0) == 0);
  CHECK(gpu["power_limit_w"].get<double>() > 100);
  bool found = false;
  for (const auto& c : doc["energy"]["components"]) {
    if (c["name"] != "gpu:0") continue;
    found = true;
    CHECK(c["provenance"] == "measured");
    CHECK(c["machine_energy_j"].get<double>() > 3 * 50);   // > 50 W over 3 s under load
    CHECK(c["average_power_w"].get<double>() > 50);
    CHECK(c["average_power_w"].get<double>() < 1000);
  }
  CHECK(found);
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}

TEST_CASE("step scopes never synchronise the device", "[gpu]") {
  REQUIRE(torch::cuda::is_available());
  TempDir dir;
  trainmeter::Session session(gpu_config(dir, "nosync"));
  auto a = torch::randn({8192, 8192}, torch::kCUDA);
  torch::cuda::synchronize();
  std::vector<double> host_ns, synced_ns;
  for (int i = 0; i < 10; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      auto step = session.step(1);
      for (int k = 0; k < 20; ++k) a = torch::tanh(a.matmul(a) * 1e-4);  // ~ms of queued work
    }
    const auto t1 = std::chrono::steady_clock::now();
    torch::cuda::synchronize();
    const auto t2 = std::chrono::steady_clock::now();
    host_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    synced_ns.push_back(std::chrono::duration<double, std::nano>(t2 - t0).count());
  }
  const auto report = session.finish();
  const json doc = trainmeter::test::read_json(report.path);
  const double p50 = doc["phases"]["train"]["step_time_ns"]["p50"].get<double>();
  std::sort(host_ns.begin(), host_ns.end());
  std::sort(synced_ns.begin(), synced_ns.end());
  WARN("host-side step p50 " << p50 / 1e6 << " ms; outside host p50 " << host_ns[5] / 1e6
                            << " ms; synchronised p50 " << synced_ns[5] / 1e6 << " ms");
  // Had the scope synchronised, its time would include the queued kernels.
  CHECK(p50 < 0.5 * synced_ns[5]);
}
