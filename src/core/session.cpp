#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <random>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "base/values.hpp"
#include "core/composition.hpp"
#include "core/log.hpp"
#include "core/run_id.hpp"
#include "core/session_impl.hpp"
#include "core/signals.hpp"
#include "platform/file.hpp"
#include "platform/host.hpp"

TRAINMETER_BEGIN_NAMESPACE

const char* version() noexcept {
  return TRAINMETER_VERSION_STRING;
}

namespace detail {

namespace {

std::atomic<std::uint64_t> g_next_session_id{1};

// Collector wake-up bounds: it drains more often while steps flow fast (a ring holds 16,384
// records), and sleeps up to the sampling interval when idle.
constexpr std::int64_t kMinDrainIntervalNs = 2'000'000;
constexpr std::int64_t kMaxDrainIntervalNs = 50'000'000;
// How long finish() lets in-flight GPU steps complete before reporting them unresolved.
constexpr std::int64_t kGpuFinishWaitNs = 2'000'000'000;

std::int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Default report path: runs/<name>.json, with the rank before ".json" in multi-rank runs; a
// "{rank}" in a user's path is replaced instead.
std::string resolve_output(const Config& c) {
  std::string out = c.output.empty() ? "runs/" + c.run_name + ".json" : c.output;
  const auto brace = out.find("{rank}");
  if (brace != std::string::npos) {
    out.replace(brace, 6, std::to_string(c.rank));
  } else if (c.world_size > 1) {
    const auto dot = out.rfind(".json");
    const std::string suffix = ".rank" + std::to_string(c.rank);
    if (dot != std::string::npos && dot + 5 == out.size())
      out.insert(dot, suffix);
    else
      out += suffix;
  }
  return out;
}

// Creates the report's directory and proves it writable now, so a bad path fails at
// construction rather than after hours of training.
void prepare_output(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error(
        fmt::format("trainmeter: invalid configuration:\n  output: cannot create directory "
                    "'{}' for report '{}': {}; accepted: a writable file path",
                    dir.string(), path, ec.message()));
  if (fs::is_directory(p, ec))
    throw Error(
        fmt::format("trainmeter: invalid configuration:\n  output: '{}' is a directory; "
                    "accepted: a writable file path",
                    path));
  const std::string probe = (dir / fmt::format(".trainmeter-probe-{}", ::getpid())).string();
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(
        fmt::format("trainmeter: invalid configuration:\n  output: directory '{}' is not "
                    "writable ({}); accepted: a writable file path",
                    dir.string(), errno_text(errno)));
  ::close(fd);
  ::unlink(probe.c_str());
}

}  // namespace

SessionImpl::SessionImpl(Config config) {
  if (config.run_name.empty()) config.run_name = program_invocation_short_name;
  config.validate();
  ctx_.start_unix_ns = unix_now_ns();
  if (config.run_id.empty()) {
    const char* elastic = std::getenv("TORCHELASTIC_RUN_ID");
    config.run_id =
        (elastic != nullptr && *elastic != '\0') ? elastic : generate_run_id(ctx_.start_unix_ns);
  }
  ctx_.report_path = resolve_output(config);
  ctx_.config = std::move(config);
  prepare_output(ctx_.report_path);
  ctx_.phase_name = [this](std::uint16_t id) -> std::string {
    std::lock_guard<std::mutex> lock(names_mutex_);
    return id < phase_count_.load() ? phase_names_[id] : std::string("other");
  };
  ctx_.steps_collected = [this] { return steps_collected(); };
  components_ = make_builtin_components(ctx_);
  hot_.id = g_next_session_id.fetch_add(1);
  hot_.owner = this;
  hot_.step_cpu_time = ctx_.config.step_cpu_time;
  state_.phases.resize(1);
  state_.phases[0].name = kDefaultPhase;
  phase_names_[0] = kDefaultPhase;
  phase_ptrs_[0].store(phase_names_[0].c_str());
  phase_count_.store(1);
  state_.tags = ctx_.config.tags;
  state_.command_line = read_command_line(ctx_.config.proc_root);
  batch_.reserve(ThreadRing::kCapacity);
  state_.records.reserve(std::min<std::uint64_t>(ctx_.config.max_retained_steps, 1 << 16));
}

SessionImpl::~SessionImpl() {
  finish();
}

void SessionImpl::start() {
  const CpuTimes cpu = process_cpu_times();
  cpu_user_start_ = cpu.user_s;
  cpu_system_start_ = cpu.system_s;
  ctx_.start_ns = now_ns();
  for (auto& c : components_) c->start(ctx_.start_ns);
  // reliability: note SIGINT/SIGTERM (chaining to the program's handlers); see core/signals.hpp
  begin_signal_watch(hot_.id);
  // reliability: an uncaught exception still writes the report, status "crashed"
  begin_crash_watch(
      hot_.id,
      [](void* self, const char* what) noexcept { static_cast<SessionImpl*>(self)->crash(what); },
      this);
  hot_.active.store(true, std::memory_order_release);
  collector_ = std::thread([this] { collector_loop(); });
}

bool SessionImpl::add_component(std::unique_ptr<Component> component) noexcept {
  if (!component) return false;
  std::lock_guard<std::mutex> lock(components_mutex_);
  if (!hot_.active.load(std::memory_order_acquire)) return false;
  try {
    component->start(now_ns());
    components_.push_back(std::move(component));
    return true;
  } catch (...) {
    ctx_.diagnostics.add("session", diag::kError, "could not add a component (out of memory)");
    return false;
  }
}

ThreadRing* SessionImpl::attach_thread() noexcept {
  std::lock_guard<std::mutex> lock(rings_mutex_);
  if (!hot_.active.load(std::memory_order_acquire)) return nullptr;
  if (rings_.size() >= 0xffff) return nullptr;
  try {
    auto storage = std::make_unique<StepRecord[]>(ThreadRing::kCapacity);
    auto ring =
        std::make_unique<ThreadRing>(static_cast<std::uint16_t>(rings_.size()), storage.get());
    ThreadRing* raw = ring.get();
    ring_storage_.push_back(std::move(storage));
    rings_.push_back(std::move(ring));
    TlsRing& tls = tls_ring();
    tls.session_id = hot_.id;
    tls.ring = raw;
    return raw;
  } catch (...) {
    ctx_.diagnostics.add("session", diag::kDropped, "no memory for a thread's step ring");
    return nullptr;
  }
}

Phase SessionImpl::phase(const char* name) noexcept {
  if (name == nullptr) return Phase{0};
  const int n = phase_count_.load(std::memory_order_acquire);
  // Same literal: pointer equality, the common case; then by content.
  for (int i = 0; i < n; ++i)
    if (phase_ptrs_[i].load(std::memory_order_relaxed) == name)
      return Phase{static_cast<std::uint16_t>(i)};
  for (int i = 0; i < n; ++i)
    if (phase_names_[i] == name) return Phase{static_cast<std::uint16_t>(i)};
  std::lock_guard<std::mutex> lock(names_mutex_);
  const int m = phase_count_.load(std::memory_order_relaxed);
  for (int i = n; i < m; ++i)
    if (phase_names_[i] == name) return Phase{static_cast<std::uint16_t>(i)};
  if (m >= kMaxPhases) {
    ctx_.diagnostics.add("session", diag::kDropped,
                         fmt::format("more than {} phases; '{}' is counted as '{}'", kMaxPhases,
                                     name, phase_names_[kMaxPhases - 1]));
    return Phase{static_cast<std::uint16_t>(kMaxPhases - 1)};
  }
  try {
    phase_names_[m] = name;
  } catch (...) {
    return Phase{0};
  }
  phase_ptrs_[m].store(name, std::memory_order_relaxed);
  phase_count_.store(m + 1, std::memory_order_release);
  return Phase{static_cast<std::uint16_t>(m)};
}

MetricId SessionImpl::metric(const char* name) noexcept {
  if (name == nullptr) return MetricId{};
  std::lock_guard<std::mutex> lock(names_mutex_);
  const int n = metric_count_.load(std::memory_order_relaxed);
  for (int i = 0; i < n; ++i)
    if (metric_names_[i] == name) return MetricId{static_cast<std::uint16_t>(i)};
  if (n >= kMaxMetrics) {
    ctx_.diagnostics.add(
        "session", diag::kDropped,
        fmt::format("more than {} metrics; '{}' is not recorded", kMaxMetrics, name));
    return MetricId{};
  }
  try {
    metric_names_[n] = name;
  } catch (...) {
    return MetricId{};
  }
  metric_count_.store(n + 1, std::memory_order_release);
  return MetricId{static_cast<std::uint16_t>(n)};
}

void SessionImpl::tag(const std::string& key, const std::string& value) noexcept {
  std::lock_guard<std::mutex> lock(names_mutex_);
  try {
    state_.tags[key] = value;
  } catch (...) {
  }
}

bool StepAggregator::add(PhaseAggregate& p, StepRecord& r, std::uint64_t warmup_steps) noexcept {
  r.flags = 0;
  ++p.steps;
  const bool warmup = p.warmup_steps < warmup_steps;
  if (warmup) {
    ++p.warmup_steps;
    r.flags |= kStepWarmup;
  } else {
    p.samples += r.samples;
    p.tokens += r.tokens;
    p.wall_sum_ns += double(r.wall_ns);
    p.wall.add(double(r.wall_ns));
    p.wall_sketch.add(double(r.wall_ns));
    if (r.cpu_ns >= 0) {
      p.cpu.add(double(r.cpu_ns));
      p.cpu_sketch.add(double(r.cpu_ns));
    }
    if (!std::isnan(r.loss)) {
      p.loss.add(r.loss);
      if (std::isnan(p.first_loss)) p.first_loss = r.loss;
      p.last_loss = r.loss;
    }
  }
  note_gap(r, p, warmup);
  return warmup;
}

void StepAggregator::note_gap(const StepRecord& r, PhaseAggregate& p, bool warmup) noexcept {
  const std::size_t t = r.thread;
  if (t >= last_step_.size()) {
    try {
      last_step_.resize(t + 1);
    } catch (...) {
      return;  // out of memory: this step's gap is not counted
    }
  }
  LastStep& last = last_step_[t];
  // Nested or overlapping scopes on one thread have no gap between them.
  if (!warmup && last.end_ns >= 0 && last.phase == r.phase && r.start_ns >= last.end_ns) {
    const double gap = double(r.start_ns - last.end_ns);
    p.gap.add(gap);
    p.gap_sketch.add(gap);
    p.gap_sum_ns += gap;
    p.gap_step_wall_ns += double(r.wall_ns);
  }
  last.end_ns = std::max(last.end_ns, r.start_ns + r.wall_ns);
  last.phase = r.phase;
}

void SessionImpl::process(StepRecord& r) noexcept {
  const std::size_t phase_id = r.phase;
  if (phase_id >= state_.phases.size()) {
    const int n = phase_count_.load(std::memory_order_acquire);
    state_.phases.resize(
        static_cast<std::size_t>(std::max<int>(n, static_cast<int>(phase_id) + 1)));
    for (int i = 0; i < n; ++i) state_.phases[i].name = phase_names_[i];
  }
  PhaseAggregate& p = state_.phases[phase_id];
  r.seq = next_index_++;
  const bool warmup = aggregator_.add(p, r, ctx_.config.warmup_steps);
  std::size_t retained = GpuPending::kNotRetained;
  if (state_.records.size() < ctx_.config.max_retained_steps) {
    retained = state_.records.size();
    state_.records.push_back(r);
    if (!warmup) ++p.retained;
  }
  if (GpuStepTimer* gpu = gpu_.load(std::memory_order_acquire)) gpu->track(r, warmup, retained);
}

bool SessionImpl::attach_gpu_timing(std::unique_ptr<GpuEventSource> source,
                                    std::uint32_t pairs) noexcept {
  if (!source || !ctx_.config.gpu_step_time) return false;
  try {
    std::lock_guard<std::mutex> lock(rings_mutex_);
    if (!hot_.active.load(std::memory_order_relaxed) || gpu_owner_) return false;
    gpu_owner_ = std::make_unique<GpuStepTimer>(std::move(source), &hot_, pairs);
    gpu_.store(gpu_owner_.get(), std::memory_order_release);
    return true;
  } catch (...) {
    return false;
  }
}

void SessionImpl::poll_gpu(bool give_up) noexcept {
  GpuStepTimer* gpu = gpu_.load(std::memory_order_acquire);
  if (gpu == nullptr) return;
  if (!gpu->active()) gpu->poll_prepare();
  if (gpu->pending() == 0) return;
  gpu->resolve(
      [this](const GpuPending& p, std::int64_t ns) {
        if (ns < 0) return;
        if (p.retained != GpuPending::kNotRetained && p.retained < state_.records.size())
          state_.records[p.retained].gpu_ns = ns;
        if (p.warmup || p.phase >= state_.phases.size()) return;
        PhaseAggregate& agg = state_.phases[p.phase];
        agg.gpu.add(double(ns));
        agg.gpu_sketch.add(double(ns));
        agg.gpu_sum_ns += double(ns);
        agg.gpu_wall_sum_ns += double(p.wall_ns);
        if (p.retained != GpuPending::kNotRetained) ++agg.gpu_retained;
      },
      give_up);
}

std::uint64_t SessionImpl::drain() noexcept {
  std::vector<ThreadRing*> rings;
  {
    std::lock_guard<std::mutex> lock(rings_mutex_);
    rings.reserve(rings_.size());
    for (auto& r : rings_) rings.push_back(r.get());
  }
  std::uint64_t total = 0;
  for (ThreadRing* ring : rings) {
    batch_.clear();
    const std::uint64_t n = ring->drain([this](const StepRecord& r) { batch_.push_back(r); });
    if (n == 0) continue;
    total += n;
    for (StepRecord& r : batch_) process(r);
    std::lock_guard<std::mutex> lock(components_mutex_);
    for (auto& c : components_) c->steps(batch_.data(), batch_.size());
  }
  poll_gpu(false);
  steps_collected_.store(next_index_, std::memory_order_relaxed);
  return total;
}

void SessionImpl::collector_loop() noexcept {
  const std::int64_t sample_ns = std::int64_t(ctx_.config.sample_interval_ms) * 1'000'000;
  const std::int64_t max_wait = std::min(sample_ns, kMaxDrainIntervalNs);
  std::int64_t wait_ns = max_wait;
  std::int64_t next_sample = ctx_.start_ns + sample_ns;
  std::unique_lock<std::mutex> lock(wake_mutex_);
  while (!stop_) {
    const std::int64_t until = std::min(now_ns() + wait_ns, next_sample);
    wake_.wait_for(lock, std::chrono::nanoseconds(std::max<std::int64_t>(until - now_ns(), 0)),
                   [this] { return stop_; });
    if (stop_) break;
    lock.unlock();
    const std::uint64_t n = drain();
    // Drain sooner while a ring fills faster than a quarter of its capacity per wake-up.
    if (n > ThreadRing::kCapacity / 4)
      wait_ns = std::max(wait_ns / 2, kMinDrainIntervalNs);
    else if (n < ThreadRing::kCapacity / 16)
      wait_ns = std::min(wait_ns * 2, max_wait);
    const std::int64_t now = now_ns();
    if (now >= next_sample) {
      std::lock_guard<std::mutex> guard(components_mutex_);
      for (auto& c : components_) c->sample(now);
      next_sample += sample_ns;
      if (next_sample <= now) next_sample = now + sample_ns;  // fell behind: skip, don't burst
    }
    lock.lock();
  }
}

void SessionImpl::crash(const char* what) noexcept {
  // The collector cannot join itself: a crash on its thread leaves this report unwritten.
  if (collector_.joinable() && std::this_thread::get_id() == collector_.get_id()) return;
  crashed_.store(true);
  ctx_.diagnostics.add("session", diag::kError,
                       std::string("the program called std::terminate: ") + what +
                           "; the report was written by trainmeter's terminate handler");
  finish();
}

Report SessionImpl::finish() noexcept {
  std::lock_guard<std::mutex> guard(finish_mutex_);
  if (finished_) return report_;
  finished_ = true;
  end_crash_watch(hot_.id);
  try {
    // Stop accepting steps, then wait (bounded) for scopes already open to record.
    {
      std::lock_guard<std::mutex> lock(rings_mutex_);
      // seq_cst: pairs with ThreadRing::enter() and open_scopes() (see step.hpp).
      hot_.active.store(false, std::memory_order_seq_cst);
    }
    const std::int64_t deadline = now_ns() + 200'000'000;
    std::uint64_t open = 0;
    for (;;) {
      open = 0;
      {
        std::lock_guard<std::mutex> lock(rings_mutex_);
        for (auto& r : rings_) open += static_cast<std::uint64_t>(std::max(r->open_scopes(), 0));
      }
      if (open == 0 || now_ns() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (collector_.joinable()) {
      {
        std::lock_guard<std::mutex> lock(wake_mutex_);
        stop_ = true;
      }
      wake_.notify_all();
      collector_.join();
    }
    drain();
    // GPU steps still in flight: their events complete as the device catches up. Wait for them
    // a bounded time (never a synchronisation), then report the rest as unresolved.
    if (GpuStepTimer* gpu = gpu_.load(std::memory_order_acquire)) {
      const std::int64_t gpu_deadline = now_ns() + kGpuFinishWaitNs;
      while (gpu->pending() > 0 && now_ns() < gpu_deadline) {
        poll_gpu(false);
        if (gpu->pending() > 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
      poll_gpu(true);
      RunState::Gpu g;
      g.method = gpu->source().name();
      g.active = gpu->active();
      if (g.active) g.device = gpu->source().device();
      if (gpu->unavailable()) g.unavailable_reason = gpu->source().reason();
      g.counts = gpu->counts();
      const GpuTimingCounts& n = g.counts;
      if (n.pool_exhausted > 0)
        ctx_.diagnostics.add_count(rk::gpu_timing, diag::kDropped, n.pool_exhausted,
                                   "steps without GPU time: every event pair was still in flight "
                                   "(the device was far behind the host)");
      if (n.record_errors + n.query_errors > 0)
        ctx_.diagnostics.add_count(rk::gpu_timing, diag::kError, n.record_errors + n.query_errors,
                                   "steps without GPU time: recording or querying a CUDA event "
                                   "failed (last error: " +
                                       gpu->source().reason() + ")");
      if (n.unresolved > 0)
        ctx_.diagnostics.add_count(rk::gpu_timing, diag::kSkipped, n.unresolved,
                                   "steps without GPU time: their events had not completed when "
                                   "the report was written");
      state_.gpu = std::move(g);
    }
    const std::int64_t end = now_ns();
    {
      std::lock_guard<std::mutex> lock(components_mutex_);
      for (auto& c : components_) c->sample(end);
      for (auto& c : components_) c->stop(end);
    }
    std::uint64_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(rings_mutex_);
      for (auto& r : rings_) dropped += r->dropped();
    }
    state_.open_at_finish = open;
    state_.steps_dropped = dropped;
    state_.steps_recorded = next_index_;
    if (dropped > 0)
      ctx_.diagnostics.add_count("session", diag::kDropped, dropped,
                                 "steps lost because a thread's ring was full (collector starved)");
    if (open > 0)
      ctx_.diagnostics.add_count("session", diag::kDropped, open,
                                 "step scopes still open at finish(); not in the report");
    if (state_.records.size() < state_.steps_recorded)
      ctx_.diagnostics.add_count(
          "session", diag::kSkipped, state_.steps_recorded - state_.records.size(),
          fmt::format("steps beyond max_retained_steps={} counted in statistics but not retained",
                      ctx_.config.max_retained_steps));
    state_.end_ns = end;
    state_.end_unix_ns = ctx_.start_unix_ns + (end - ctx_.start_ns);
    const CpuTimes cpu = process_cpu_times();
    state_.cpu_user_s = cpu.user_s - cpu_user_start_;
    state_.cpu_system_s = cpu.system_s - cpu_system_start_;
    // reliability: a SIGINT/SIGTERM received during the run marks it aborted, with a diagnostic
    if (end_signal_watch(hot_.id, ctx_.diagnostics)) aborted_.store(true);
    state_.status = crashed_.load() ? "crashed" : aborted_.load() ? "aborted" : "completed";
    // Session::set_total_steps() wins over the configured total (config.total_steps).
    state_.total_steps = total_steps() > 0 ? total_steps() : ctx_.config.total_steps;
    {
      std::lock_guard<std::mutex> lock(names_mutex_);
      const int n = phase_count_.load();
      if (state_.phases.size() < static_cast<std::size_t>(n)) state_.phases.resize(n);
      for (int i = 0; i < n; ++i) state_.phases[i].name = phase_names_[i];
      for (int i = 0; i < metric_count_.load(); ++i)
        state_.metric_names.push_back(metric_names_[i]);
    }

    std::lock_guard<std::mutex> lock(components_mutex_);
    write_run_report(ctx_, state_, components_, &report_);
  } catch (const std::exception& e) {
    log(LogLevel::kError, std::string("finish failed: ") + e.what());
    report_.status = "aborted";
  } catch (...) {
    log(LogLevel::kError, "finish failed");
  }
  return report_;
}

ThreadRing* attach_thread(HotState* hot) noexcept {
  return static_cast<SessionImpl*>(hot->owner)->attach_thread();
}

std::string generate_run_id(std::int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  return fmt::format("{}-{:08x}", stamp, rd());
}

}  // namespace detail

Session::Session(Config config) {
  if (!config.enabled) return;
  impl_ = std::make_unique<detail::SessionImpl>(std::move(config));
  impl_->start();
  hot_ = impl_->hot();
}

Session::~Session() {
  finish();
}

Phase Session::phase(const char* name) noexcept {
  return impl_ ? impl_->phase(name) : Phase{0};
}

MetricId Session::metric(const char* name) noexcept {
  return impl_ ? impl_->metric(name) : MetricId{};
}

void Session::tag(const std::string& key, const std::string& value) noexcept {
  if (impl_) impl_->tag(key, value);
}

void Session::set_total_steps(std::uint64_t steps) noexcept {
  if (impl_) impl_->set_total_steps(steps);
}

Report Session::finish() noexcept {
  if (!impl_) {
    Report r;
    r.disabled = true;
    r.status = "disabled";
    return r;
  }
  return impl_->finish();
}

void Session::abort() noexcept {
  if (impl_) impl_->abort();
}

const Config& Session::config() const noexcept {
  static const Config disabled = [] {
    Config c;
    c.enabled = false;
    return c;
  }();
  return impl_ ? impl_->config() : disabled;
}

TRAINMETER_END_NAMESPACE
