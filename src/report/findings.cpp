#include "report/findings.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "carbon/model.hpp"
#include "report/units.hpp"

namespace trainmeter::detail {

namespace {
using nlohmann::json;

// ---- Reading the report: absent and null are the same ("no evidence") ----

const json* at(const json& j, std::initializer_list<std::string_view> path) {
  const json* cur = &j;
  for (std::string_view k : path) {
    if (!cur->is_object()) return nullptr;
    const auto it = cur->find(std::string(k));
    if (it == cur->end() || it->is_null()) return nullptr;
    cur = &*it;
  }
  return cur;
}

std::optional<double> num(const json& j, std::initializer_list<std::string_view> path) {
  const json* v = at(j, path);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  const double d = v->get<double>();
  return std::isfinite(d) ? std::optional<double>(d) : std::nullopt;
}

json finite(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// ---- Building findings ----

json evidence(std::string key, json value, const char* unit) {
  return {{rk::key, std::move(key)}, {rk::value, std::move(value)}, {rk::unit, unit}};
}

json gain(std::optional<double> fraction, std::optional<double> value, const char* unit,
          std::string method) {
  return {{rk::fraction, fraction ? finite(*fraction) : json(nullptr)},
          {rk::value, value ? finite(*value) : json(nullptr)},
          {rk::unit, unit != nullptr ? json(unit) : json(nullptr)},
          {rk::method, std::move(method)}};
}

json finding(const char* id, const char* severity, std::string scope, std::string title) {
  return {{rk::id, id},
          {rk::severity, severity},
          {rk::scope, std::move(scope)},
          {rk::title, std::move(title)},
          {rk::evidence, json::array()},
          {rk::try_, json::array()},
          {rk::expected_gain, nullptr}};
}

struct Collector {
  json items = json::array();
  json not_checked = json::array();
  void skip(const char* rule, std::string reason) {
    not_checked.push_back({{rk::rule, rule}, {rk::reason, std::move(reason)}});
  }
};

std::string pct(double share) {
  return fmt::format("{:.1f} %", share * 100);
}

std::string phase_key(const std::string& phase, std::string_view rest) {
  return rk::dotted(rk::phases, phase, rest);
}

double median_of(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

bool gpu_run(const json& report) {
  if (const json* active = at(report, {rk::run, rk::gpu_timing, rk::active});
      active != nullptr && active->is_boolean() && active->get<bool>())
    return true;
  if (const json* phases = at(report, {rk::phases}); phases != nullptr && phases->is_object())
    for (const auto& p : phases->items())
      if (num(p.value(), {rk::gpu_busy_fraction})) return true;
  return false;
}

// ---- Rule: input-bound ----

void rule_input_bound(const json& report, Collector& out) {
  const json* phases = at(report, {rk::phases});
  bool any = false;
  if (phases != nullptr && phases->is_object())
    for (const auto& p : phases->items()) {
      const json* bs = at(p.value(), {rk::between_steps});
      if (bs == nullptr || !bs->is_object()) continue;
      const auto share = num(*bs, {rk::share_of_wall});
      if (!share) continue;
      any = true;
      if (*share < kInputBoundShare) continue;
      const std::string& name = p.key();
      json f = finding("input_bound", *share >= kInputBoundHighShare ? "high" : "medium",
                       "phase:" + name,
                       fmt::format("{}: {} of the phase's wall time passes between steps "
                                   "(waiting for the next batch?)",
                                   name, pct(*share)));
      f[rk::evidence].push_back(evidence(
          phase_key(name, rk::dotted(rk::between_steps, rk::share_of_wall)), *share, rk::fraction));
      for (const char* k : {rk::total_ns, rk::p50_ns, rk::p90_ns, rk::max_ns})
        if (const auto v = num(*bs, {k}))
          f[rk::evidence].push_back(
              evidence(phase_key(name, rk::dotted(rk::between_steps, k)), *v, "ns"));
      if (const auto c = num(*bs, {rk::count}))
        f[rk::evidence].push_back(
            evidence(phase_key(name, rk::dotted(rk::between_steps, rk::count)), *c, rk::count));
      f[rk::try_] = {
          "libtorch DataLoader: load in worker threads, torch::data::DataLoaderOptions()."
          "workers(N) with N up to the idle logical CPUs, and allow more batches in flight with "
          ".max_jobs(2 * N) (prefetch)",
          "with .workers(N), .enforce_ordering(false) lets a fast batch overtake a slow one",
          "move decoding and augmentation out of the loop (pre-process once, cache tensors)",
          "on a GPU: pin the batch (tensor.pin_memory()) and copy it with "
          ".to(device, /*non_blocking=*/true) so the copy overlaps compute",
          "time spent between steps also counts logging, checkpoints and evaluation done "
          "outside a step scope: check what the loop does between steps"};
      f[rk::expected_gain] =
          gain(*share, num(*bs, {rk::total_ns}), "ns",
               "upper bound: the time between steps over the phase's wall time; loading that "
               "overlaps compute completely removes it, partial overlap removes less");
      out.items.push_back(std::move(f));
    }
  if (!any)
    out.skip("input_bound",
             "no phases.<phase>.between_steps.share_of_wall in this report (older report, or no "
             "phase with two steps on a thread)");
}

// ---- Rule: under-used CPU threads ----

void rule_cpu_threads(const json& report, Collector& out) {
  const auto user = num(report, {rk::run, rk::cpu_time_s, rk::user});
  const auto sys = num(report, {rk::run, rk::cpu_time_s, rk::system});
  const auto wall = num(report, {rk::run, rk::duration_s});
  const auto cpus = num(report, {rk::host, rk::logical_cpus});
  if (!user || !sys || !wall || !cpus || *wall <= 0) {
    out.skip("cpu_threads",
             "run.cpu_time_s, run.duration_s or host.logical_cpus not in the report");
    return;
  }
  if (*cpus < kCpuMinLogicalCpus) {
    out.skip("cpu_threads", "fewer than two logical CPUs");
    return;
  }
  if (gpu_run(report)) {
    out.skip("cpu_threads",
             "GPU-timed run: idle CPU threads are expected while the device computes (see "
             "gpu_idle)");
    return;
  }
  const double cores = (*user + *sys) / *wall;
  const double share = cores / *cpus;
  if (share >= kCpuUnderuseShare) return;
  const auto intra = num(report, {rk::host, rk::torch_intra_op_threads});
  const auto inter = num(report, {rk::host, rk::torch_inter_op_threads});
  json f = finding("cpu_threads", "medium", rk::run,
                   fmt::format("the process kept {:.2f} of {:.0f} logical CPUs busy ({})", cores,
                               *cpus, pct(share)));
  f[rk::evidence] = {
      evidence(rk::dotted(rk::run, rk::cpu_time_s, rk::user), *user, "s"),
      evidence(rk::dotted(rk::run, rk::cpu_time_s, rk::system), *sys, "s"),
      evidence(rk::dotted(rk::run, rk::duration_s), *wall, "s"),
      evidence(rk::dotted(rk::host, rk::logical_cpus), *cpus, rk::count),
      evidence("(run.cpu_time_s.user + run.cpu_time_s.system) / run.duration_s", cores, "cpus"),
      evidence("cpu busy share (cpus busy / host.logical_cpus)", share, rk::fraction)};
  if (intra)
    f[rk::evidence].push_back(
        evidence(rk::dotted(rk::host, rk::torch_intra_op_threads), *intra, rk::count));
  if (inter)
    f[rk::evidence].push_back(
        evidence(rk::dotted(rk::host, rk::torch_inter_op_threads), *inter, rk::count));
  if (intra && *intra < *cpus)
    f[rk::try_].push_back(fmt::format(
        "libtorch runs ops on {:.0f} intra-op thread(s) of {:.0f} logical CPUs: call "
        "at::set_num_threads({:.0f}) at start-up, or set OMP_NUM_THREADS={:.0f} (or unset it)",
        *intra, *cpus, *cpus, *cpus));
  f[rk::try_].push_back(
      "larger batches give each op enough work to spread over the threads (small ops run on one)");
  f[rk::try_].push_back(
      "if the loop waits for data, load in DataLoader workers "
      "(torch::data::DataLoaderOptions().workers(N)); see input_bound");
  f[rk::expected_gain] =
      gain(1 - share, std::nullopt, nullptr,
           "upper bound: the same CPU work spread over every logical CPU with linear scaling "
           "(1 - busy share); real ops scale less than linearly");
  out.items.push_back(std::move(f));
}

// ---- Rule: GPU idle or launch-bound ----

std::optional<double> nvml_utilisation(const json& report, std::string& key) {
  const json* comps = at(report, {rk::energy, rk::components});
  if (comps == nullptr || !comps->is_array()) return std::nullopt;
  for (std::size_t i = 0; i < comps->size(); ++i) {
    const json& c = (*comps)[i];
    if (const auto u = num(c, {rk::inputs, "mean_utilisation_percent"})) {
      key = fmt::format("energy.components[{}].inputs.mean_utilisation_percent", i);
      return *u;
    }
  }
  return std::nullopt;
}

void rule_gpu_idle(const json& report, Collector& out) {
  const json* phases = at(report, {rk::phases});
  bool any = false;
  auto add = [&](const std::string& scope, const std::string& who, double busy, json ev) {
    json f = finding("gpu_idle", busy < kGpuIdleHighShare ? "high" : "medium", scope,
                     fmt::format("{}: the GPU was busy {} of the host's step time (host- or "
                                 "launch-bound)",
                                 who, pct(busy)));
    f[rk::evidence] = std::move(ev);
    f[rk::try_] = {"larger batches: more work per kernel launch",
                   "fewer, larger kernels: fuse elementwise ops, avoid .item()/.cpu() in the step "
                   "(each synchronises), use CUDA graphs for a static step",
                   "keep data loading off the training thread (DataLoader workers, pinned memory, "
                   "non_blocking copies)",
                   "mixed precision (torch::autocast) only pays once the GPU is the bottleneck"};
    f[rk::expected_gain] = gain(1 - busy, std::nullopt, nullptr,
                                "upper bound: the share of the step the device waited (1 - busy "
                                "fraction), if host work were hidden behind device work");
    out.items.push_back(std::move(f));
  };
  if (phases != nullptr && phases->is_object())
    for (const auto& p : phases->items()) {
      const auto busy = num(p.value(), {rk::gpu_busy_fraction});
      if (!busy) continue;
      any = true;
      if (*busy >= kGpuIdleShare) continue;
      json ev =
          json::array({evidence(phase_key(p.key(), rk::gpu_busy_fraction), *busy, rk::fraction)});
      if (const auto g = num(p.value(), {rk::gpu_time_ns, rk::p50}))
        ev.push_back(evidence(phase_key(p.key(), rk::dotted(rk::gpu_time_ns, rk::p50)), *g, "ns"));
      if (const auto h = num(p.value(), {rk::step_time_ns, rk::p50}))
        ev.push_back(evidence(phase_key(p.key(), rk::dotted(rk::step_time_ns, rk::p50)), *h, "ns"));
      add("phase:" + p.key(), p.key(), *busy, std::move(ev));
    }
  if (any) return;
  std::string key;
  if (const auto util = nvml_utilisation(report, key)) {
    const double busy = *util / 100;
    if (busy < kGpuIdleShare)
      add(rk::run, rk::run, busy, json::array({evidence(key, *util, "percent")}));
    return;
  }
  out.skip("gpu_idle",
           "no phases.<phase>.gpu_busy_fraction (CUDA events) nor NVML utilisation in the report");
}

// ---- Rules on steps[]: warm-up, periodic slow steps, bimodal, outliers ----

struct PhaseSteps {
  std::vector<std::pair<double, double>> index_wall;  // (index, wall_ns)
  std::vector<bool> warmup;
};

void rule_steps(const json& report, const FindingsOptions& options, Collector& out) {
  std::map<std::string, std::vector<std::tuple<double, double, bool>>> by_phase;
  const json* steps = at(report, {rk::steps});
  if (options.steps != nullptr) {
    // The session's retained records, without a document of them.
    for (const StepView& s : *options.steps)
      by_phase[std::string(s.phase)].emplace_back(s.index, s.wall_ns, s.warmup);
    steps = nullptr;
  } else if (steps == nullptr || !steps->is_array()) {
    out.skip("step_patterns", "no retained steps[] in the report (stream-only or none)");
    return;
  }
  static const json kNoSteps = json::array();
  for (const json& s : steps != nullptr ? *steps : kNoSteps) {
    const json* phase = at(s, {rk::phase});
    const auto idx = num(s, {rk::index});
    const auto wall = num(s, {rk::wall_ns});
    if (phase == nullptr || !phase->is_string() || !idx || !wall) continue;
    const json* w = at(s, {rk::warmup});
    by_phase[phase->get<std::string>()].emplace_back(
        *idx, *wall, w != nullptr && w->is_boolean() && w->get<bool>());
  }
  bool any = false;
  for (auto& [name, list] : by_phase) {
    if (static_cast<int>(list.size()) < kPatternMinSteps) continue;
    any = true;
    std::sort(list.begin(), list.end());
    std::vector<double> wall;
    std::size_t flagged = 0;
    for (const auto& [i, w, warm] : list) {
      wall.push_back(w);
      if (warm) ++flagged;
    }
    const std::string retained_key = "steps[] (phase " + name + ")";
    const double retained = static_cast<double>(wall.size());

    // Warm-up detected: the leading run of steps slower than kWarmupSlowFactor x the median of
    // the steps not flagged warm-up.
    const double m0 =
        median_of(std::vector<double>(wall.begin() + static_cast<long>(flagged), wall.end()));
    std::size_t detected = 0;
    while (detected < wall.size() && wall[detected] > kWarmupSlowFactor * m0) ++detected;
    double configured = static_cast<double>(flagged);
    std::string configured_key = retained_key + " flagged warmup";
    if (const auto w = num(report, {rk::phases, name, rk::warmup_steps})) {
      configured = *w;
      configured_key = phase_key(name, rk::warmup_steps);
    }
    if (detected > configured && detected < wall.size()) {
      auto mean_from = [&](std::size_t from) {
        double s = 0;
        for (std::size_t i = from; i < wall.size(); ++i) s += wall[i];
        return s / static_cast<double>(wall.size() - from);
      };
      const auto from_cfg = static_cast<std::size_t>(std::min<double>(configured, retained));
      const double mean_cfg = mean_from(from_cfg), mean_det = mean_from(detected);
      json f = finding(rk::warmup, "low", "phase:" + name,
                       fmt::format("{}: the first {} steps are slow (warm-up), {:.0f} configured",
                                   name, detected, configured));
      f[rk::evidence] = {
          evidence(retained_key + " leading steps slower than 1.5 x median",
                   static_cast<double>(detected), rk::steps),
          evidence(configured_key, configured, rk::steps),
          evidence(retained_key + " median wall_ns after warm-up", m0, "ns"),
          evidence(retained_key + " mean wall_ns after the configured warm-up", mean_cfg, "ns"),
          evidence(retained_key + " mean wall_ns after the detected warm-up", mean_det, "ns")};
      if (const auto c = num(report, {rk::config, rk::warmup_steps}))
        f[rk::evidence].push_back(
            evidence(rk::dotted(rk::config, rk::warmup_steps), *c, rk::steps));
      f[rk::try_] = {
          fmt::format("set warmup_steps={} (TRAINMETER_WARMUP_STEPS={}) so the statistics "
                      "describe the steady state",
                      detected, detected)};
      f[rk::expected_gain] = gain(
          mean_cfg > 0 ? std::optional<double>((mean_cfg - mean_det) / mean_cfg) : std::nullopt,
          mean_cfg - mean_det, "ns",
          "accuracy, not speed: the mean step time reported today is too high by this "
          "much (mean of the steps after the configured warm-up minus the mean after the "
          "detected one)");
      out.items.push_back(std::move(f));
    }

    // The steady part: after the longer of the two warm-ups.
    const std::size_t skip = std::max<std::size_t>(detected, flagged);
    if (wall.size() - skip < static_cast<std::size_t>(kPatternMinSteps)) continue;
    std::vector<double> steady(wall.begin() + static_cast<long>(skip), wall.end());
    const double m = median_of(steady);
    double total = 0;
    for (double w : steady) total += w;
    std::vector<std::size_t> slow;  // positions within the phase (0 = its first step)
    double extra = 0;
    for (std::size_t i = 0; i < steady.size(); ++i)
      if (steady[i] > kSlowStepFactor * m) {
        slow.push_back(skip + i);
        extra += steady[i] - m;
      }
    const double extra_share = total > 0 ? extra / total : 0;

    // Periodic: one distance between consecutive slow steps for kPeriodAgreement of them.
    if (static_cast<int>(slow.size()) >= kPeriodicMinSlowSteps) {
      std::map<std::size_t, std::size_t> distances;
      for (std::size_t i = 1; i < slow.size(); ++i) ++distances[slow[i] - slow[i - 1]];
      std::size_t period = 0, agree = 0;
      for (const auto& [d, c] : distances)
        if (c > agree) {
          period = d;
          agree = c;
        }
      const double agreement = static_cast<double>(agree) / static_cast<double>(slow.size() - 1);
      if (period >= 2 && agreement >= kPeriodAgreement && extra_share >= kSlowStepMinShare) {
        std::vector<double> slow_walls;
        for (std::size_t pos : slow) slow_walls.push_back(wall[pos]);
        json f = finding(
            "periodic_slow_steps", extra_share >= 0.10 ? "medium" : "low", "phase:" + name,
            fmt::format("{}: every {} steps one is slow ({} slow steps, median {} vs "
                        "{}), {} of the phase's step time",
                        name, period, slow.size(), format_duration_ns(median_of(slow_walls)),
                        format_duration_ns(m), pct(extra_share)));
        f[rk::evidence] = {
            evidence(retained_key + " period between slow steps", static_cast<double>(period),
                     rk::steps),
            evidence(retained_key + " share of distances equal to the period", agreement,
                     rk::fraction),
            evidence(retained_key + " slow steps (> 2 x median)", static_cast<double>(slow.size()),
                     rk::count),
            evidence(retained_key + " first slow step (0 = the phase's first)",
                     static_cast<double>(slow.front()), rk::steps),
            evidence(retained_key + " median wall_ns", m, "ns"),
            evidence(retained_key + " median wall_ns of the slow steps", median_of(slow_walls),
                     "ns"),
            evidence(retained_key + " time above the median in slow steps", extra, "ns"),
            evidence(retained_key + " retained steps", retained, rk::count)};
        f[rk::try_] = {fmt::format("something runs every {} steps inside the step: evaluation, "
                                   "checkpointing, logging, a learning-rate schedule or a "
                                   "synchronisation (.item(), printing the loss)",
                                   period),
                       "do it less often, asynchronously (a background thread for checkpoints), or "
                       "in its own phase (StepScope phase \"eval\") so it is measured apart"};
        f[rk::expected_gain] = gain(extra_share, extra, "ns",
                                    "upper bound: the slow steps' time above the median over the "
                                    "phase's step time, if the periodic work were free");
        out.items.push_back(std::move(f));
        continue;
      }
    }

    // Bimodal: the largest ratio between consecutive sorted step times splits the steps in two
    // groups that each hold kBimodalMinShare of them.
    std::vector<double> sorted = steady;
    std::sort(sorted.begin(), sorted.end());
    std::size_t split = 0;
    double best_ratio = 1;
    for (std::size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i - 1] > 0 && sorted[i] / sorted[i - 1] > best_ratio) {
        best_ratio = sorted[i] / sorted[i - 1];
        split = i;
      }
    const double low_share = static_cast<double>(split) / static_cast<double>(sorted.size());
    if (best_ratio >= kBimodalGapRatio && low_share >= kBimodalMinShare &&
        1 - low_share >= kBimodalMinShare) {
      const double low_median =
          median_of(std::vector<double>(sorted.begin(), sorted.begin() + static_cast<long>(split)));
      const double high_median =
          median_of(std::vector<double>(sorted.begin() + static_cast<long>(split), sorted.end()));
      double above = 0;
      for (std::size_t i = split; i < sorted.size(); ++i) above += sorted[i] - low_median;
      const double g = total > 0 ? above / total : 0;
      json f = finding("bimodal_steps", g >= 0.10 ? "medium" : "low", "phase:" + name,
                       fmt::format("{}: two kinds of steps, {} at {} and {} at {}", name,
                                   pct(low_share), format_duration_ns(low_median),
                                   pct(1 - low_share), format_duration_ns(high_median)));
      f[rk::evidence] = {
          evidence(retained_key + " fast group median wall_ns", low_median, "ns"),
          evidence(retained_key + " fast group share", low_share, rk::fraction),
          evidence(retained_key + " slow group median wall_ns", high_median, "ns"),
          evidence(retained_key + " slow group share", 1 - low_share, rk::fraction),
          evidence(retained_key + " gap ratio between the groups", best_ratio, "ratio"),
          evidence(retained_key + " retained steps", retained, rk::count)};
      f[rk::try_] = {
          "different batch shapes (last batch, variable sequence lengths): bucket or pad "
          "to a few shapes, drop_last",
          "two kinds of work under one phase name: give each its own phase",
          "a noisy machine (other processes, CPU frequency): pin the process, rerun"};
      f[rk::expected_gain] =
          gain(g, above, "ns",
               "upper bound: the slow group's time above the fast group's median over the "
               "phase's step time, if every step ran like the fast group");
      out.items.push_back(std::move(f));
      continue;
    }

    // Outliers: slow steps without a period.
    if (!slow.empty() && extra_share >= kSlowStepMinShare) {
      json f = finding("outlier_steps", extra_share >= 0.10 ? "medium" : "low", "phase:" + name,
                       fmt::format("{}: {} steps slower than 2 x the median ({}), {} of the "
                                   "phase's step time",
                                   name, slow.size(), format_duration_ns(m), pct(extra_share)));
      f[rk::evidence] = {
          evidence(retained_key + " slow steps (> 2 x median)", static_cast<double>(slow.size()),
                   rk::count),
          evidence(retained_key + " median wall_ns", m, "ns"),
          evidence(retained_key + " time above the median in slow steps", extra, "ns"),
          evidence(retained_key + " retained steps", retained, rk::count)};
      f[rk::try_] = {
          "look at the slow steps' index and time in steps[] (trainmeter export "
          "--format trace): garbage collection of caches, page faults, other processes",
          "allocator growth: reuse tensors, reserve memory up front"};
      f[rk::expected_gain] = gain(extra_share, extra, "ns",
                                  "upper bound: the slow steps' time above the median over the "
                                  "phase's step time");
      out.items.push_back(std::move(f));
    }
  }
  if (!any)
    out.skip("step_patterns",
             fmt::format("no phase with at least {} retained steps", kPatternMinSteps));
}

// ---- Rule: memory composition and lower precision ----

void rule_memory(const json& report, Collector& out) {
  const json* model = at(report, {rk::model});
  if (model == nullptr || !model->is_object()) {
    out.skip("memory_composition",
             "no model footprint (trainmeter::torch::describe) in the report");
  } else {
    const double params = num(*model, {rk::parameter_bytes}).value_or(0);
    const double buffers = num(*model, {rk::buffer_bytes}).value_or(0);
    const double adam = num(*model, {rk::optimizer_state_bytes_estimate, rk::adam}).value_or(0);
    const double sgd =
        num(*model, {rk::optimizer_state_bytes_estimate, rk::sgd_momentum}).value_or(0);
    // describe() writes adam = 2 x the trainable parameters' bytes; gradients are the same size.
    const double grads = adam / 2;
    json f = finding("memory_composition", "info", rk::run,
                     fmt::format("model: {} parameters, {} gradients, {} Adam state (estimate)",
                                 format_bytes(params), format_bytes(grads), format_bytes(adam)));
    f[rk::evidence] = {
        evidence(rk::dotted(rk::model, rk::parameter_bytes), params, "bytes"),
        evidence(rk::dotted(rk::model, rk::buffer_bytes), buffers, "bytes"),
        evidence("model.optimizer_state_bytes_estimate.adam / 2 (gradients)", grads, "bytes"),
        evidence(rk::dotted(rk::model, rk::optimizer_state_bytes_estimate, rk::adam), adam,
                 "bytes"),
        evidence(rk::dotted(rk::model, rk::optimizer_state_bytes_estimate, rk::sgd_momentum), sgd,
                 "bytes")};
    const auto peak_rss = num(report, {rk::memory, rk::peak_rss_bytes});
    const auto peak_cpu = num(report, {rk::memory, rk::peak_tensor_bytes, "cpu"});
    if (peak_cpu)
      f[rk::evidence].push_back(evidence("memory.peak_tensor_bytes.cpu", *peak_cpu, "bytes"));
    if (peak_rss)
      f[rk::evidence].push_back(
          evidence(rk::dotted(rk::memory, rk::peak_rss_bytes), *peak_rss, "bytes"));
    if (peak_rss && peak_cpu)
      f[rk::evidence].push_back(
          evidence("memory.peak_rss_bytes - memory.peak_tensor_bytes.cpu (RSS outside tensors, "
                   "lower bound: the peaks may come from different moments)",
                   std::max(0.0, *peak_rss - *peak_cpu), "bytes"));
    if (const json* cuda = at(report, {rk::memory, rk::cuda}); cuda != nullptr && cuda->is_object())
      for (const auto& d : cuda->items())
        if (const auto r = num(d.value(), {rk::allocated_peak_bytes}))
          f[rk::evidence].push_back(evidence(
              rk::dotted(rk::memory, rk::cuda, d.key(), rk::allocated_peak_bytes), *r, "bytes"));
    f[rk::try_] = {
        "the rest of the peak is activations and temporaries: smaller batches, "
        "activation checkpointing, torch::NoGradGuard in evaluation"};
    f[rk::expected_gain] =
        gain(std::nullopt, std::nullopt, nullptr, "informational: no change proposed");
    out.items.push_back(std::move(f));

    // Lower precision: only float32 bytes are counted (bf16/fp16 already halved).
    const double f32_all = num(*model, {rk::bytes_by_dtype, "float32"}).value_or(0);
    const double f32_params = std::min(f32_all, params);
    if (f32_params > 0 && params > 0) {
      const double r = f32_params / params;
      const double save_params = f32_params / 2;
      const double save_grads = grads * r / 2;
      const double save_state = adam * r * 3 / 4;
      const double total = save_params + save_grads + save_state;
      const char* severity = peak_cpu && *peak_cpu > 0 && total >= kPrecisionMediumShare * *peak_cpu
                                 ? "medium"
                                 : "low";
      json p = finding("lower_precision", severity, rk::run,
                       fmt::format("bf16 parameters and gradients would save {}, 8-bit Adam state "
                                   "{} more ({} in all)",
                                   format_bytes(save_params + save_grads), format_bytes(save_state),
                                   format_bytes(total)));
      p[rk::evidence] = {
          evidence("model.bytes_by_dtype.float32", f32_all, "bytes"),
          evidence(rk::dotted(rk::model, rk::parameter_bytes), params, "bytes"),
          evidence(rk::dotted(rk::model, rk::optimizer_state_bytes_estimate, rk::adam), adam,
                   "bytes"),
          evidence("saving: float32 parameters in bf16/fp16", save_params, "bytes"),
          evidence("saving: their gradients in bf16/fp16", save_grads, "bytes"),
          evidence("saving: Adam state in 8 bits (2 of 8 bytes per parameter)", save_state,
                   "bytes")};
      if (buffers > 0)
        p[rk::evidence].push_back(
            evidence("model.buffer_bytes (float32 buffers may be counted "
                     "as parameters: the saving is an upper bound)",
                     buffers, "bytes"));
      p[rk::try_] = {
          "keep the weights in bf16 (module->to(torch::kBFloat16)) or train under "
          "torch::autocast with fp32 master weights (saves activations more than weights)",
          "an 8-bit optimizer (bitsandbytes-style block-wise quantised Adam state)"};
      p[rk::expected_gain] = gain(
          peak_cpu && *peak_cpu > 0 ? std::optional<double>(total / *peak_cpu) : std::nullopt,
          total, "bytes",
          "computed from the footprint: float32 parameters and gradients halve (2 of 4 bytes); "
          "Adam's two float32 moments go from 8 to 2 bytes per parameter; the fraction is of "
          "memory.peak_tensor_bytes.cpu; activations not counted");
      out.items.push_back(std::move(p));
    }
  }

  // GPU memory headroom: the caching allocator's reserved peak against the device's memory.
  const json* cuda = at(report, {rk::memory, rk::cuda});
  const json* gpus = at(report, {rk::host, rk::gpus});
  if (cuda == nullptr || !cuda->is_object() || gpus == nullptr || !gpus->is_array()) return;
  for (const auto& d : cuda->items()) {
    const auto reserved = num(d.value(), {rk::reserved_peak_bytes});
    if (!reserved) continue;
    const std::string idx = d.key().substr(d.key().find(':') + 1);
    for (std::size_t i = 0; i < gpus->size(); ++i) {
      const json& g = (*gpus)[i];
      const auto gi = num(g, {rk::index});
      const auto total = num(g, {"memory_total_bytes"});
      if (!gi || !total || *total <= 0 || fmt::format("{:.0f}", *gi) != idx) continue;
      const double used = *reserved / *total;
      if (used >= kGpuHeadroomUsedShare && used <= kGpuNearFullShare) continue;
      const bool full = used > kGpuNearFullShare;
      json f = finding("gpu_memory", full ? "medium" : "low", rk::run,
                       fmt::format("{}: the allocator reserved at most {} of {} ({})", d.key(),
                                   format_bytes(*reserved), format_bytes(*total), pct(used)));
      f[rk::evidence] = {
          evidence(rk::dotted(rk::memory, rk::cuda, d.key(), rk::reserved_peak_bytes), *reserved,
                   "bytes"),
          evidence(fmt::format("host.gpus[{}].memory_total_bytes", i), *total, "bytes"),
          evidence("reserved peak / device memory", used, rk::fraction)};
      if (full)
        f[rk::try_] = {
            "near the device's capacity: an out-of-memory error is close; see "
            "lower_precision and activation checkpointing"};
      else
        f[rk::try_] = {
            "the device has room: a larger batch (fewer, larger kernels) or a larger "
            "model fits"};
      f[rk::expected_gain] =
          gain(full ? std::nullopt : std::optional<double>(1 - used), *total - *reserved, "bytes",
               "the device memory not reserved at the peak");
      out.items.push_back(std::move(f));
    }
  }
}

// ---- Rule: carbon what-if ----

struct Candidate {
  std::string name, location, source;
  double g_per_kwh;
  int year;
};

void rule_carbon(const json& report, const FindingsOptions& options, Collector& out) {
  const json* carbon = at(report, {rk::carbon});
  const auto kwh = carbon ? num(*carbon, {rk::energy_kwh_with_pue}) : std::nullopt;
  const auto now = carbon ? num(*carbon, {rk::intensity_g_per_kwh}) : std::nullopt;
  if (!kwh || !now || *kwh <= 0 || *now <= 0) {
    out.skip("carbon_what_if", "no carbon.energy_kwh_with_pue or intensity in the report");
    return;
  }
  const double now_kg = *kwh * *now / 1000;
  std::vector<Candidate> cands;
  if (options.regions.empty()) {
    for (const RegionIntensity& r : region_table())
      cands.push_back({r.region, r.location, r.source, r.g_per_kwh, r.year});
  } else {
    for (const std::string& name : options.regions) {
      if (auto r = lookup_region(name))
        cands.push_back({r->region, r->location, r->source, r->g_per_kwh, r->year});
      else if (auto c = lookup_country(name))
        cands.push_back({c->iso2, c->name, c->source, c->g_per_kwh, c->year});
      else
        out.skip("carbon_what_if", "unknown region or country \"" + name + "\"");
    }
  }
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.g_per_kwh != b.g_per_kwh ? a.g_per_kwh < b.g_per_kwh : a.name < b.name;
  });
  const json base_evidence = {
      evidence(rk::dotted(rk::carbon, rk::energy_kwh_with_pue), *kwh, "kWh"),
      evidence(rk::dotted(rk::carbon, rk::intensity_g_per_kwh), *now, "g/kWh"),
      evidence("carbon.energy_kwh_with_pue x carbon.intensity_g_per_kwh / 1000", now_kg, "kg")};
  if (!cands.empty() && 1 - cands.front().g_per_kwh / *now >= kCarbonMinSaving) {
    const Candidate& best = cands.front();
    const double saving = 1 - best.g_per_kwh / *now;
    json ranking = json::array();
    for (std::size_t i = 0; i < cands.size() && static_cast<int>(i) < kCarbonRankingSize; ++i) {
      const double kg = *kwh * cands[i].g_per_kwh / 1000;
      ranking.push_back({{rk::region, cands[i].name},
                         {"location", cands[i].location},
                         {"g_per_kwh", cands[i].g_per_kwh},
                         {rk::co2e_kg, kg},
                         {"saving_kg", now_kg - kg},
                         {rk::data_year, cands[i].year},
                         {rk::data_source, cands[i].source}});
    }
    json f = finding("carbon_region", saving >= kCarbonMediumSaving ? "medium" : "low", rk::run,
                     fmt::format("the same energy in {} ({:.3g} g/kWh) would emit {} less CO2e",
                                 best.name, best.g_per_kwh, pct(saving)));
    f[rk::evidence] = base_evidence;
    f[rk::evidence].push_back(evidence("cleanest candidate: " + best.name + " g_per_kwh (" +
                                           best.source + ", " + std::to_string(best.year) + ")",
                                       best.g_per_kwh, "g/kWh"));
    f[rk::ranking] = std::move(ranking);
    f[rk::try_] = {"run in a cleaner region (the ranking lists the cleanest candidates)",
                   "trainmeter recompute REPORT --region R shows one region's figures in full"};
    f[rk::expected_gain] =
        gain(saving, now_kg - *kwh * best.g_per_kwh / 1000, "kg",
             "the same energy (with PUE) times the candidate's annual-average intensity; PUE "
             "of the other site assumed equal");
    out.items.push_back(std::move(f));
  }

  // Cleanest window of a given series for the run's duration (power assumed uniform).
  if (!options.series) {
    if (at(*carbon, {rk::time_series}) != nullptr)
      out.skip("carbon_hours",
               "the report names an intensity series; give it to trainmeter advise "
               "--intensity-file FILE for the cleanest hours");
    return;
  }
  const auto& s = options.series->samples;
  const auto dur_s = num(report, {rk::run, rk::duration_s});
  // A run longer than the series' possible span (about 292 years of int64 ns) cannot fit.
  if (s.empty() || !dur_s || *dur_s <= 0 || *dur_s > 1e9) {
    out.skip("carbon_hours", "empty series or no usable run.duration_s");
    return;
  }
  const auto dur = static_cast<std::int64_t>(std::llround(*dur_s * 1e9));
  // The last value holds for one more spacing of the series (one sample: for the run's length).
  const std::int64_t end = s.size() >= 2
                               ? s.back().unix_ns + (s.back().unix_ns - s[s.size() - 2].unix_ns)
                               : s.back().unix_ns + dur;
  std::vector<double> area(s.size() + 1, 0);  // g/kWh x ns from the first sample
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::int64_t next = i + 1 < s.size() ? s[i + 1].unix_ns : end;
    area[i + 1] = area[i] + s[i].g_per_kwh * static_cast<double>(next - s[i].unix_ns);
  }
  auto area_to = [&](std::int64_t t) {
    const auto it =
        std::upper_bound(s.begin(), s.end(), t,
                         [](std::int64_t v, const IntensitySample& x) { return v < x.unix_ns; });
    const std::size_t i = static_cast<std::size_t>(it - s.begin()) - 1;
    return area[i] + s[i].g_per_kwh * static_cast<double>(t - s[i].unix_ns);
  };
  std::vector<std::pair<double, std::int64_t>> windows;  // (mean g/kWh, start)
  for (const IntensitySample& x : s)
    if (x.unix_ns + dur <= end)
      windows.emplace_back(
          (area_to(x.unix_ns + dur) - area_to(x.unix_ns)) / static_cast<double>(dur), x.unix_ns);
  if (windows.empty()) {
    out.skip("carbon_hours", "the series is shorter than the run");
    return;
  }
  std::sort(windows.begin(), windows.end());
  const double best = windows.front().first;
  const double saving = 1 - best / *now;
  if (saving < kCarbonMinSaving) return;
  json ranking = json::array();
  for (std::size_t i = 0; i < windows.size() && static_cast<int>(i) < kCarbonRankingSize; ++i)
    ranking.push_back({{rk::start_utc, format_utc(windows[i].second)},
                       {"mean_g_per_kwh", windows[i].first},
                       {rk::co2e_kg, *kwh * windows[i].first / 1000},
                       {"saving_kg", now_kg - *kwh * windows[i].first / 1000}});
  json f = finding("carbon_hours", saving >= kCarbonMediumSaving ? "medium" : "low", rk::run,
                   fmt::format("starting at {} ({:.3g} g/kWh on average over the run's {}) would "
                               "emit {} less CO2e",
                               format_utc(windows.front().second), best,
                               format_duration_ns(*dur_s * 1e9), pct(saving)));
  f[rk::evidence] = base_evidence;
  f[rk::evidence].push_back(evidence(rk::dotted(rk::run, rk::duration_s), *dur_s, "s"));
  f[rk::evidence].push_back(
      evidence(options.series->file + ": cleanest window's mean", best, "g/kWh"));
  f[rk::ranking] = std::move(ranking);
  f[rk::try_] = {"schedule the run in the cleanest window (the ranking lists the best starts)"};
  f[rk::expected_gain] = gain(saving, now_kg - *kwh * best / 1000, "kg",
                              "the same energy spread uniformly over a window of the run's "
                              "duration, times the series' time-weighted mean intensity there");
  out.items.push_back(std::move(f));
}

// ---- Rule: cost what-if ----

// The same energy (with PUE) at the cheapest candidate prices of the run's currency. Prices in
// another currency are never converted: exchange rates change daily and are not ours to bundle.
void rule_cost(const json& report, const FindingsOptions& options, Collector& out) {
  const json* cost = at(report, {rk::cost});
  const auto kwh = cost ? num(*cost, {rk::inputs, rk::energy_kwh}) : std::nullopt;
  const auto now = cost ? num(*cost, {rk::inputs, rk::energy_price_per_kwh}) : std::nullopt;
  const json* cur_j = cost ? at(*cost, {rk::currency}) : nullptr;
  if (!kwh || !now || *kwh <= 0 || *now <= 0 || cur_j == nullptr || !cur_j->is_string()) {
    out.skip("cost_what_if",
             "no cost.inputs.energy_price_per_kwh and energy_kwh in the report (set "
             "energy_price_per_kwh)");
    return;
  }
  const std::string cur = cur_j->get<std::string>();
  const std::vector<ElectricityPrice>& all =
      options.prices.empty() ? price_table() : options.prices;
  std::vector<const ElectricityPrice*> cands;
  std::vector<std::string> other;  // currencies not compared
  for (const ElectricityPrice& p : all) {
    if (p.currency == cur)
      cands.push_back(&p);
    else if (std::find(other.begin(), other.end(), p.currency) == other.end())
      other.push_back(p.currency);
  }
  if (!other.empty()) {
    std::string list;
    for (const std::string& c : other) list += (list.empty() ? "" : ", ") + c;
    out.skip("cost_what_if", fmt::format("{} of {} price candidates are in another currency ({}) "
                                         "than the run's {}: not compared across currencies",
                                         all.size() - cands.size(), all.size(), list, cur));
  }
  if (cands.empty()) return;
  std::sort(cands.begin(), cands.end(), [](const ElectricityPrice* a, const ElectricityPrice* b) {
    return a->price_per_kwh != b->price_per_kwh ? a->price_per_kwh < b->price_per_kwh
                                                : a->code < b->code;
  });
  const ElectricityPrice& best = *cands.front();
  const double saving = 1 - best.price_per_kwh / *now;
  if (saving < kCostMinSaving) return;
  const double now_cost = *kwh * *now;
  const std::string per_kwh = cur + "/kWh";
  json ranking = json::array();
  for (std::size_t i = 0; i < cands.size() && static_cast<int>(i) < kCarbonRankingSize; ++i) {
    const double c = *kwh * cands[i]->price_per_kwh;
    ranking.push_back({{"code", cands[i]->code},
                       {rk::name, cands[i]->name},
                       {"price_per_kwh", cands[i]->price_per_kwh},
                       {rk::currency, cur},
                       {"energy_cost", c},
                       {"saving", now_cost - c},
                       {rk::data_year, cands[i]->year},
                       {rk::data_source, cands[i]->source}});
  }
  json f = finding("cost_region", saving >= kCostMediumSaving ? "medium" : "low", rk::run,
                   fmt::format("the same energy at {}'s price ({:.4g} {}) would cost {} less",
                               best.name, best.price_per_kwh, per_kwh, pct(saving)));
  f[rk::evidence] = {
      evidence(rk::dotted(rk::cost, rk::inputs, rk::energy_kwh), *kwh, "kWh"),
      evidence(rk::dotted(rk::cost, rk::inputs, rk::energy_price_per_kwh), *now, per_kwh.c_str()),
      evidence("cost.inputs.energy_kwh x cost.inputs.energy_price_per_kwh", now_cost, cur.c_str()),
      evidence("cheapest candidate: " + best.code + " price_per_kwh (" + best.source + ", " +
                   std::to_string(best.year) + ")",
               best.price_per_kwh, per_kwh.c_str())};
  f[rk::ranking] = std::move(ranking);
  f[rk::try_] = {
      "run where electricity is cheaper (the ranking lists the cheapest candidates in " + cur + ")",
      "the saving is on the energy part of the cost only: the instance price "
      "(cost.compute) is not changed"};
  f[rk::expected_gain] =
      gain(saving, now_cost - *kwh * best.price_per_kwh, cur.c_str(),
           "the same energy (with PUE) times the candidate's average price in the run's "
           "currency; PUE of the other site assumed equal; share of cost.energy, not of "
           "the total");
  out.items.push_back(std::move(f));
}

int severity_rank(const json& f) {
  const std::string s = f.value(rk::severity, "info");
  return s == "high" ? 0 : s == "medium" ? 1 : s == "low" ? 2 : 3;
}

double gain_fraction(const json& f) {
  const auto g = num(f, {rk::expected_gain, rk::fraction});
  return g ? *g : -1;
}

}  // namespace

std::string format_evidence_value(const json& value, const std::string& unit) {
  if (!value.is_number()) return value.is_null() ? "n/a" : value.dump();
  const double v = value.get<double>();
  if (unit == "ns" || unit == "s" || unit == "bytes") return format_in_unit(v, unit);
  if (unit == rk::fraction) return pct(v);
  if (unit == "percent") return fmt::format("{:.1f} %", v);
  if (unit == "kg") return format_co2e_kg(v);
  if (unit == "kWh") return format_energy_j(v * kJoulesPerKwh);
  if (unit == "ratio") return fmt::format("{:.2f}x", v);
  if (unit == "g/kWh") return fmt::format("{:.3g} g/kWh", v);
  if (unit == rk::count) return fmt::format("{:.6g}", v);
  if (unit == "cpus") return fmt::format("{:.2f} CPUs", v);
  return fmt::format("{:.6g} {}", v, unit);
}

json findings(const json& report, const FindingsOptions& options) {
  Collector out;
  rule_input_bound(report, out);
  rule_cpu_threads(report, out);
  rule_gpu_idle(report, out);
  rule_steps(report, options, out);
  rule_memory(report, out);
  rule_carbon(report, options, out);
  rule_cost(report, options, out);
  std::vector<json> items(out.items.begin(), out.items.end());
  std::stable_sort(items.begin(), items.end(), [](const json& a, const json& b) {
    const int ra = severity_rank(a), rb = severity_rank(b);
    return ra != rb ? ra < rb : gain_fraction(a) > gain_fraction(b);
  });
  return {{rk::items, items}, {rk::not_checked, out.not_checked}};
}

json epoch_view(const json& report) {
  json out = json::array();
  const json* steps = at(report, {rk::steps});
  if (steps == nullptr || !steps->is_array()) return out;
  struct Row {
    double index, start, wall, samples;
    std::optional<double> loss, energy, epoch;
    std::string phase;
  };
  std::vector<Row> rows;
  std::map<std::string, std::size_t> per_phase;
  bool marked = false;
  for (const json& st : *steps) {
    const json* ph = at(st, {rk::phase});
    const auto idx = num(st, {rk::index});
    const auto wall = num(st, {rk::wall_ns});
    if (ph == nullptr || !ph->is_string() || !idx || !wall) continue;
    Row r{*idx,
          num(st, {rk::start_offset_ns}).value_or(0),
          *wall,
          num(st, {rk::samples}).value_or(0),
          num(st, {rk::loss}),
          num(st, {rk::energy_j}),
          num(st, {rk::metrics, "epoch"}),
          ph->get<std::string>()};
    marked = marked || r.epoch.has_value();
    ++per_phase[r.phase];
    rows.push_back(std::move(r));
  }
  if (rows.empty()) return out;
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.index < b.index; });
  std::string main;
  std::size_t most = 0;
  for (const auto& [name, n] : per_phase)
    if (n > most) {
      main = name;
      most = n;
    }
  std::vector<std::vector<const Row*>> epochs;
  bool interrupted = true;
  std::optional<double> last_mark;
  for (const Row& r : rows) {
    if (r.phase != main) {
      interrupted = true;
      continue;
    }
    const bool next = marked ? (!epochs.empty() && r.epoch != last_mark) : interrupted;
    if (epochs.empty() || next) epochs.emplace_back();
    epochs.back().push_back(&r);
    last_mark = r.epoch;
    interrupted = false;
  }
  if (epochs.size() < 2) return out;
  for (std::size_t e = 0; e < epochs.size(); ++e) {
    const auto& list = epochs[e];
    double wall = 0, samples = 0, loss_sum = 0, energy = 0;
    std::size_t losses = 0;
    bool energy_known = true;
    std::optional<double> loss_last;
    for (const Row* r : list) {
      wall += r->wall;
      samples += r->samples;
      if (r->loss) {
        loss_sum += *r->loss;
        ++losses;
        loss_last = r->loss;
      }
      if (r->energy)
        energy += *r->energy;
      else
        energy_known = false;
    }
    const double span = list.back()->start + list.back()->wall - list.front()->start;
    out.push_back({{"epoch", marked && list.front()->epoch ? json(*list.front()->epoch) : json(e)},
                   {rk::phase, main},
                   {"first_index", list.front()->index},
                   {rk::steps, list.size()},
                   {"span_s", span / 1e9},
                   {"step_time_s", wall / 1e9},
                   {rk::samples, samples},
                   {rk::samples_per_s, wall > 0 ? json(samples / (wall / 1e9)) : json(nullptr)},
                   {"loss_last", loss_last ? json(*loss_last) : json(nullptr)},
                   {"loss_mean", losses > 0 ? json(loss_sum / double(losses)) : json(nullptr)},
                   {rk::energy_j, energy_known ? json(energy) : json(nullptr)}});
  }
  return out;
}

namespace {
json failed_findings(const char* why) {
  return {{rk::items, json::array()}, {rk::not_checked, {{{rk::rule, "all"}, {rk::reason, why}}}}};
}
}  // namespace

void add_findings(json& report, const FindingsOptions& options) noexcept {
  try {
    json f = findings(report, options);
    report[rk::findings] = std::move(f);
  } catch (const std::exception& e) {
    try {
      report[rk::findings] = failed_findings(e.what());
    } catch (...) {
    }
  } catch (...) {
  }
}

json stored_or_computed_findings(const json& report) noexcept {
  try {
    const json* stored = at(report, {rk::findings});
    if (stored != nullptr && stored->is_object()) return *stored;
    return findings(report);
  } catch (const std::exception& e) {
    try {
      return failed_findings(e.what());
    } catch (...) {
    }
  } catch (...) {
  }
  return json();
}

std::string render_findings(const json& section) {
  const json* items = at(section, {rk::items});
  if (items == nullptr || !items->is_array() || items->empty()) return "findings: none\n";
  std::string out = fmt::format("findings ({}):\n", items->size());
  std::size_t n = 0;
  for (const json& f : *items) {
    if (!f.is_object()) continue;
    out += fmt::format("  {}. [{}] {}: {}\n", ++n, f.value(rk::severity, "?"), f.value(rk::id, "?"),
                       f.value(rk::title, ""));
    if (const json* ev = at(f, {rk::evidence}); ev != nullptr && ev->is_array())
      for (const json& e : *ev)
        out += fmt::format("       evidence  {} = {}\n", e.value(rk::key, "?"),
                           format_evidence_value(e.contains(rk::value) ? e[rk::value] : json(),
                                                 e.value(rk::unit, "")));
    if (const json* t = at(f, {rk::try_}); t != nullptr && t->is_array())
      for (const json& line : *t)
        if (line.is_string()) out += fmt::format("       try       {}\n", line.get<std::string>());
    if (const json* g = at(f, {rk::expected_gain})) {
      std::string what;
      if (const auto fr = num(*g, {rk::fraction})) what = pct(*fr);
      if (const json* v = at(*g, {rk::value}); v != nullptr && v->is_number()) {
        const json* u = at(*g, {rk::unit});
        const std::string vs =
            format_evidence_value(*v, u != nullptr && u->is_string() ? u->get<std::string>() : "");
        what = what.empty() ? vs : what + " (" + vs + ")";
      }
      out += fmt::format("       gain      {}{}{}\n", what, what.empty() ? "" : ": ",
                         g->value(rk::method, ""));
    }
  }
  return out;
}

}  // namespace trainmeter::detail
