// The metrics endpoint (config.metrics_port) against a scraper hammering it: the step scope's
// cost with and without a client thread issuing back-to-back GET /metrics, measured side by side
// in interleaved blocks (docs/performance.md, "outputs"; issue 16 asks for <= 1 %).
//
//   build/bin/bench_metrics
//
// The training thread is pinned to the first allowed CPU and everything else (the session's
// collector, cpp-httplib's server threads, the scraper) to the others, as on any machine with a
// core to spare: the figure is what the endpoint does to the training thread through shared
// state (locks, cache lines), not what a second busy process does to a saturated machine. With a
// single allowed CPU the benchmark says so and measures the shared case.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "trainmeter/session.hpp"

namespace {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// One scrape: HTTP/1.0, the server closes after the reply. True when a reply came back.
bool scrape(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  bool ok = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    static const char kRequest[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, kRequest, sizeof kRequest - 1, MSG_NOSIGNAL) > 0) {
      char buf[16384];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) ok = true;
    }
  }
  ::close(fd);
  return ok;
}

// The allowed CPUs, in order.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (::sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

void pin_this_thread(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set);
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// The 2.5th and 97.5th percentiles of the median of `v` resampled with replacement (fixed seed).
std::pair<double, double> median_interval(const std::vector<double>& v) {
  if (v.empty()) return {0, 0};
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<std::size_t> pick(0, v.size() - 1);
  std::vector<double> medians, sample(v.size());
  for (int b = 0; b < 2000; ++b) {
    for (double& x : sample) x = v[pick(rng)];
    medians.push_back(median(sample));
  }
  std::sort(medians.begin(), medians.end());
  return {medians[medians.size() * 25 / 1000], medians[medians.size() * 975 / 1000]};
}

// The control: the step path's own work shape (two clock reads, one 32-byte slot written into a
// ring) with no trainmeter at all, so what a scraper does to any code on this machine (its
// syscalls' interrupts, the memory bus, the hypervisor) is measured beside what it does to the
// step scope.
struct ControlSlot {
  std::int64_t start, end, thread, samples;
};
ControlSlot g_ring[1024];

// Rounds of four blocks (step scope and control, each quiet and scraped), the scraped-first order
// alternating per round. Per round, each kind's scraped/quiet ratio of adjacent blocks (drift
// between rounds cancels); the counters are the medians over rounds, their 95 % bootstrap
// intervals, and the step scope's ratio over the control's: what the endpoint itself adds.
void BM_step_scope_scraped(benchmark::State& state) {
  const std::vector<int> cpus = allowed_cpus();
  const bool split = cpus.size() >= 2;
  const std::vector<int> training_cpu(cpus.begin(), cpus.begin() + (cpus.empty() ? 0 : 1));
  const std::vector<int> other_cpus(split ? cpus.begin() + 1 : cpus.begin(), cpus.end());
  // Threads inherit the creator's affinity: create the session and the scraper from a thread
  // pinned to the other CPUs, then pin the training (benchmark) thread to its own.
  if (!other_cpus.empty()) pin_this_thread(other_cpus);
  const std::uint16_t port = free_port();
  trainmeter::Config cfg;
  cfg.run_name = "bench_metrics";
  cfg.output = "/tmp/trainmeter-bench-metrics-" + std::to_string(::getpid()) + ".json";
  cfg.progress = "off";
  cfg.energy_sources = {"estimate"};
  cfg.sample_interval_ms = 100;  // the exposition is re-rendered ten times a second
  cfg.metrics_port = port;
  trainmeter::Session session(cfg);
  std::atomic<bool> scraping{false}, done{false};
  std::atomic<std::uint64_t> scrapes{0};
  std::thread scraper([&] {
    while (!done.load(std::memory_order_relaxed)) {
      if (!scraping.load(std::memory_order_relaxed)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        continue;
      }
      if (scrape(port)) scrapes.fetch_add(1, std::memory_order_relaxed);
    }
  });
  if (!training_cpu.empty()) pin_this_thread(training_cpu);
  // Wait for the first rendering, so that scrapes get 200 with a body rather than 503.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));

  constexpr int kRounds = 101;
  constexpr int kStepsPerBlock = 200'000;
  std::vector<double> scope_ratio, control_ratio, effect, quiet_ns, scraped_ns;
  double scrape_seconds = 0;
  auto block = [&](bool scope, bool with_scraper) {
    scraping.store(with_scraper);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const std::int64_t t0 = now_ns();
    if (scope) {
      for (int i = 0; i < kStepsPerBlock; ++i) {
        auto step = session.step(1);
        benchmark::ClobberMemory();
      }
    } else {
      for (int i = 0; i < kStepsPerBlock; ++i) {
        ControlSlot& slot = g_ring[i & 1023];
        slot.start = now_ns();
        slot.thread = 1;
        slot.samples = 1;
        slot.end = now_ns();
        benchmark::ClobberMemory();
      }
    }
    const double ns = double(now_ns() - t0) / kStepsPerBlock;
    if (with_scraper) scrape_seconds += ns * kStepsPerBlock * 1e-9;
    return ns;
  };
  for (auto _ : state) {
    for (int round = 0; round < kRounds; ++round) {
      const int first = round % 2 == 0 ? 1 : 0;  // scraped first in even rounds
      double ns[2][2];                           // [step scope?][scraped?]
      for (int scope = 1; scope >= 0; --scope) {
        ns[scope][first] = block(scope == 1, first == 1);
        ns[scope][1 - first] = block(scope == 1, first == 0);
      }
      quiet_ns.push_back(ns[1][0]);
      scraped_ns.push_back(ns[1][1]);
      scope_ratio.push_back(ns[1][1] / ns[1][0]);
      control_ratio.push_back(ns[0][1] / ns[0][0]);
      effect.push_back(scope_ratio.back() / control_ratio.back());
    }
  }
  scraping.store(false);
  done.store(true);
  scraper.join();
  session.finish();
  ::unlink(cfg.output.c_str());
  state.counters["quiet_ns"] = median(quiet_ns);
  state.counters["scraped_ns"] = median(scraped_ns);
  const auto [slo, shi] = median_interval(scope_ratio);
  state.counters["scope_ratio"] = median(scope_ratio);
  state.counters["scope_lo"] = slo;
  state.counters["scope_hi"] = shi;
  state.counters["control_ratio"] = median(control_ratio);
  const auto [elo, ehi] = median_interval(effect);
  state.counters["endpoint_effect"] = median(effect);
  state.counters["effect_lo"] = elo;
  state.counters["effect_hi"] = ehi;
  state.counters["scrapes_per_s"] =
      scrape_seconds > 0 ? double(scrapes.load()) / scrape_seconds : 0;
  state.counters["own_cpu"] = split ? 1 : 0;
}
BENCHMARK(BM_step_scope_scraped)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
