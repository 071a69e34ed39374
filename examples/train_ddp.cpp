// train_ddp: a real data-parallel MLP on libtorch's c10d (Gloo), measured by trainmeter on every
// rank and gathered into one run report on rank 0.
//
//   build/bin/train_ddp                    # 2 ranks on localhost (spawned by this program)
//   build/bin/train_ddp --nproc 4 --steps 500
//
// With --nproc N (default 2) and no RANK in the environment, the program is its own launcher: it
// starts N copies of itself with torchrun's variables set (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) and waits for them. Started by torchrun or any
// launcher that sets those variables, it runs as that one rank (multi-node: see
// docs/distributed.md). Each rank trains on its own shard of a synthetic regression task;
// gradients are averaged with an all-reduce inside each timed step, as DistributedDataParallel
// does. Reports: runs/train_ddp.rank<R>.json per rank and runs/train_ddp.json (merged).
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <trainmeter/gloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include <trainmeter/distributed.hpp>
#include <trainmeter/torch.hpp>
#include <trainmeter/trainmeter.hpp>

namespace {

struct Options {
  long nproc = 2;
  long steps = 200;
  long batch = 64;
  long hidden = 256;
  long port = 29500;
  long timeout_s = 120;
  std::string out = "runs/train_ddp.json";
};

const char* kUsage =
    "usage: train_ddp [options]\n"
    "  --nproc N      ranks to start on this host when RANK is not set (default 2)\n"
    "  --steps N      training steps per rank (default 200)\n"
    "  --batch B      per-rank batch size (default 64)\n"
    "  --hidden H     hidden width of the MLP (default 256)\n"
    "  --port P       MASTER_PORT for the spawned ranks (default 29500)\n"
    "  --timeout S    bound on the store rendezvous, collectives and the gather (default 120)\n"
    "  --out PATH     report path; ranks write PATH with .rank<R>, rank 0 the merged PATH\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "train_ddp: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

long parse_long(const std::string& flag, const char* value, long min, long max) {
  char* end = nullptr;
  const long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || v < min || v > max)
    usage_error(flag + " expects an integer from " + std::to_string(min) + " to " +
                std::to_string(max) + ", got '" + value + "'");
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const char* v = argv[++i];
    if (a == "--nproc")
      o.nproc = parse_long(a, v, 1, 64);
    else if (a == "--steps")
      o.steps = parse_long(a, v, 1, 100000000);
    else if (a == "--batch")
      o.batch = parse_long(a, v, 1, 1000000);
    else if (a == "--hidden")
      o.hidden = parse_long(a, v, 1, 65536);
    else if (a == "--port")
      o.port = parse_long(a, v, 1, 65535);
    else if (a == "--timeout")
      o.timeout_s = parse_long(a, v, 1, 86400);
    else if (a == "--out")
      o.out = v;
    else
      usage_error("unknown option '" + a + "'");
  }
  return o;
}

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::strtol(v, nullptr, 10) : fallback;
}

// Launcher mode: N copies of this program with the rendezvous variables torchrun would set.
int launch(int argc, char** argv, const Options& o) {
  std::vector<pid_t> pids;
  for (long r = 0; r < o.nproc; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("train_ddp: fork");
      for (pid_t p : pids) kill(p, SIGTERM);
      return 1;
    }
    if (pid == 0) {
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(o.port).c_str(), 1);
      execv("/proc/self/exe", argv);
      std::perror("train_ddp: exec");
      _exit(127);
    }
    pids.push_back(pid);
  }
  (void)argc;
  int failed = 0;
  for (std::size_t r = 0; r < pids.size(); ++r) {
    int status = 0;
    waitpid(pids[r], &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "train_ddp: rank %zu exited with status %d\n", r, status);
      ++failed;
    }
  }
  return failed == 0 ? 0 : 1;
}

struct Mlp : torch::nn::Module {
  Mlp(long in, long hidden)
      : fc1(register_module("fc1", torch::nn::Linear(in, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, hidden))),
        fc3(register_module("fc3", torch::nn::Linear(hidden, 1))) {}
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(fc1->forward(x));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);
  }
  torch::nn::Linear fc1, fc2, fc3;
};

int train(const Options& o) {
  const int rank = static_cast<int>(env_long("RANK", 0));
  const int world = static_cast<int>(env_long("WORLD_SIZE", 1));
  const char* addr = std::getenv("MASTER_ADDR");
  const std::string master = addr != nullptr && *addr != '\0' ? addr : "127.0.0.1";
  const auto port = static_cast<std::uint16_t>(env_long("MASTER_PORT", o.port));
  const std::chrono::milliseconds timeout(o.timeout_s * 1000);

  // Rendezvous the torchrun way: rank 0 serves a TCPStore at MASTER_ADDR:MASTER_PORT.
  c10d::TCPStoreOptions store_opts;
  store_opts.port = port;
  store_opts.isServer = rank == 0;
  store_opts.numWorkers = static_cast<std::size_t>(world);
  store_opts.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(master, store_opts);
  auto pg_opts = c10d::ProcessGroupGloo::Options::create(timeout);
  pg_opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  auto pg = trainmeter::torch::make_gloo_group(store, rank, world, pg_opts);

  trainmeter::Config cfg;
  cfg.run_name = "train_ddp";
  cfg.output = o.out;
  cfg.warmup_steps = 2;
  cfg.total_steps = static_cast<std::uint64_t>(o.steps);
  cfg.tags = {{"example", "train_ddp"}};
  std::unique_ptr<trainmeter::Session> session;
  try {
    cfg = trainmeter::torch::distributed_config(trainmeter::Config::from_env(cfg), *pg, timeout);
    session = std::make_unique<trainmeter::Session>(cfg);
  } catch (const trainmeter::Error& e) {
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    return 2;
  }

  // Same initial weights everywhere (seed 0), a different data shard per rank.
  torch::manual_seed(0);
  Mlp model(64, o.hidden);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto w = torch::randn({64, 1});
  torch::manual_seed(1000 + static_cast<std::uint64_t>(rank));
  std::vector<std::pair<torch::Tensor, torch::Tensor>> shard;
  for (int i = 0; i < 16; ++i) {
    auto x = torch::randn({o.batch, 64});
    shard.emplace_back(x, torch::sin(x.matmul(w)) + 0.01 * torch::randn({o.batch, 1}));
  }
  auto tracking = trainmeter::torch::track_memory(*session);
  trainmeter::torch::describe(*session, model, "mlp");

  double loss_value = 0;
  for (long s = 0; s < o.steps; ++s) {
    auto step = session->step(static_cast<std::uint64_t>(o.batch));
    const auto& [x, y] = shard[static_cast<std::size_t>(s) % shard.size()];
    optimizer.zero_grad();
    auto loss = torch::mse_loss(model.forward(x), y);
    loss.backward();
    // Average gradients across ranks: one flattened all-reduce, as DDP's buckets do.
    std::vector<torch::Tensor> grads;
    for (auto& p : model.parameters()) grads.push_back(p.grad().view(-1));
    std::vector<torch::Tensor> flat{torch::cat(grads)};
    pg->allreduce(flat)->wait();
    flat[0].div_(world);
    std::int64_t offset = 0;
    for (auto& p : model.parameters()) {
      const auto n = p.grad().numel();
      p.grad().view(-1).copy_(flat[0].slice(0, offset, offset + n));
      offset += n;
    }
    optimizer.step();
    loss_value = loss.item<double>();
    step.set_loss(loss_value);
  }
  tracking.reset();

  trainmeter::torch::GatherOptions gather_opts;
  gather_opts.timeout = timeout;
  const auto result = trainmeter::torch::gather(*session, *pg, gather_opts);
  if (rank == 0) {
    std::cout << trainmeter::format_summary(session->finish());
    std::cout << "final loss (rank 0) " << loss_value << "\n";
    if (result.merged_written)
      std::cout << "merged report " << result.merged_path << " ("
                << world - result.missing_ranks.size() << " of " << world << " ranks, gather "
                << result.wall_ns / 1000000.0 << " ms, " << result.received_bytes
                << " bytes received)\n";
  }
  if (!result.error.empty())
    std::fprintf(stderr, "rank %d: gather: %s\n", rank, result.error.c_str());
  return result.error.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  if (std::getenv("RANK") == nullptr) return launch(argc, argv, o);
  return train(o);
}
