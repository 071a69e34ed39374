// One rank of a distributed test run: a real c10d Gloo process group over a FileStore, a small
// data-parallel model whose gradients are all-reduced between timed steps, trainmeter::Session
// on every rank and trainmeter::torch::gather at the end. Started N times by distributed_test.
//
//   dist_rank store=F rank=R world=W out=DIR [steps=N] [slow_rank=R] [slow_ms=M] [die_rank=R]
//             [timeout_ms=T] [rapl=DIR]
//
// slow_rank sleeps slow_ms inside each timed step (a known straggler); die_rank exits before
// finish() (a dead rank); rapl=DIR is a fake powercap tree whose package counter rank 0 advances
// by kUjPerTick every kTickMs, so every rank on this host reads one shared machine counter.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <trainmeter/gloo.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>
#include <trainmeter/distributed.hpp>
#include <trainmeter/trainmeter.hpp>

namespace {

constexpr long kTickMs = 5;
constexpr long long kUjPerTick = 500000;              // 0.5 J per 5 ms: a 100 W package
constexpr long long kCounterStart = 1000000000000LL;  // 13 digits, so each write has one width

std::map<std::string, std::string> parse_args(int argc, char** argv) {
  std::map<std::string, std::string> m;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq != std::string::npos) m[a.substr(0, eq)] = a.substr(eq + 1);
  }
  return m;
}

long get(const std::map<std::string, std::string>& m, const char* key, long fallback) {
  const auto it = m.find(key);
  return it == m.end() ? fallback : std::stol(it->second);
}

}  // namespace

int main(int argc, char** argv) {
  const auto args = parse_args(argc, argv);
  const int rank = static_cast<int>(get(args, "rank", 0));
  const int world = static_cast<int>(get(args, "world", 1));
  const long steps = get(args, "steps", 12);
  const int slow_rank = static_cast<int>(get(args, "slow_rank", -1));
  const long slow_ms = get(args, "slow_ms", 0);
  const int die_rank = static_cast<int>(get(args, "die_rank", -1));
  const long timeout_ms = get(args, "timeout_ms", 20000);
  const std::string out = args.at("out");
  const std::string rapl = args.count("rapl") ? args.at("rapl") : "";

  // Rank 0 drives the fake package counter in place (pwrite at offset 0, fixed width), the way
  // the kernel's file changes under a kept-open descriptor.
  std::atomic<bool> driving{true};
  std::thread driver;
  if (!rapl.empty() && rank == 0) {
    driver = std::thread([&] {
      const std::string path = rapl + "/intel-rapl:0/energy_uj";
      const int fd = ::open(path.c_str(), O_WRONLY);
      long long value = kCounterStart;
      while (driving.load() && fd >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        value += kUjPerTick;
        const std::string text = std::to_string(value) + "\n";
        if (::pwrite(fd, text.data(), text.size(), 0) < 0) break;
      }
      if (fd >= 0) ::close(fd);
    });
  }

  auto store = c10::make_intrusive<c10d::FileStore>(args.at("store"), world);
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
  options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  auto pg = trainmeter::torch::make_gloo_group(store, rank, world, options);

  trainmeter::Config config;
  config.run_name = "dist";
  config.output = out + "/run.json";
  config.warmup_steps = 1;
  config.sample_interval_ms = 10;
  config.progress = "off";
  config.powercap_root = rapl.empty() ? out + "/no-powercap" : rapl;
  config.perf_event_root = out + "/no-perf";
  config.nvml_library = out + "/no-libnvidia-ml.so";
  config.energy_sources = {rapl.empty() ? "estimate" : "rapl"};
  config = trainmeter::torch::distributed_config(config, *pg);
  trainmeter::Session session(config);

  torch::manual_seed(rank);
  torch::nn::Linear model(32, 8);
  torch::optim::SGD optimizer(model->parameters(), torch::optim::SGDOptions(0.01));
  for (long s = 0; s < steps; ++s) {
    {
      auto step = session.step(16);
      optimizer.zero_grad();
      auto loss = torch::mse_loss(model->forward(torch::randn({16, 32})), torch::zeros({16, 8}));
      loss.backward();
      step.set_loss(loss.item<double>());
      if (rank == slow_rank) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms));
    }
    // Gradient averaging outside the timed step, so each rank's step time is its own work.
    for (auto& p : model->parameters()) {
      std::vector<at::Tensor> t{p.grad()};
      pg->allreduce(t)->wait();
      p.grad().div_(world);
    }
    optimizer.step();
  }
  if (rank == die_rank) std::_Exit(3);  // dies before finish(): no report, no gather

  trainmeter::torch::GatherOptions gopt;
  gopt.timeout = std::chrono::milliseconds(timeout_ms);
  const auto result = trainmeter::torch::gather(session, *pg, gopt);
  driving.store(false);
  if (driver.joinable()) driver.join();

  const nlohmann::json summary = {{"rank", result.rank},
                                  {"world_size", result.world_size},
                                  {"sent", result.sent},
                                  {"merged_written", result.merged_written},
                                  {"merged_path", result.merged_path},
                                  {"missing_ranks", result.missing_ranks},
                                  {"payload_bytes", result.payload_bytes},
                                  {"received_bytes", result.received_bytes},
                                  {"wall_ns", result.wall_ns},
                                  {"error", result.error}};
  std::ofstream(out + "/gather.rank" + std::to_string(rank) + ".json") << summary.dump() << "\n";
  if (!result.error.empty()) std::fprintf(stderr, "rank %d: %s\n", rank, result.error.c_str());
  return 0;
}
