#include "energy/energy.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "energy/counter.hpp"
#include "energy/estimator.hpp"
#include "energy/nvml.hpp"
#include "energy/perf_power.hpp"
#include "energy/proc_cpu.hpp"
#include "energy/rapl.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::detail {
namespace {

using nlohmann::json;

// Above this average power over one interval a counter delta is a glitch, not energy: no CPU
// package, DRAM domain or GPU board draws 5 kW.
constexpr double kMaxPlausibleWatts = 5000.0;

enum class Kind { kRapl, kPerf, kNvmlEnergy, kNvmlPower, kEstimateCpu, kEstimateRam, kEstimateGpu };

// Preference within one component name: lower wins when it has qualified channels.
int preference(Kind k) {
  switch (k) {
    case Kind::kRapl:
      return 0;
    case Kind::kPerf:
      return 1;
    case Kind::kNvmlEnergy:
      return 0;
    case Kind::kNvmlPower:
      return 1;
    default:
      return 2;
  }
}

enum class State { kPending, kQualified, kDisqualified };

struct Channel {
  std::string name;        // cpu, dram, platform, gpu:N
  std::string source;      // rapl:package-0, perf:energy-pkg, nvml:gpu0:energy-counter, ...
  std::string provenance;  // measured, integrated, estimated
  Kind kind = Kind::kRapl;
  std::size_t index = 0;       // rapl domain, perf counter or gpu index
  bool machine_level = false;  // attributed by this process's CPU-time share
  State state = State::kPending;
  CounterTracker counter;
  bool has_power = false;
  double last_power_w = 0;
  double machine_j = 0, attributed_j = 0, covered_s = 0;
  std::uint64_t samples = 0, discarded = 0, failed_reads = 0;
  std::string attribution;
  std::map<std::string, std::uint64_t> attribution_counts;  // GPU: label -> intervals
};

struct PerfChannelCounter {
  PerfCounter counter;
  double scale = 0;
};

struct GpuState {
  NvmlGpuInfo info;
  std::optional<long long> used_peak_bytes;
  double utilisation_sum = 0;
  std::uint64_t utilisation_samples = 0;
  bool util_failed = false;
  unsigned int last_util = 0;
  bool has_util = false;
  GpuShare share;
};

const std::vector<std::string>& known_sources() {
  static const std::vector<std::string> k = {"rapl", "perf", "nvml", "estimate"};
  return k;
}

json nullable(std::optional<double> v) {
  return v && std::isfinite(*v) ? json(*v) : json(nullptr);
}

class EnergyComponent final : public Component {
 public:
  explicit EnergyComponent(RunContext& ctx) : ctx_(ctx), proc_(ctx.config.proc_root) {
    const auto& list = ctx.config.energy_sources;
    for (const std::string& s : list) {
      if (s == "auto") {
        for (const std::string& k : known_sources()) enabled_[k] = true;
      } else if (std::find(known_sources().begin(), known_sources().end(), s) !=
                 known_sources().end()) {
        enabled_[s] = true;
      } else {
        throw Error("energy_sources: unknown source \"" + s +
                    "\"; accepted: auto, or a comma-separated list of rapl, perf, nvml, estimate");
      }
    }
  }

  const char* name() const noexcept override { return "energy"; }

  void start(std::int64_t now_ns) noexcept override {
    try {
      setup(now_ns);
    } catch (...) {
      ctx_.diagnostics.add("energy", diag::kError, "out of memory while setting up energy sources");
    }
  }

  void sample(std::int64_t now_ns) noexcept override {
    try {
      tick(now_ns);
    } catch (...) {
      ctx_.diagnostics.add("energy", diag::kError, "out of memory while sampling energy");
    }
  }

  void stop(std::int64_t now_ns) noexcept override {
    if (stopped_) return;
    sample(now_ns);
    stopped_ = true;
    perf_counters_.clear();
    nvml_.close();
  }

  void step_columns(const std::vector<StepRecord>& records, StepTable& table) noexcept override {
    try {
      compute_step_energy(records, table);
    } catch (...) {
      ctx_.diagnostics.add("energy", diag::kError, "out of memory computing per-step energy");
    }
  }

  void contribute(json& report) noexcept override {
    try {
      fill_report(report);
    } catch (const std::exception& e) {
      ctx_.diagnostics.add("energy", diag::kError,
                           std::string("could not fill the energy section: ") + e.what());
    }
  }

 private:
  // ---- setup ---------------------------------------------------------------------------------
  void setup(std::int64_t now_ns) {
    const Config& cfg = ctx_.config;
    cpu_ = read_cpu_identity(cfg.proc_root);
    if (cpu_.logical_cpus <= 0) cpu_.logical_cpus = proc_.logical_cpus();
    if (proc_.logical_cpus() > 0) cpu_.logical_cpus = proc_.logical_cpus();
    self_pid_ = static_cast<unsigned int>(::getpid());
    if (!proc_.process_ok())
      ctx_.diagnostics.add("energy", diag::kUnavailable,
                           proc_open_text(proc_.self_stat_file()) +
                               ": no process CPU time, so no attribution of machine-level energy "
                               "and no CPU estimate");
    if (!proc_.machine_ok())
      ctx_.diagnostics.add("energy", diag::kUnavailable,
                           proc_open_text(proc_.stat_file()) +
                               ": no machine CPU time, so machine-level energy cannot be "
                               "attributed to this process");

    bool cpu_counters = false;
    if (on("rapl")) {
      rapl_ = discover_rapl(cfg.powercap_root, cfg.rapl_psys);
      for (const SourceStatus& s : rapl_.tried) note_tried(s);
      for (std::size_t i = 0; i < rapl_.domains.size(); ++i) {
        RaplDomain& d = rapl_.domains[i];
        Channel c;
        c.name = d.kind;
        c.source = d.source;
        c.provenance = "measured";
        c.kind = Kind::kRapl;
        c.index = i;
        c.machine_level = true;
        c.counter = CounterTracker(1e-6, d.max_energy_range_uj, kMaxPlausibleWatts);
        c.attribution = "cpu-time-share";
        cpu_counters = cpu_counters || d.kind == "cpu" || d.kind == "platform";
        channels_.push_back(std::move(c));
      }
    } else {
      tried_.push_back({"rapl", diag::kSkipped, "not in energy_sources"});
    }

    if (!on("perf")) {
      tried_.push_back({"perf", diag::kSkipped, "not in energy_sources"});
    } else if (cpu_counters) {
      // Probed in order: the power PMU reads the same RAPL counters, so reading both would only
      // double the sampling cost.
      tried_.push_back({"perf", diag::kSkipped, "RAPL counters are readable through powercap"});
    } else {
      setup_perf();
    }

    if (on("nvml")) {
      setup_nvml();
    } else {
      tried_.push_back({"nvml", diag::kSkipped, "not in energy_sources"});
    }

    if (on("estimate")) {
      tdp_ = choose_cpu_tdp(cpu_, cfg.cpu_tdp_w);
      Channel cpu;
      cpu.name = "cpu";
      cpu.source = "estimate:tdp";
      cpu.provenance = "estimated";
      cpu.kind = Kind::kEstimateCpu;
      cpu.attribution = "process-cpu-time";
      channels_.push_back(std::move(cpu));
      Channel ram;
      ram.name = "dram";
      ram.source = "estimate:rss";
      ram.provenance = "estimated";
      ram.kind = Kind::kEstimateRam;
      ram.attribution = "process-rss";
      channels_.push_back(std::move(ram));
      tried_.push_back({"estimate:tdp", "ok",
                        fmt::format("CPU TDP {:.1f} W ({}) for \"{}\"", tdp_.machine_tdp_w,
                                    tdp_.basis, cpu_.model)});
    } else {
      tried_.push_back({"estimate", diag::kSkipped, "not in energy_sources"});
    }

    stride_ = 1 + channels_.size();
    max_rows_ = std::max<std::uint64_t>(4, ctx_.config.max_retained_samples);
    timeline_.reserve(std::min<std::uint64_t>(max_rows_, 4096) * stride_);
    last_proc_ = proc_.read();
    last_ns_ = now_ns;
    for (Channel& c : channels_) prime(c, now_ns);
    push_row(now_ns);
    started_ = true;
  }

  static std::string proc_open_text(const KeptOpenFile& f) {
    return "cannot read " + f.path() + " (" + errno_text(f.open_errno()) + ")";
  }

  bool on(const char* s) const {
    auto it = enabled_.find(s);
    return it != enabled_.end() && it->second;
  }

  void note_tried(const SourceStatus& s) {
    tried_.push_back(s);
    if (s.status == diag::kPermissionDenied || s.status == diag::kIoError)
      ctx_.diagnostics.add(s.source, s.status, s.reason);
  }

  void setup_perf() {
    PerfPowerPmu pmu = read_perf_power_pmu(ctx_.config.perf_event_root);
    for (const SourceStatus& s : pmu.tried) note_tried(s);
    if (!pmu.present) return;
    for (const PerfEventSpec& e : pmu.events) {
      std::string kind = perf_event_kind(e.name);
      if (kind.empty()) {
        tried_.push_back({"perf:" + e.name, diag::kSkipped, "part of energy-pkg, counted there"});
        continue;
      }
      if (kind == "platform" && !ctx_.config.rapl_psys) {
        tried_.push_back({"perf:" + e.name, diag::kSkipped,
                          "psys overlaps energy-pkg; set TRAINMETER_RAPL_PSYS=1 to use it"});
        continue;
      }
      for (int cpu : pmu.cpus) {
        std::string label =
            "perf:" + e.name + (pmu.cpus.size() > 1 ? ":cpu" + std::to_string(cpu) : "");
        PerfChannelCounter pc;
        const int err = pc.counter.open(pmu.type, e.config, cpu);
        if (err != 0) {
          note_tried(
              {label,
               (err == EACCES || err == EPERM) ? diag::kPermissionDenied : diag::kUnsupported,
               perf_open_error_text(e.name, cpu, err)});
          continue;
        }
        pc.scale = e.scale;
        tried_.push_back({label, "ok", fmt::format("opened, {:g} J per count", e.scale)});
        Channel c;
        c.name = kind;
        c.source = label;
        c.provenance = "measured";
        c.kind = Kind::kPerf;
        c.index = perf_counters_.size();
        c.machine_level = true;
        c.counter = CounterTracker(e.scale, 0, kMaxPlausibleWatts);
        c.attribution = "cpu-time-share";
        perf_counters_.push_back(std::move(pc));
        channels_.push_back(std::move(c));
      }
    }
  }

  void setup_nvml() {
    std::string status, reason;
    if (!nvml_.load(ctx_.config.nvml_library, &status, &reason)) {
      tried_.push_back({"nvml", status, reason});
      // Absent library or GPU is the normal case on CPU machines: said in sources_tried, not
      // counted as a problem.
      if (status != diag::kUnavailable) ctx_.diagnostics.add("nvml", status, reason);
      return;
    }
    std::vector<NvmlGpuInfo> infos = nvml_enumerate(nvml_);
    if (infos.empty()) {
      tried_.push_back({"nvml", diag::kUnavailable, "NVML loaded but reports no GPU"});
      return;
    }
    for (NvmlGpuInfo& info : infos) {
      GpuState g;
      g.info = std::move(info);
      const std::size_t gi = gpus_.size();
      const std::string dev = "gpu" + std::to_string(g.info.index);
      Channel c;
      c.name = "gpu:" + std::to_string(g.info.index);
      c.index = gi;
      c.attribution = "device";
      if (g.info.energy_counter) {
        c.source = "nvml:" + dev + ":energy-counter";
        c.provenance = "measured";
        c.kind = Kind::kNvmlEnergy;
        c.counter = CounterTracker(1e-3, 0, kMaxPlausibleWatts);
        tried_.push_back({c.source, "ok", "total energy counter (mJ) of " + g.info.name});
      } else if (g.info.power) {
        c.source = "nvml:" + dev + ":power";
        c.provenance = "integrated";
        c.kind = Kind::kNvmlPower;
        tried_.push_back({c.source, "ok",
                          "no energy counter (pre-Volta or unsupported); power (mW) integrated "
                          "by the sampler"});
      } else if (g.info.utilisation && on("estimate")) {
        const GpuTdpChoice t = choose_gpu_tdp(g.info.name, g.info.power_limit_w);
        c.source = "estimate:gpu-tdp";
        c.provenance = "estimated";
        c.kind = Kind::kEstimateGpu;
        gpu_tdp_.resize(gpus_.size() + 1);
        gpu_tdp_[gi] = t;
        tried_.push_back({"nvml:" + dev, diag::kUnsupported,
                          "neither energy nor power readable; estimated from TDP x utilisation"});
      } else {
        tried_.push_back(
            {"nvml:" + dev, diag::kUnsupported, "neither energy, power nor utilisation readable"});
        c.source.clear();
      }
      gpus_.push_back(std::move(g));
      gpu_tdp_.resize(gpus_.size());
      if (!c.source.empty()) channels_.push_back(std::move(c));
    }
  }

  // First reading of a channel, so the first interval has a baseline.
  void prime(Channel& c, std::int64_t now_ns) {
    switch (c.kind) {
      case Kind::kRapl:
        c.counter.update(rapl_.domains[c.index].first_uj, now_ns);
        break;
      case Kind::kPerf: {
        std::uint64_t v = 0;
        int err = 0;
        if (perf_counters_[c.index].counter.read(&v, &err)) c.counter.update(v, now_ns);
        break;
      }
      case Kind::kNvmlEnergy:
        c.counter.update(gpus_[c.index].info.first_energy_mj, now_ns);
        break;
      case Kind::kNvmlPower:
        c.has_power = true;
        c.last_power_w = gpus_[c.index].info.first_power_w;
        break;
      case Kind::kEstimateRam:
        if (last_proc_.rss_bytes) {
          c.has_power = true;
          c.last_power_w = estimate_ram_watts(*last_proc_.rss_bytes);
        }
        break;
      default:
        break;
    }
  }

  // ---- sampling ------------------------------------------------------------------------------
  void tick(std::int64_t now_ns) {
    if (!started_ || stopped_ || now_ns <= last_ns_) return;
    const double dt_s = 1e-9 * static_cast<double>(now_ns - last_ns_);
    const ProcCpuSample proc = proc_.read();
    std::optional<double> proc_cpu_s;
    std::optional<std::uint64_t> d_proc, d_busy;
    if (proc.process_ticks && last_proc_.process_ticks &&
        *proc.process_ticks >= *last_proc_.process_ticks) {
      d_proc = *proc.process_ticks - *last_proc_.process_ticks;
      proc_cpu_s = static_cast<double>(*d_proc) / proc_.ticks_per_second();
    }
    if (proc.machine_busy_ticks && last_proc_.machine_busy_ticks &&
        *proc.machine_busy_ticks >= *last_proc_.machine_busy_ticks)
      d_busy = *proc.machine_busy_ticks - *last_proc_.machine_busy_ticks;
    // This process's share of all CPU time spent on the machine in the interval.
    std::optional<double> cpu_share;
    if (d_proc && d_busy) {
      cpu_share = *d_busy == 0
                      ? 0.0
                      : std::min(1.0, static_cast<double>(*d_proc) / static_cast<double>(*d_busy));
    }
    const bool busy = d_busy ? *d_busy > 0 : (d_proc && *d_proc > 0);
    if (proc_cpu_s) {
      total_proc_cpu_s_ += *proc_cpu_s;
      total_wall_s_ += dt_s;
    }
    if (proc.rss_bytes) {
      rss_sum_ += static_cast<double>(*proc.rss_bytes);
      ++rss_samples_;
    }
    sample_gpus();

    for (Channel& c : channels_) {
      if (c.state == State::kDisqualified) continue;
      std::optional<double> machine_j;
      std::optional<double> attributed_j;
      switch (c.kind) {
        case Kind::kRapl:
        case Kind::kPerf:
          machine_j = read_counter(c, now_ns, busy);
          if (machine_j && c.machine_level) {
            if (cpu_share) attributed_j = *machine_j * *cpu_share;
          }
          break;
        case Kind::kNvmlEnergy:
        case Kind::kNvmlPower:
        case Kind::kEstimateGpu: {
          machine_j = read_gpu(c, now_ns, dt_s);
          GpuState& g = gpus_[c.index];
          if (machine_j) {
            // Qualified by a successful reading: a GPU whose every call fails reports nothing,
            // not 0 J.
            c.state = State::kQualified;
            attributed_j = *machine_j * g.share.share;
            ++c.attribution_counts[g.share.attribution];
          }
          break;
        }
        case Kind::kEstimateCpu:
          if (proc_cpu_s) {
            attributed_j = estimate_cpu_joules(tdp_.machine_tdp_w, *proc_cpu_s, cpu_.logical_cpus);
            c.state = State::kQualified;
          }
          break;
        case Kind::kEstimateRam:
          if (proc.rss_bytes) {
            const double p = estimate_ram_watts(*proc.rss_bytes);
            if (c.has_power) {
              attributed_j = 0.5 * (c.last_power_w + p) * dt_s;
              c.state = State::kQualified;
            }
            c.has_power = true;
            c.last_power_w = p;
          }
          break;
      }
      if (machine_j) c.machine_j += *machine_j;
      if (attributed_j) {
        c.attributed_j += *attributed_j;
        c.covered_s += dt_s;
        ++c.samples;
      } else if (c.machine_level && machine_j) {
        // Measured but not attributable (no /proc): keep the machine figure only.
        c.covered_s += dt_s;
        ++c.samples;
      }
    }
    last_proc_ = proc;
    last_ns_ = now_ns;
    ++ticks_;
    push_row(now_ns);
  }

  // Machine joules of a RAPL or perf counter over the interval, or nullopt when the interval is
  // lost (read error, reset, glitch, stuck counter).
  std::optional<double> read_counter(Channel& c, std::int64_t now_ns, bool busy) {
    std::uint64_t raw = 0;
    int err = 0;
    bool ok = false;
    if (c.kind == Kind::kRapl) {
      auto v = rapl_.domains[c.index].energy_uj.read_int64(&err);
      ok = v && *v >= 0;
      if (ok) raw = static_cast<std::uint64_t>(*v);
    } else {
      ok = perf_counters_[c.index].counter.read(&raw, &err);
    }
    if (!ok) {
      ++c.failed_reads;
      ctx_.diagnostics.add(c.source, diag::kIoError,
                           "reading the counter failed: " + errno_text(err == 0 ? EINVAL : err) +
                               "; the interval's energy is lost");
      return std::nullopt;
    }
    const CounterStep step = c.counter.update(raw, now_ns);
    if (step == CounterStep::kFirst) return std::nullopt;
    if (step == CounterStep::kBackwards || step == CounterStep::kImplausible) {
      ++c.discarded;
      ctx_.diagnostics.add(c.source, diag::kInvalidReading,
                           step == CounterStep::kBackwards
                               ? "counter went backwards with no known wrap range (reset?); "
                                 "interval discarded"
                               : fmt::format("counter jumped by {} raw units, above {} W over the "
                                             "interval; interval discarded",
                                             raw, kMaxPlausibleWatts));
      return std::nullopt;
    }
    if (c.counter.delta() == 0 && busy) {
      if (c.state == State::kPending) {
        // Virtual machines expose the PMU but the counter never moves: that is "unavailable",
        // never 0 J measured.
        c.state = State::kDisqualified;
        c.machine_j = c.attributed_j = c.covered_s = 0;
        c.samples = 0;
        std::string why = "counter did not move over an interval in which the CPUs were busy";
        ctx_.diagnostics.add(c.source, diag::kReadsZero,
                             why + "; treated as unavailable, the next source is used");
        tried_.push_back({c.source, diag::kReadsZero, why});
        return std::nullopt;
      }
      ++c.discarded;
      ctx_.diagnostics.add(c.source, diag::kReadsZero,
                           "counter stuck over a busy interval; interval discarded");
      return std::nullopt;
    }
    if (c.counter.delta() > 0) c.state = State::kQualified;
    return c.counter.joules();
  }

  void sample_gpus() {
    for (GpuState& g : gpus_) {
      if (!nvml_.loaded()) break;
      if (g.info.memory_info && nvml_.nvmlDeviceGetMemoryInfo != nullptr) {
        nvml::Memory m{};
        if (nvml_.nvmlDeviceGetMemoryInfo(g.info.device, &m) == nvml::kSuccess) {
          const long long used = static_cast<long long>(m.used);
          if (!g.used_peak_bytes || used > *g.used_peak_bytes) g.used_peak_bytes = used;
        }
      }
      g.has_util = false;
      if (g.info.utilisation && nvml_.nvmlDeviceGetUtilizationRates != nullptr) {
        nvml::Utilization u{};
        const nvml::Return r = nvml_.nvmlDeviceGetUtilizationRates(g.info.device, &u);
        if (r == nvml::kSuccess) {
          g.has_util = true;
          g.last_util = u.gpu;
          g.utilisation_sum += u.gpu;
          ++g.utilisation_samples;
        } else {
          ctx_.diagnostics.add("nvml:gpu" + std::to_string(g.info.index), diag::kIoError,
                               "nvmlDeviceGetUtilizationRates failed: " + nvml_.error_text(r));
        }
      }
      g.share = g.info.processes ? nvml_process_share(nvml_, g.info.device, self_pid_) : GpuShare{};
    }
  }

  std::optional<double> read_gpu(Channel& c, std::int64_t now_ns, double dt_s) {
    GpuState& g = gpus_[c.index];
    if (!nvml_.loaded()) return std::nullopt;
    if (c.kind == Kind::kNvmlEnergy) {
      unsigned long long mj = 0;
      const nvml::Return r = nvml_.nvmlDeviceGetTotalEnergyConsumption(g.info.device, &mj);
      if (r != nvml::kSuccess) {
        ++c.failed_reads;
        ctx_.diagnostics.add(c.source, diag::kIoError,
                             "nvmlDeviceGetTotalEnergyConsumption failed: " + nvml_.error_text(r) +
                                 "; energy measured so far is kept");
        return std::nullopt;
      }
      const CounterStep step = c.counter.update(mj, now_ns);
      if (step == CounterStep::kBackwards || step == CounterStep::kImplausible) {
        ++c.discarded;
        ctx_.diagnostics.add(c.source, diag::kInvalidReading,
                             "energy counter went backwards or jumped implausibly (driver "
                             "reload?); interval discarded");
        return std::nullopt;
      }
      if (step == CounterStep::kFirst) return std::nullopt;
      // NVML refreshes the counter about every 100 ms: an interval may see 0 and the next twice
      // as much. Per-step figures are apportioned over time, so that evens out.
      return c.counter.joules();
    }
    double p = 0;
    if (c.kind == Kind::kNvmlPower) {
      unsigned int mw = 0;
      const nvml::Return r = nvml_.nvmlDeviceGetPowerUsage(g.info.device, &mw);
      if (r != nvml::kSuccess) {
        ++c.failed_reads;
        c.has_power = false;  // never integrate across a gap
        ctx_.diagnostics.add(c.source, diag::kIoError,
                             "nvmlDeviceGetPowerUsage failed: " + nvml_.error_text(r) +
                                 "; energy measured so far is kept");
        return std::nullopt;
      }
      p = mw / 1000.0;
    } else {  // estimate
      if (!g.has_util) {
        c.has_power = false;
        return std::nullopt;
      }
      p = gpu_tdp_[c.index].tdp_w * g.last_util / 100.0;
    }
    std::optional<double> j;
    if (c.has_power) j = 0.5 * (c.last_power_w + p) * dt_s;  // trapezoid
    c.has_power = true;
    c.last_power_w = p;
    return j;
  }

  // ---- timeline ------------------------------------------------------------------------------
  // Rows of [t - run start (ns), cumulative attributed joules per channel]. Cumulative values
  // make decimation lossless for totals: dropping a row only coarsens interpolation.
  void push_row(std::int64_t now_ns) {
    if (rows_ >= max_rows_) {
      std::size_t kept = 0;
      for (std::size_t r = 0; r < rows_; r += 2, ++kept)
        std::copy_n(&timeline_[r * stride_], stride_, &timeline_[kept * stride_]);
      rows_ = kept;
      timeline_.resize(rows_ * stride_);
      ++decimations_;
    }
    timeline_.push_back(static_cast<double>(now_ns - ctx_.start_ns));
    for (const Channel& c : channels_) timeline_.push_back(c.attributed_j);
    ++rows_;
    publish(now_ns);
  }

  // The live figures (stream, progress line, metrics endpoint) after each timeline row.
  void publish(std::int64_t now_ns) {
    const std::vector<std::size_t> selected = select_channels();
    const double dt_s = last_publish_ns_ >= 0 ? 1e-9 * double(now_ns - last_publish_ns_) : 0;
    last_publish_ns_ = now_ns;
    published_j_.resize(channels_.size(), kLiveUnknown);
    ctx_.live.update([&](LiveSnapshot& s) {
      s.energy_t_ns = now_ns;
      ++s.energy_samples;
      s.channels.resize(channels_.size());
      double total = 0, power = 0;
      bool power_known = !selected.empty();
      bool estimated = false;
      for (std::size_t i = 0; i < channels_.size(); ++i) {
        const Channel& c = channels_[i];
        LiveEnergyChannel& l = s.channels[i];
        l.component = c.name;
        l.source = c.source;
        l.provenance = c.provenance;
        l.selected = std::find(selected.begin(), selected.end(), i) != selected.end();
        l.energy_j = c.attributed_j;
        l.attribution = c.attribution;
        l.machine_energy_j = c.kind != Kind::kEstimateCpu && c.kind != Kind::kEstimateRam &&
                                     c.kind != Kind::kEstimateGpu
                                 ? c.machine_j
                                 : kLiveUnknown;  // estimates have no machine reading
        l.power_w = dt_s > 0 && std::isfinite(published_j_[i])
                        ? (c.attributed_j - published_j_[i]) / dt_s
                        : kLiveUnknown;
        published_j_[i] = c.attributed_j;
        if (!l.selected) continue;
        total += c.attributed_j;
        if (std::isfinite(l.power_w))
          power += l.power_w;
        else
          power_known = false;
        estimated = estimated || c.provenance == "estimated";
      }
      s.energy_total_j = selected.empty() ? kLiveUnknown : total;
      s.power_w = power_known ? power : kLiveUnknown;
      s.energy_estimated = estimated;
    });
  }

  double row_t(std::size_t r) const { return timeline_[r * stride_]; }

  // Cumulative attributed joules of the selected channels at time t (relative ns), constant
  // power within each sample interval.
  double cumulative_at(double t, const std::vector<std::size_t>& cols) const {
    auto value = [&](std::size_t r) {
      double s = 0;
      for (std::size_t c : cols) s += timeline_[r * stride_ + 1 + c];
      return s;
    };
    if (t <= row_t(0)) return value(0);
    if (t >= row_t(rows_ - 1)) return value(rows_ - 1);
    std::size_t lo = 0, hi = rows_ - 1;
    while (hi - lo > 1) {
      const std::size_t mid = (lo + hi) / 2;
      (row_t(mid) <= t ? lo : hi) = mid;
    }
    const double t0 = row_t(lo), t1 = row_t(hi);
    const double f = t1 > t0 ? (t - t0) / (t1 - t0) : 0.0;
    return value(lo) + f * (value(hi) - value(lo));
  }

  double spacing_at(double t) const {
    if (rows_ < 2) return 0;
    std::size_t r = 0;
    while (r + 2 < rows_ && row_t(r + 1) <= t) ++r;
    return row_t(r + 1) - row_t(r);
  }

  // ---- report --------------------------------------------------------------------------------
  // Per component name, the channels that count: the most preferred kind with qualified data.
  std::vector<std::size_t> select_channels() const {
    std::map<std::string, int> best;
    for (const Channel& c : channels_) {
      if (c.state != State::kQualified) continue;
      auto it = best.find(c.name);
      if (it == best.end() || preference(c.kind) < it->second) best[c.name] = preference(c.kind);
    }
    // psys covers the package and DRAM: with it, they would be counted twice.
    const bool platform = best.count("platform") > 0;
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      const Channel& c = channels_[i];
      if (c.state != State::kQualified || preference(c.kind) != best[c.name]) continue;
      if (platform && (c.name == "cpu" || c.name == "dram")) continue;
      out.push_back(i);
    }
    return out;
  }

  json component_json(const Channel& c) const {
    json j;
    j["name"] = c.name;
    j["source"] = c.source;
    j["provenance"] = c.provenance;
    const bool has_machine = c.kind != Kind::kEstimateCpu && c.kind != Kind::kEstimateRam &&
                             c.kind != Kind::kEstimateGpu;
    j["machine_energy_j"] = has_machine ? json(c.machine_j) : json(nullptr);
    const bool attributed =
        !(c.machine_level && !proc_.machine_ok()) && !(c.machine_level && !proc_.process_ok());
    j["energy_j"] = attributed ? json(c.attributed_j) : json(nullptr);
    j["attributed_share"] =
        (has_machine && attributed && c.machine_j > 0)
            ? json(c.attributed_j / c.machine_j)
            : (has_machine && attributed && c.kind != Kind::kRapl && c.kind != Kind::kPerf
                   ? json(1.0)
                   : json(nullptr));
    j["average_power_w"] =
        attributed && c.covered_s > 0 ? json(c.attributed_j / c.covered_s) : json(nullptr);
    j["machine_average_power_w"] =
        has_machine && c.covered_s > 0 ? json(c.machine_j / c.covered_s) : json(nullptr);
    std::string attribution = c.attribution;
    if (!c.attribution_counts.empty()) {
      // GPUs: the label that held for most intervals.
      auto it = std::max_element(c.attribution_counts.begin(), c.attribution_counts.end(),
                                 [](auto& a, auto& b) { return a.second < b.second; });
      attribution = it->first;
    }
    j["attribution"] = attribution;
    j["samples"] = c.samples;
    j["discarded_intervals"] = c.discarded;
    j["failed_reads"] = c.failed_reads;
    json notes = json::array();
    if (c.kind == Kind::kRapl || c.kind == Kind::kPerf) {
      if (c.counter.wraps() > 0)
        notes.push_back(fmt::format("counter wrapped {} time(s); corrected", c.counter.wraps()));
      notes.push_back(
          "machine-level counter: energy_j = machine energy x this process's share of the "
          "machine's busy CPU time (/proc/self/stat over /proc/stat), per interval");
    }
    if (c.kind == Kind::kNvmlEnergy)
      notes.push_back("NVML total energy counter (mJ since driver load), differenced per sample");
    if (c.kind == Kind::kNvmlPower)
      notes.push_back(
          "NVML power (mW) sampled every interval and integrated with the trapezoid "
          "rule");
    if (c.kind == Kind::kEstimateCpu) {
      const double util = total_wall_s_ > 0 && cpu_.logical_cpus > 0
                              ? total_proc_cpu_s_ / (total_wall_s_ * cpu_.logical_cpus)
                              : 0.0;
      j["inputs"] = {{"cpu_model", cpu_.model},
                     {"sockets", cpu_.sockets},
                     {"logical_cpus", cpu_.logical_cpus},
                     {"tdp_w", tdp_.machine_tdp_w},
                     {"tdp_basis", tdp_.basis},
                     {"tdp_source", tdp_.source},
                     {"tdp_table_model",
                      tdp_.matched_model.empty() ? json(nullptr) : json(tdp_.matched_model)},
                     {"process_cpu_s", total_proc_cpu_s_},
                     {"wall_s", total_wall_s_},
                     {"mean_utilisation", util}};
      j["constants"] = {{"default_w_per_thread", kDefaultCpuWattsPerThread},
                        {"default_w_per_thread_source", "CodeCarbon v3.3.0 core/cpu.py"}};
      notes.push_back(
          "P = TDP x process CPU time / (wall time x logical CPUs), per interval "
          "(CodeCarbon's process mode)");
    }
    if (c.kind == Kind::kEstimateRam) {
      j["inputs"] = {
          {"mean_rss_bytes", rss_samples_ > 0 ? json(rss_sum_ / rss_samples_) : json(nullptr)},
          {"wall_s", c.covered_s}};
      j["constants"] = {
          {"w_per_gib", kRamWattsPerGiB},
          {"w_per_gib_source", "3 W per 8 GB, CodeCarbon v2 RAM model (citing Crucial); Eco2AI"}};
      notes.push_back("P = w_per_gib x process RSS (GiB), trapezoid between samples");
    }
    if (c.kind == Kind::kEstimateGpu) {
      const GpuState& g = gpus_[c.index];
      j["inputs"] = {{"gpu_name", g.info.name},
                     {"tdp_w", gpu_tdp_[c.index].tdp_w},
                     {"tdp_basis", gpu_tdp_[c.index].basis},
                     {"tdp_source", gpu_tdp_[c.index].source},
                     {"mean_utilisation_percent",
                      g.utilisation_samples > 0 ? json(g.utilisation_sum / g.utilisation_samples)
                                                : json(nullptr)}};
      j["constants"] = {{"default_gpu_w", kDefaultGpuWatts},
                        {"default_gpu_w_source", "Green Algorithms TDP_gpu.csv v3.0, \"Any\""}};
      notes.push_back("P = TDP x NVML utilisation.gpu / 100, trapezoid between samples");
    }
    j["notes"] = notes;
    return j;
  }

  void fill_report(json& report) {
    json energy;
    const std::vector<std::size_t> selected = select_channels();
    json components = json::array();
    std::optional<double> total;
    for (std::size_t i : selected) {
      json cj = component_json(channels_[i]);
      components.push_back(cj);
      if (cj["energy_j"].is_number()) total = total.value_or(0.0) + cj["energy_j"].get<double>();
    }
    // Channels measured but not used, so a reader sees what else was available.
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      const Channel& c = channels_[i];
      if (std::find(selected.begin(), selected.end(), i) != selected.end()) continue;
      if (c.state == State::kDisqualified) continue;
      if (c.kind == Kind::kEstimateCpu || c.kind == Kind::kEstimateRam) continue;
      tried_.push_back({c.source, diag::kSkipped,
                        c.state == State::kPending
                            ? "never gave a usable reading"
                            : "a preferred source measured the same component"});
    }
    energy["components"] = components;
    energy["total_j"] = nullable(total);
    energy["total_kwh"] = total ? json(*total / 3.6e6) : json(nullptr);
    energy["sample_interval_ms"] = ctx_.config.sample_interval_ms;
    energy["samples"] = ticks_;
    json tried = json::array();
    for (const SourceStatus& s : tried_)
      tried.push_back({{"source", s.source}, {"status", s.status}, {"reason", s.reason}});
    energy["sources_tried"] = tried;
    energy["timeline"] = {
        {"points", rows_}, {"decimations", decimations_}, {"max_points", max_rows_}};
    energy["step_attribution"] =
        "energy_j of a step = the attributed energy of the selected components between its start "
        "and end, with power taken as constant within each sample interval (linear interpolation "
        "of cumulative energy). Steps shorter than the sample interval get a time-proportional "
        "share of their interval's energy and are flagged energy_apportioned. Phase energy_j sums "
        "the phase's steps, warm-up included.";
    report["energy"] = energy;

    fill_phase_energy(report);
    fill_gpus(report);
  }

  // energy_j per retained step: the selected channels' attributed energy between its start and
  // end (energy_apportioned when the step is shorter than its sample interval), and the sums per
  // phase for phases.*.energy_j.
  void compute_step_energy(const std::vector<StepRecord>& records, StepTable& table) {
    const std::vector<std::size_t> selected = select_channels();
    std::vector<double>& energy = table.numbers("energy_j", StepTable::Unset::kNull);
    std::vector<std::int8_t>& apportioned =
        table.bools("energy_apportioned", StepTable::Unset::kOmit);
    const bool have = !selected.empty() && rows_ >= 2;
    phase_j_.clear();
    for (std::size_t i = 0; i < records.size(); ++i) {
      const StepRecord& r = records[i];
      const double t0 = double(r.start_ns - ctx_.start_ns);
      const double w = double(r.wall_ns);
      PhaseEnergy& phase = phase_j_[r.phase];
      phase.seen = true;
      if (!have || t0 + w < row_t(0) || t0 > row_t(rows_ - 1)) continue;
      const double e = cumulative_at(t0 + w, selected) - cumulative_at(t0, selected);
      energy[i] = e;
      if (w < spacing_at(t0)) apportioned[i] = 1;
      phase.joules += e;
    }
    // Phase totals are exact only when every step was retained in the report.
    phases_complete_ = have && records.size() == ctx_.steps_collected();
  }

  void fill_phase_energy(json& report) const {
    if (!report.contains("phases") || !report["phases"].is_object()) return;
    std::map<std::string, const PhaseEnergy*> by_name;
    for (const auto& [id, e] : phase_j_) by_name.emplace(ctx_.phase_name(id), &e);
    for (auto& [name, phase] : report["phases"].items()) {
      if (!phase.is_object()) continue;
      const auto it = by_name.find(name);
      phase["energy_j"] = (phases_complete_ && it != by_name.end() && it->second->seen)
                              ? json(it->second->joules)
                              : json(nullptr);
    }
  }

  void fill_gpus(json& report) {
    if (gpus_.empty()) return;
    json& host = report["host"];
    if (!host.is_object()) host = json::object();
    json& list = host["gpus"];
    if (!list.is_array()) list = json::array();
    json peaks = json::object();
    for (const GpuState& g : gpus_) {
      json* entry = nullptr;
      for (json& e : list)
        if (e.is_object() && e.value("index", -1) == static_cast<int>(g.info.index)) entry = &e;
      if (entry == nullptr) {
        list.push_back(json::object());
        entry = &list.back();
      }
      (*entry)["index"] = g.info.index;
      (*entry)["name"] = g.info.name.empty() ? json(nullptr) : json(g.info.name);
      (*entry)["uuid"] = g.info.uuid.empty() ? json(nullptr) : json(g.info.uuid);
      (*entry)["power_limit_w"] =
          g.info.power_limit_w >= 0 ? json(g.info.power_limit_w) : json(nullptr);
      (*entry)["memory_total_bytes"] =
          g.info.memory_total_bytes >= 0 ? json(g.info.memory_total_bytes) : json(nullptr);
      peaks["gpu:" + std::to_string(g.info.index)] =
          g.used_peak_bytes ? json(*g.used_peak_bytes) : json(nullptr);
    }
    json& memory = report["memory"];
    if (!memory.is_object()) memory = json::object();
    memory["gpu_device_used_peak_bytes"] = peaks;
  }

  RunContext& ctx_;
  std::map<std::string, bool> enabled_;
  ProcCpuReader proc_;
  ProcCpuSample last_proc_;
  CpuIdentity cpu_;
  CpuTdpChoice tdp_;
  unsigned int self_pid_ = 0;
  RaplDiscovery rapl_;
  std::vector<PerfChannelCounter> perf_counters_;
  NvmlLibrary nvml_;
  std::vector<GpuState> gpus_;
  std::vector<GpuTdpChoice> gpu_tdp_;
  std::vector<Channel> channels_;
  std::vector<SourceStatus> tried_;
  std::vector<double> timeline_;
  struct PhaseEnergy {
    double joules = 0;
    bool seen = false;
  };
  std::map<std::uint16_t, PhaseEnergy> phase_j_;  // by phase id, from step_columns()
  bool phases_complete_ = false;
  std::int64_t last_publish_ns_ = -1;
  std::vector<double> published_j_;  // attributed_j per channel at the last publish
  std::size_t stride_ = 1, rows_ = 0;
  std::uint64_t max_rows_ = 0, decimations_ = 0, ticks_ = 0, rss_samples_ = 0;
  double rss_sum_ = 0, total_proc_cpu_s_ = 0, total_wall_s_ = 0;
  std::int64_t last_ns_ = 0;
  bool started_ = false, stopped_ = false;
};

}  // namespace

std::unique_ptr<Component> make_energy_component(RunContext& ctx) {
  return std::make_unique<EnergyComponent>(ctx);
}

}  // namespace trainmeter::detail
