// train_mlp: a real libtorch MLP trained on synthetic regression data, measured by trainmeter.
//
//   build/bin/train_mlp [--steps N] [--batch B] [--hidden H] [--eval-every K] [--out PATH]
//
// Writes the report (default runs/train_mlp.json) and prints a human summary. TRAINMETER_*
// variables override the configuration below (see `trainmeter config`).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include <trainmeter/torch.hpp>
#include <trainmeter/torch_ops.hpp>
#include <trainmeter/trainmeter.hpp>

namespace {

struct Options {
  long steps = 500;
  long batch = 128;
  long hidden = 512;
  long eval_every = 50;
  long features = 64;
  long seed = 0;
  std::string out = "runs/train_mlp.json";
  std::string device = "cpu";
  long loss_every = 1;
  bool sync_steps = false;
  std::string own_timings;  // test hook: the program's own counts and step times, measured outside
};

const char* kUsage =
    "usage: train_mlp [options]\n"
    "  --steps N        training steps (default 500)\n"
    "  --batch B        batch size (default 128)\n"
    "  --hidden H       hidden width of the 3-layer MLP (default 512)\n"
    "  --eval-every K   run an eval step every K training steps, 0 = never (default 50)\n"
    "  --out PATH       report path (default runs/train_mlp.json)\n"
    "  --device D       cpu or cuda (default cpu)\n"
    "  --seed S         random seed (default 0)\n"
    "  --own-timings P  also write the program's own step count and step times to P (tests)\n"
    "  --loss-every N   read the loss back (loss.item(), a device sync on a GPU) every N train\n"
    "                   steps; 0: only after the last (default 1)\n"
    "  --sync-steps     on a GPU, synchronise the device at each step's start and end (the\n"
    "                   reference for CUDA-event step times; off by default)\n"
    "  --help           show this help\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "train_mlp: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

long parse_long(const char* flag, const char* value, long min, long max) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
    usage_error(std::string(flag) + " expects an integer from " + std::to_string(min) + " to " +
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
    const bool known = a == "--steps" || a == "--batch" || a == "--hidden" || a == "--eval-every" ||
                       a == "--seed" || a == "--out" || a == "--own-timings" || a == "--device" ||
                       a == "--loss-every";
    if (a == "--sync-steps") {
      o.sync_steps = true;
      continue;
    }
    if (!known)
      usage_error(a.rfind("-", 0) == 0 ? "unknown option '" + a + "'"
                                       : "unexpected argument '" + a + "'");
    if (i + 1 >= argc) usage_error(a + " needs a value");
    const char* v = argv[++i];
    if (a == "--steps")
      o.steps = parse_long("--steps", v, 1, 100000000);
    else if (a == "--batch")
      o.batch = parse_long("--batch", v, 1, 1000000);
    else if (a == "--hidden")
      o.hidden = parse_long("--hidden", v, 1, 65536);
    else if (a == "--eval-every")
      o.eval_every = parse_long("--eval-every", v, 0, 100000000);
    else if (a == "--seed")
      o.seed = parse_long("--seed", v, 0, 1L << 40);
    else if (a == "--out")
      o.out = v;
    else if (a == "--own-timings")
      o.own_timings = v;
    else if (a == "--loss-every")
      o.loss_every = parse_long("--loss-every", v, 0, 1000000000);
    else if (a == "--device") {
      o.device = v;
      if (o.device != "cpu" && o.device != "cuda")
        usage_error("--device expects cpu or cuda, got '" + o.device + "'");
    } else {
      usage_error("unknown option '" + a + "'");
    }
  }
  return o;
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

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (opt.device == "cuda" && !torch::cuda::is_available()) {
    std::fprintf(
        stderr, "train_mlp: --device cuda requested but this libtorch has no usable CUDA device\n");
    return 2;
  }
  const torch::Device device(opt.device == "cuda" ? torch::kCUDA : torch::kCPU);
  torch::manual_seed(static_cast<uint64_t>(opt.seed));

  trainmeter::Config cfg;
  cfg.run_name = "train_mlp";
  cfg.output = opt.out;
  cfg.warmup_steps = 2;
  cfg.total_steps = static_cast<std::uint64_t>(opt.steps);
  cfg.tags = {{"example", "train_mlp"}, {"device", opt.device}};
  std::unique_ptr<trainmeter::Session> session;
  try {
    session = std::make_unique<trainmeter::Session>(trainmeter::Config::from_env(cfg));
  } catch (const trainmeter::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }

  // Synthetic regression task: y = sin(x . w) + noise, a fixed pool of batches.
  Mlp model(opt.features, opt.hidden);
  model.to(device);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto w = torch::randn({opt.features, 1});
  auto make_batch = [&] {
    auto x = torch::randn({opt.batch, opt.features});
    auto y = torch::sin(x.matmul(w)) + 0.01 * torch::randn({opt.batch, 1});
    return std::make_pair(x.to(device), y.to(device));
  };
  std::vector<std::pair<torch::Tensor, torch::Tensor>> pool;
  for (int i = 0; i < 16; ++i) pool.push_back(make_batch());
  const auto eval_batch = make_batch();

  // Tensor bytes per step through libtorch's allocator hook, per-op time and FLOPs on every Nth
  // step when TRAINMETER_OPS=1 (off by default), GPU step time on a CUDA device: one guard.
  auto instrumentation = trainmeter::torch::instrument(*session);
  trainmeter::torch::describe(*session, model, "mlp");
  const trainmeter::Phase eval_phase = session->phase("eval");
  std::vector<std::int64_t> own_train_ns, own_eval_ns;
  own_train_ns.reserve(static_cast<std::size_t>(opt.steps));
  const bool sync = opt.sync_steps && device.is_cuda();
  double last_loss = 0;
  for (long s = 0; s < opt.steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    {
      if (sync) torch::cuda::synchronize();
      auto step = session->step(opt.batch);
      const auto& [x, y] = pool[static_cast<std::size_t>(s) % pool.size()];
      optimizer.zero_grad();
      auto loss = torch::mse_loss(model.forward(x), y);
      loss.backward();
      optimizer.step();
      if ((opt.loss_every > 0 && (s + 1) % opt.loss_every == 0) || s + 1 == opt.steps) {
        last_loss = loss.item<double>();
        step.set_loss(last_loss);
      }
      if (sync) torch::cuda::synchronize();
    }
    own_train_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    if (opt.eval_every > 0 && (s + 1) % opt.eval_every == 0) {
      const auto e0 = std::chrono::steady_clock::now();
      {
        auto step = session->step(static_cast<std::uint64_t>(opt.batch), eval_phase);
        torch::NoGradGuard no_grad;
        step.set_loss(
            torch::mse_loss(model.forward(eval_batch.first), eval_batch.second).item<double>());
      }
      own_eval_ns.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now() - e0)
                                .count());
    }
  }

  instrumentation.reset();
  const auto finish_t0 = std::chrono::steady_clock::now();
  const trainmeter::Report report = session->finish();
  const double finish_ms = std::chrono::duration<double, std::milli>(
                               std::chrono::steady_clock::now() - finish_t0)
                               .count();
  std::cout << trainmeter::format_summary(report);
  std::cout << "final loss " << last_loss << "\n";
  if (report.written)
    std::cout << "report   " << report.path << "\n";
  else if (!report.disabled)
    std::cout << "report   not written (see diagnostics above)\n";
  std::cout << "finish() " << std::fixed << std::setprecision(1) << finish_ms << " ms\n";

  if (!opt.own_timings.empty()) {
    std::ofstream out(opt.own_timings);
    out << "{\"train_steps\": " << own_train_ns.size() << ", \"eval_steps\": " << own_eval_ns.size()
        << ", \"train_ns\": [";
    for (std::size_t i = 0; i < own_train_ns.size(); ++i) out << (i ? "," : "") << own_train_ns[i];
    out << "], \"eval_ns\": [";
    for (std::size_t i = 0; i < own_eval_ns.size(); ++i) out << (i ? "," : "") << own_eval_ns[i];
    out << "]}\n";
  }
  // Disabled on purpose (TRAINMETER_ENABLED=0) is success; a report that could not be written is
  // not.
  return report.written || report.disabled ? 0 : 1;
}
