// The C++ side of bench/peers (docs/peers.md): the same MLP training step as
// bench/peers/py/step_cost.py, timed bare and with each C++ hook, and a fixed-length run under a
// trainmeter session for the energy items.
//
//   peers_cpp step-cost --size tiny|medium [--pairs N] [--block N]
//       Paired blocks in one process (bare vs hooked, order flipped every pair); prints one JSON
//       line per variant: ns added per step (median of pairs), base step, ratio, each on the
//       wall clock and on the training thread's CPU clock.
//       Variants: trainmeter (Session step scope, the default configuration from the
//       environment), trainmeter_torch (the same plus trainmeter::torch::track_memory, i.e.
//       per-step tensor-byte peaks), profiler_schedule (libtorch's kineto profiler driven the
//       way torch.profiler.profile(schedule=schedule(wait=1, warmup=1, active=3)) + step()
//       drives it from Python: prepare, enable, disable per cycle and a "ProfilerStep#N" user
//       scope around each step).
//   peers_cpp run --size tiny|medium --seconds S
//       Trains for S seconds under a trainmeter Session configured from TRAINMETER_* variables;
//       prints {"report": path, "steps": n, "t_start": s, "t_end": s} (CLOCK_MONOTONIC).
#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <ATen/record_function.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <trainmeter/torch.hpp>
#include <trainmeter/trainmeter.hpp>

namespace {

// The MLP of step_cost.py: Linear(w, w) -> ReLU -> Linear(w, w), MSE loss, SGD.
struct Mlp {
  Mlp(int width, int batch)
      : net(torch::nn::Linear(width, width), torch::nn::ReLU(), torch::nn::Linear(width, width)),
        opt(net->parameters(), torch::optim::SGDOptions(0.01)),
        x(torch::randn({batch, width})),
        y(torch::randn({batch, width})) {}
  void step() {
    opt.zero_grad();
    auto loss = torch::mse_loss(net->forward(x), y);
    loss.backward();
    opt.step();
  }
  torch::nn::Sequential net;
  torch::optim::SGD opt;
  torch::Tensor x, y;
};

struct Size {
  int width, batch, block, pairs;
};
Size size_of(const std::string& name) {
  if (name == "tiny") return {64, 32, 200, 61};
  if (name == "medium") return {1024, 256, 4, 31};
  std::fprintf(stderr, "unknown --size %s (tiny|medium)\n", name.c_str());
  std::exit(2);
}

double monotonic_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

// torch.profiler.schedule(wait=1, warmup=1, active=3), repeat=0, as profiler.py's
// _transit_action table applies it at each step() call.
class ScheduledProfiler {
 public:
  ScheduledProfiler() : config_(torch::profiler::impl::ProfilerState::KINETO, false, false) {}
  ~ScheduledProfiler() {
    if (recording_) torch::autograd::profiler::disableProfiler();
  }
  template <class F>
  void step(F&& body) {
    {
      // torch.profiler's record_function("ProfilerStep#N"): a user scope owning its name.
      at::RecordFunction guard(at::RecordScope::USER_SCOPE);
      if (guard.isActive()) guard.before("ProfilerStep#" + std::to_string(step_num_));
      body();
    }
    ++step_num_;
    const int phase = static_cast<int>(step_num_ % 5);  // 0 wait, 1 warmup, 2..4 active
    namespace prof = torch::autograd::profiler;
    if (phase == 1) {
      prof::prepareProfiler(config_, {torch::profiler::impl::ActivityType::CPU});
    } else if (phase == 2) {
      prof::enableProfiler(config_, {torch::profiler::impl::ActivityType::CPU});
      recording_ = true;
    } else if (phase == 0 && recording_) {
      auto result = prof::disableProfiler();  // what on_trace_ready would receive
      recording_ = false;
    }
  }

 private:
  torch::profiler::impl::ProfilerConfig config_;
  std::uint64_t step_num_ = 0;
  bool recording_ = false;
};

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct Series {
  std::vector<double> delta_ns, base_ns, ratio;
  void add(double bare, double hooked, int block) {
    delta_ns.push_back((hooked - bare) / block * 1e9);
    base_ns.push_back(bare / block * 1e9);
    ratio.push_back(hooked / bare);
  }
  std::string json() const {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"base_ns_p50\": %.1f, \"added_ns_p50\": %.1f, \"added_ns_p25\": %.1f, "
                  "\"added_ns_p75\": %.1f, \"ratio_p50\": %.5f}",
                  median(base_ns), median(delta_ns), quantile(delta_ns, 0.25),
                  quantile(delta_ns, 0.75), median(ratio));
    return buf;
  }
};

// The hook alone: CPU time per call around an empty body, median of 7 repetitions of `calls`
// calls (less an empty loop's). Resolvable under load where the in-step difference is not. The
// pause between repetitions lets trainmeter's collector drain the ring (so no step is dropped
// and the timed path is always the full record write).
double alone_ns(const std::function<void()>& hook, int calls) {
  std::vector<double> per_call;
  for (int rep = 0; rep < 7; ++rep) {
    const double c0 = thread_cpu_s();
    for (int i = 0; i < calls; ++i) hook();
    const double hooked = thread_cpu_s() - c0;
    const double e0 = thread_cpu_s();
    for (int i = 0; i < calls; ++i) asm volatile("" ::: "memory");
    const double empty = thread_cpu_s() - e0;
    per_call.push_back((hooked - empty) / calls * 1e9);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return median(per_call);
}

// Runs `pairs` pairs of blocks (bare, hooked; order flipped every pair), each timed on the wall
// clock and on this thread's CPU clock; prints one JSON line (the shape step_cost.py prints),
// with the hook alone (alone_ns) when `empty_hook` is given.
void paired(const char* variant, const std::string& size_name, const Size& s, Mlp& m,
            const std::function<void()>& hooked_step, const std::function<void()>& empty_hook,
            int alone_calls) {
  for (int i = 0; i < 3 * s.block; ++i) hooked_step();  // warm the hook's own state
  Series wall, cpu;
  for (int p = 0; p < s.pairs; ++p) {
    double bare[2] = {0, 0}, hooked[2] = {0, 0};
    for (int order = 0; order < 2; ++order) {
      const bool hook_now = (order == 0) == (p % 2 == 0);
      const double w0 = monotonic_s(), c0 = thread_cpu_s();
      for (int i = 0; i < s.block; ++i) {
        if (hook_now)
          hooked_step();
        else
          m.step();
      }
      double* t = hook_now ? hooked : bare;
      t[0] = monotonic_s() - w0;
      t[1] = thread_cpu_s() - c0;
    }
    wall.add(bare[0], hooked[0], s.block);
    cpu.add(bare[1], hooked[1], s.block);
  }
  const double alone = alone_ns(empty_hook, alone_calls);
  std::printf(
      "{\"lang\": \"cpp\", \"torch\": \"%s\", \"variant\": \"%s\", \"size\": \"%s\", "
      "\"pairs\": %d, \"block\": %d, \"wall\": %s, \"cpu\": %s, \"alone_cpu_ns\": %.1f, "
      "\"alone_calls\": %d}\n",
      TORCH_VERSION, variant, size_name.c_str(), s.pairs, s.block, wall.json().c_str(),
      cpu.json().c_str(), alone, alone_calls);
  std::fflush(stdout);
}

std::string arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

int step_cost(int argc, char** argv) {
  const std::string size_name = arg(argc, argv, "--size", "tiny");
  Size s = size_of(size_name);
  s.pairs = std::stoi(arg(argc, argv, "--pairs", std::to_string(s.pairs).c_str()));
  s.block = std::stoi(arg(argc, argv, "--block", std::to_string(s.block).c_str()));
  const std::string only =
      arg(argc, argv, "--variants", "trainmeter,trainmeter_torch,profiler_schedule");
  torch::manual_seed(0);
  Mlp m(s.width, s.batch);
  for (int i = 0; i < 20; ++i) m.step();
  auto wanted = [&](const char* v) {
    return ("," + only + ",").find(std::string(",") + v + ",") != std::string::npos;
  };
  if (wanted("trainmeter") || wanted("trainmeter_torch")) {
    trainmeter::Config c = trainmeter::Config::from_env();
    c.run_name = "peers_step_cost_" + size_name;
    trainmeter::Session session(c);
    const auto samples = static_cast<std::uint64_t>(s.batch);
    const std::function<void()> scoped_step = [&] {
      auto scope = session.step(samples);
      m.step();
    };
    const std::function<void()> empty_scope = [&] { auto scope = session.step(samples); };
    if (wanted("trainmeter")) paired("trainmeter", size_name, s, m, scoped_step, empty_scope, 8000);
    if (wanted("trainmeter_torch")) {
      auto tracking = trainmeter::torch::track_memory(session);
      paired("trainmeter_torch", size_name, s, m, scoped_step, empty_scope, 8000);
    }
    session.finish();
  }
  if (wanted("profiler_schedule")) {
    ScheduledProfiler prof;
    paired(
        "profiler_schedule", size_name, s, m, [&] { prof.step([&] { m.step(); }); },
        [&] { prof.step([] {}); }, 1000);
  }
  return 0;
}

int run(int argc, char** argv) {
  const std::string size_name = arg(argc, argv, "--size", "tiny");
  const Size s = size_of(size_name);
  const double seconds = std::stod(arg(argc, argv, "--seconds", "5"));
  torch::manual_seed(0);
  Mlp m(s.width, s.batch);
  trainmeter::Config c = trainmeter::Config::from_env();
  if (c.run_name.empty()) c.run_name = "peers_run_" + size_name;
  trainmeter::Session session(c);
  auto tracking = trainmeter::torch::track_memory(session);
  trainmeter::torch::describe(session, *m.net, "mlp");
  const double t_start = monotonic_s();
  std::uint64_t steps = 0;
  while (monotonic_s() - t_start < seconds) {
    auto scope = session.step(static_cast<std::uint64_t>(s.batch));
    m.step();
    ++steps;
  }
  tracking.reset();
  session.finish();
  const double t_end = monotonic_s();
  std::printf("{\"report\": \"%s\", \"steps\": %llu, \"t_start\": %.6f, \"t_end\": %.6f}\n",
              session.config().output.c_str(), static_cast<unsigned long long>(steps), t_start,
              t_end);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(1);
  if (argc >= 2 && std::strcmp(argv[1], "step-cost") == 0) return step_cost(argc, argv);
  if (argc >= 2 && std::strcmp(argv[1], "run") == 0) return run(argc, argv);
  std::fprintf(stderr,
               "usage: peers_cpp step-cost --size tiny|medium | run --size S --seconds S\n");
  return 2;
}
