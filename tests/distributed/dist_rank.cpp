// One rank of a distributed test run: a real c10d Gloo process group over a FileStore, a small
// data-parallel model whose gradients are all-reduced between timed steps, trainmeter::Session
// on every rank and trainmeter::torch::gather at the end. Started N times by distributed_test.
//
//   dist_rank store=F rank=R world=W out=DIR [steps=N] [slow_rank=R] [slow_ms=M] [die_rank=R]
//             [timeout_ms=T] [rapl=DIR] [iface=NAME]
//   dist_rank env out=DIR ...   (torchrun style: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and
//                                MASTER_PORT from the environment, a TCPStore on the master)
//
// slow_rank sleeps slow_ms inside each timed step (a known straggler); die_rank exits before
// finish() (a dead rank); rapl=DIR is a fake powercap tree whose package and DRAM counters local
// rank 0 advances by kUjPerTick and kDramUjPerTick every kTickMs (or at rapl_w and dram_w watts of
// the steady clock), so every rank on this host reads
// one shared machine counter; iface=NAME binds Gloo to that interface (else 127.0.0.1). Writes
// gather.rank<R>.json: what gather() returned, plus this process's peak RSS and the bytes it
// wrote to descriptors (sockets included) during gather(), from /proc/self/io.
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <trainmeter/gloo.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
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
constexpr long long kDramUjPerTick = 100000;          // 0.1 J per 5 ms: 20 W of DRAM
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

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::stol(v) : fallback;
}

// Bytes this process has written to descriptors so far (files and sockets): /proc/self/io wchar.
long long written_bytes() {
  std::ifstream in("/proc/self/io");
  std::string key;
  long long value = 0;
  while (in >> key >> value)
    if (key == "wchar:") return value;
  return -1;
}

long long peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  const auto args = parse_args(argc, argv);
  const bool from_env = args.count("env") > 0 || std::string(argc > 1 ? argv[1] : "") == "env";
  const int rank = static_cast<int>(from_env ? env_long("RANK", 0) : get(args, "rank", 0));
  const int world = static_cast<int>(from_env ? env_long("WORLD_SIZE", 1) : get(args, "world", 1));
  const int local_rank =
      static_cast<int>(from_env ? env_long("LOCAL_RANK", 0) : get(args, "local_rank", rank));
  const long steps = get(args, "steps", 12);
  const int slow_rank = static_cast<int>(get(args, "slow_rank", -1));
  const long slow_ms = get(args, "slow_ms", 0);
  const long step_ms = get(args, "step_ms", 0);  // every rank sleeps this long in each step
  const int die_rank = static_cast<int>(get(args, "die_rank", -1));
  const long timeout_ms = get(args, "timeout_ms", 20000);
  const std::string out = args.at("out");
  const std::string rapl = args.count("rapl") ? args.at("rapl") : "";
  // rapl_w=P dram_w=Q: the counters follow P and Q watts of the steady clock (else whole ticks).
  const double package_w = static_cast<double>(get(args, "rapl_w", 0));
  const double dram_w = static_cast<double>(get(args, "dram_w", 0));

  // Rank 0 drives the fake package counter in place (pwrite at offset 0, fixed width), the way
  // the kernel's file changes under a kept-open descriptor.
  std::atomic<bool> driving{true};
  std::thread driver;
  if (!rapl.empty() && local_rank == 0) {
    driver = std::thread([&] {
      const int fd = ::open((rapl + "/intel-rapl:0/energy_uj").c_str(), O_WRONLY);
      // The DRAM zone is optional (the 2-rank test's tree has none).
      const int dram = ::open((rapl + "/intel-rapl:0:1/energy_uj").c_str(), O_WRONLY);
      long long value = kCounterStart, dram_value = kCounterStart;
      const auto start = std::chrono::steady_clock::now();
      while (driving.load() && fd >= 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(kTickMs));
        if (package_w > 0) {
          // Known watts on the clock, whatever the sleep overshoot: counter = W x elapsed.
          const double s =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          value = kCounterStart + std::llround(package_w * s * 1e6);
          dram_value = kCounterStart + std::llround(dram_w * s * 1e6);
        } else {
          value += kUjPerTick;
          dram_value += kDramUjPerTick;
        }
        const std::string text = std::to_string(value) + "\n";
        if (::pwrite(fd, text.data(), text.size(), 0) < 0) break;
        if (dram >= 0) {
          const std::string d = std::to_string(dram_value) + "\n";
          if (::pwrite(dram, d.data(), d.size(), 0) < 0) break;
        }
      }
      if (fd >= 0) ::close(fd);
      if (dram >= 0) ::close(dram);
    });
  }

  c10::intrusive_ptr<c10d::Store> store;
  if (from_env) {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env_long("MASTER_PORT", 29500));
    so.isServer = rank == 0;
    so.numWorkers = world;
    so.timeout = std::chrono::milliseconds(timeout_ms);
    store = c10::make_intrusive<c10d::TCPStore>(std::getenv("MASTER_ADDR"), so);
  } else {
    store = c10::make_intrusive<c10d::FileStore>(args.at("store"), world);
  }
  auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
  options->devices.push_back(
      args.count("iface") ? c10d::ProcessGroupGloo::createDeviceForInterface(args.at("iface"))
                          : c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
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
  config.local_rank = local_rank;
  config.local_world_size = static_cast<int>(from_env ? env_long("LOCAL_WORLD_SIZE", 1)
                                                      : get(args, "local_world", world));
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
      if (step_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
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
  session.finish();  // the rank's own report is written here, outside the measured bytes
  const long long written_before = written_bytes();
  const auto result = trainmeter::torch::gather(session, *pg, gopt);
  const long long written_during = written_bytes() - written_before;
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
                                  {"written_bytes", written_during},
                                  {"peak_rss_bytes", peak_rss_bytes()},
                                  {"error", result.error}};
  std::ofstream(out + "/gather.rank" + std::to_string(rank) + ".json") << summary.dump() << "\n";
  if (!result.error.empty()) std::fprintf(stderr, "rank %d: %s\n", rank, result.error.c_str());
  return 0;
}
