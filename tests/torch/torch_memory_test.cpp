// trainmeter::torch tensor-memory tracking: exact step peaks with tensors of known bytes, intra-op
// threads, byte-for-byte agreement with libtorch's own profiler on an MLP, the profiler hazard.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <catch2/catch.hpp>

#include "support/test_support.hpp"
#include "torch/tensor_memory.hpp"
#include "torch/torch_state.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/torch.hpp"

using nlohmann::json;
using trainmeter::test::TempDir;
namespace tmt = trainmeter::torch;
namespace legacy = torch::autograd::profiler;

namespace {

trainmeter::Config test_config(const TempDir& dir) {
  trainmeter::Config cfg;
  cfg.output = dir / "report.json";
  cfg.progress = "off";
  cfg.warmup_steps = 0;
  cfg.energy_sources = {"estimate"};
  return cfg;
}

json finish(trainmeter::Session& s, const TempDir& dir) {
  const auto r = s.finish();
  REQUIRE(r.written);
  CHECK(trainmeter::test::schema_errors(dir / "report.json") == "");
  return json::parse(r.json);
}

struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(64, 128));
    fc2 = register_module("fc2", torch::nn::Linear(128, 10));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::relu(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

void train_step(Mlp& model, torch::optim::SGD& opt, const torch::Tensor& x,
                const torch::Tensor& y) {
  opt.zero_grad();
  auto loss = torch::mse_loss(model.forward(x), y);
  loss.backward();
  opt.step();
}

}  // namespace

TEST_CASE("step peaks are exact for tensors of known size", "[torch][memory]") {
  at::set_num_threads(1);
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  {
    auto track = tmt::track_memory(session);
    REQUIRE(track.active());
    {
      auto step = session.step(1);
      auto a = torch::empty({1000}, torch::kFloat32);  // 4000 B
      auto b = torch::empty({500}, torch::kFloat64);   // 4000 B
    }
    {
      auto step = session.step(1);
      { auto big = torch::empty({1 << 18}, torch::kFloat32); }  // 1 MiB, freed
      auto half = torch::empty({1 << 17}, torch::kFloat32);     // 512 KiB
    }
    auto keep = torch::empty({256}, torch::kInt64);  // 2048 B, lives across step 3
    {
      auto step = session.step(1);
      auto c = torch::empty({100}, torch::kUInt8);  // 100 B on top of the 2048 B level
    }
  }
  const json r = finish(session, dir);
  const json& steps = r["steps"];
  REQUIRE(steps.size() == 3);
  CHECK(steps[0]["peak_tensor_bytes"] == 8000);
  CHECK(steps[1]["peak_tensor_bytes"] == 1 << 20);
  CHECK(steps[2]["peak_tensor_bytes"] == 2048 + 100);
  CHECK(r["memory"]["peak_tensor_bytes"]["cpu"] == 1 << 20);
  CHECK(r["memory"]["tensor_tracking"]["current_bytes_at_finish"]["cpu"] == 0);
  CHECK(r["memory"]["tensor_tracking"]["cpu_events"] == 12);  // 6 tensors, alloc + free
  CHECK(r["memory"]["peak_rss_bytes"].is_number_integer());
}

TEST_CASE("steps without tracking say null, not 0", "[torch][memory]") {
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  { auto step = session.step(1); }
  { auto track = tmt::track_memory(session); }  // tracking ended: later steps unmeasured
  { auto step = session.step(1); }
  const json r = finish(session, dir);
  CHECK(r["steps"][0]["peak_tensor_bytes"].is_null());
  CHECK(r["steps"][1]["peak_tensor_bytes"].is_null());
}

TEST_CASE("track_memory disabled by configuration or twice on a thread", "[torch][memory]") {
  TempDir dir;
  auto cfg = test_config(dir);
  cfg.track_tensor_memory = false;
  trainmeter::Session off(cfg);
  CHECK_FALSE(tmt::track_memory(off).active());
  off.finish();

  TempDir dir2;
  trainmeter::Session session(test_config(dir2));
  auto first = tmt::track_memory(session);
  REQUIRE(first.active());
  CHECK_FALSE(tmt::track_memory(session).active());  // nested: the first keeps tracking
  {
    auto step = session.step(1);
    auto t = torch::empty({10}, torch::kFloat32);
  }
  first.reset();
  const json r = finish(session, dir2);
  CHECK(r["steps"][0]["peak_tensor_bytes"] == 40);
  CHECK(r["diagnostics"].empty());
}

TEST_CASE("intra-op threads: counts stay exact and balanced with 2 threads", "[torch][memory]") {
  auto run = [](int threads) {
    at::set_num_threads(threads);
    auto state = trainmeter::detail::make_torch_state();
    auto& mem = trainmeter::detail::tensor_memory(*state);
    REQUIRE(trainmeter::detail::install_reporter(*state));
    {
      auto x = torch::ones({2000, 2000});  // 16 MB, big enough for parallel_for
      auto y = x * 2 + 1;
      auto s = y.sum();
      auto z = torch::matmul(x.narrow(0, 0, 256), y.narrow(1, 0, 256));
      CHECK(s.item<double>() == 3.0 * 2000 * 2000);
      CHECK(z[0][0].item<double>() == 3.0 * 2000);
    }
    REQUIRE(trainmeter::detail::uninstall_reporter(*state));
    CHECK(mem.cpu_current() == 0);  // every allocation seen was freed and seen freed
    return mem.cpu_peak();
  };
  const auto one = run(1);
  const auto two = run(2);
  at::set_num_threads(1);
  CHECK(one >= 2 * 16'000'000);
  CHECK(two == one);
}

TEST_CASE("MLP run peak equals libtorch's profiler memory events byte for byte",
          "[torch][memory]") {
  at::set_num_threads(1);
  torch::manual_seed(7);
  const auto x = torch::randn({32, 64});
  const auto y = torch::randn({32, 10});
  constexpr int kSteps = 5;
  auto fresh = [] {
    torch::manual_seed(0);
    return std::make_shared<Mlp>();
  };
  {  // warm libtorch's lazy initialisation outside both passes
    auto m = fresh();
    torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    train_step(*m, opt, x, y);
  }

  // Pass 1: libtorch's legacy profiler with memory profiling.
  std::int64_t profiler_peak = 0;
  {
    auto m = fresh();
    torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    legacy::enableProfilerLegacy(legacy::ProfilerConfig(legacy::ProfilerState::CPU, false, true));
    for (int i = 0; i < kSteps; ++i) train_step(*m, opt, x, y);
    const auto lists = legacy::disableProfilerLegacy();
    std::int64_t sum = 0;
    std::size_t memory_events = 0;
    for (const auto& list : lists)
      for (const auto& e : list)
        if (e.kind() == legacy::EventKind::MemoryAlloc) {
          sum += e.cpuMemoryUsage();
          profiler_peak = std::max(profiler_peak, sum);
          ++memory_events;
        }
    REQUIRE(memory_events > 0);
  }

  // Pass 2: trainmeter, same seed, same steps, never together with the profiler.
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  {
    auto m = fresh();
    torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
    auto track = tmt::track_memory(session);
    REQUIRE(track.active());
    for (int i = 0; i < kSteps; ++i) {
      auto step = session.step(32);
      train_step(*m, opt, x, y);
    }
  }
  const json r = finish(session, dir);
  INFO("profiler peak " << profiler_peak);
  CHECK(r["memory"]["peak_tensor_bytes"]["cpu"] == profiler_peak);
  std::int64_t max_step = 0;
  for (const auto& s : r["steps"])
    max_step = std::max<std::int64_t>(max_step, s["peak_tensor_bytes"]);
  CHECK(max_step == profiler_peak);
}

TEST_CASE("a libtorch profiler already active: tracking steps aside, no crash", "[torch][memory]") {
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  legacy::enableProfilerLegacy(legacy::ProfilerConfig(legacy::ProfilerState::CPU, false, true));
  {
    auto track = tmt::track_memory(session);
    CHECK_FALSE(track.active());
    auto step = session.step(1);
    auto t = torch::empty({10});
  }
  legacy::disableProfilerLegacy();
  const json r = finish(session, dir);
  CHECK(r["steps"][0]["peak_tensor_bytes"].is_null());
  bool found = false;
  for (const auto& d : r["diagnostics"])
    if (d["source"] == "memory.torch" && d["status"] == "skipped") found = true;
  CHECK(found);
}

TEST_CASE("a profiler started inside tracking is refused by libtorch, tracking stays intact",
          "[torch][memory]") {
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  {
    auto track = tmt::track_memory(session);
    REQUIRE(track.active());
    // Our reporter is a disabled ProfilerStateBase, so libtorch's static_cast reads of the slot
    // are well-defined and say "no profiler"...
    CHECK_FALSE(torch::profiler::impl::profilerEnabled());
    // ...and libtorch 1.13 refuses to start its profiler while the slot is occupied (a clean
    // c10::Error in the caller, no corruption).
    CHECK_THROWS_AS(legacy::enableProfilerLegacy(
                        legacy::ProfilerConfig(legacy::ProfilerState::CPU, false, true)),
                    c10::Error);
    CHECK_FALSE(torch::profiler::impl::profilerEnabled());
    {
      auto step = session.step(1);
      auto t = torch::empty({25}, torch::kFloat32);
    }
  }
  const json r = finish(session, dir);
  CHECK(r["steps"][0]["peak_tensor_bytes"] == 100);
  CHECK(r["diagnostics"].empty());
}

TEST_CASE("MemoryTracking outliving its session is safe", "[torch][memory]") {
  TempDir dir;
  auto session = std::make_unique<trainmeter::Session>(test_config(dir));
  auto track = tmt::track_memory(*session);
  REQUIRE(track.active());
  session.reset();                    // finish + destroy while the reporter is still installed
  { auto t = torch::empty({1000}); }  // reported into the surviving counters
  track.reset();
  CHECK_FALSE(track.active());
}

TEST_CASE("per-step CUDA tensor peaks come from the reporter, per device, without resets",
          "[torch][memory][cuda]") {
  // The CUDA caching allocator reports to the installed reporter through
  // c10::reportMemoryUsageToProfiler with a CUDA device; calling it directly drives the same
  // path on a machine without a GPU, with allocations of known size.
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  static char block[8];
  void* ptr = block;
  const c10::Device cuda0(c10::DeviceType::CUDA, 0), cuda1(c10::DeviceType::CUDA, 1);
  {
    auto track = tmt::track_memory(session);
    REQUIRE(track.active());
    {
      auto step = session.step(1);  // no CUDA allocation seen yet when it began: null
      c10::reportMemoryUsageToProfiler(ptr, 1000, 0, 0, cuda0);
    }
    {
      auto step = session.step(1);  // starts at 1000 live bytes on cuda:0
      c10::reportMemoryUsageToProfiler(ptr, 4096, 0, 0, cuda0);
      c10::reportMemoryUsageToProfiler(ptr, -4096, 0, 0, cuda0);
      c10::reportMemoryUsageToProfiler(ptr, 512, 0, 0, cuda0);
    }
    { auto step = session.step(1); }  // 1512 live, nothing new
    {
      auto step = session.step(1);  // began on cuda:0; an allocation on cuda:1 inside
      c10::reportMemoryUsageToProfiler(ptr, 300, 0, 0, cuda1);
    }
    {
      auto step = session.step(1);  // the program now allocates on cuda:1
      c10::reportMemoryUsageToProfiler(ptr, 700, 0, 0, cuda1);
      c10::reportMemoryUsageToProfiler(ptr, -700, 0, 0, cuda1);
    }
  }
  const json r = finish(session, dir);
  const json& steps = r["steps"];
  REQUIRE(steps.size() == 5);
  CHECK(steps[0]["peak_cuda_tensor_bytes"].is_null());
  CHECK(steps[1]["peak_cuda_tensor_bytes"] == json{{"cuda:0", 1000 + 4096}});
  CHECK(steps[2]["peak_cuda_tensor_bytes"] == json{{"cuda:0", 1512}});
  CHECK(steps[3]["peak_cuda_tensor_bytes"] == json{{"cuda:0", 1512}});
  CHECK(steps[4]["peak_cuda_tensor_bytes"] == json{{"cuda:1", 300 + 700}});
  CHECK(r["memory"]["peak_tensor_bytes"]["cuda:0"] == 5096);
  CHECK(r["memory"]["peak_tensor_bytes"]["cuda:1"] == 1000);
  // No CPU tensor was allocated while tracking: not measured, so null rather than 0.
  CHECK(r["memory"]["peak_tensor_bytes"]["cpu"].is_null());
}

TEST_CASE("a discarded tracking guard gives null peaks and says why", "[torch][memory]") {
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  { auto track = tmt::track_memory(session); }  // ended before the loop
  for (int i = 0; i < 3; ++i) {
    auto step = session.step(1);
    auto t = torch::empty({100}, torch::kFloat32);
  }
  const json r = finish(session, dir);
  CHECK(r["memory"]["peak_tensor_bytes"]["cpu"].is_null());
  for (const auto& s : r["steps"]) CHECK(s["peak_tensor_bytes"].is_null());
  bool said = false;
  for (const auto& d : r["diagnostics"])
    if (d["source"] == "memory.torch" &&
        d["message"].get<std::string>().find("keep the MemoryTracking") != std::string::npos)
      said = true;
  CHECK(said);
}

TEST_CASE("the report names the libtorch it ran with", "[torch][memory]") {
  TempDir dir;
  trainmeter::Session session(test_config(dir));
  auto track = tmt::track_memory(session);
  { auto step = session.step(1); }
  track.reset();
  const json r = finish(session, dir);
  CHECK(r["host"]["torch_version"] == TORCH_VERSION);
#ifdef TRAINMETER_WITH_CUDA
  // A CUDA build reports the CUDA runtime it loaded ("13.2" for the 2.15 wheel).
  CHECK(r["host"]["cuda_version"].is_string());
#else
  CHECK(r["host"]["cuda_version"].is_null());
#endif
}
