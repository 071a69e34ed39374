#include "energy/energy.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "energy/proc_cpu.hpp"
#include "energy/source.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::detail {
namespace {

using nlohmann::json;

// The sampler: owns the energy sources of energy_source_registry() that energy_sources enables,
// in registry order, and their channels; attributes machine-level energy to this process, keeps
// the cumulative timeline and fills the report. It knows no source by name.
class EnergyComponent final : public Component {
 public:
  explicit EnergyComponent(RunContext& ctx) : ctx_(ctx), proc_(ctx.config.proc_root) {
    const std::vector<std::string> known = energy_source_names();
    for (const std::string& s : ctx.config.energy_sources) {
      if (s == "auto") {
        for (const std::string& k : known) enabled_[k] = true;
      } else if (std::find(known.begin(), known.end(), s) != known.end()) {
        enabled_[s] = true;
      } else {
        std::string names;
        for (const std::string& k : known) names += (names.empty() ? "" : ", ") + k;
        throw Error("energy_sources: unknown source \"" + s +
                    "\"; accepted: auto, or a comma-separated list of " + names);
      }
    }
  }

  const char* name() const noexcept override { return rk::energy; }

  void start(std::int64_t now_ns) noexcept override {
    try {
      setup(now_ns);
    } catch (...) {
      ctx_.diagnostics.add(rk::energy, diag::kError,
                           "out of memory while setting up energy sources");
    }
  }

  void sample(std::int64_t now_ns) noexcept override {
    try {
      tick(now_ns);
    } catch (...) {
      ctx_.diagnostics.add(rk::energy, diag::kError, "out of memory while sampling energy");
    }
  }

  void stop(std::int64_t now_ns) noexcept override {
    if (stopped_) return;
    sample(now_ns);
    stopped_ = true;
    for (auto& s : sources_) s->close();
  }

  void step_columns(const std::vector<StepRecord>& records, StepTable& table) noexcept override {
    try {
      compute_step_energy(records, table);
    } catch (...) {
      ctx_.diagnostics.add(rk::energy, diag::kError, "out of memory computing per-step energy");
    }
  }

  void contribute(json& report) noexcept override {
    try {
      fill_report(report);
    } catch (const std::exception& e) {
      ctx_.diagnostics.add(rk::energy, diag::kError,
                           std::string("could not fill the energy section: ") + e.what());
    }
  }

 private:
  // ---- setup ---------------------------------------------------------------------------------
  void setup(std::int64_t now_ns) {
    if (!proc_.process_ok())
      ctx_.diagnostics.add(rk::energy, diag::kUnavailable,
                           proc_open_text(proc_.self_stat_file()) +
                               ": no process CPU time, so no attribution of machine-level energy "
                               "and no CPU estimate");
    if (!proc_.machine_ok())
      ctx_.diagnostics.add(rk::energy, diag::kUnavailable,
                           proc_open_text(proc_.stat_file()) +
                               ": no machine CPU time, so machine-level energy cannot be "
                               "attributed to this process");

    env_.estimate_enabled = on("estimate");
    env_.logical_cpus = proc_.logical_cpus();
    for (const EnergySourceRegistration& reg : energy_source_registry()) {
      if (!on(reg.name)) {
        tried_.push_back({reg.name, diag::kSkipped, "not in energy_sources"});
        continue;
      }
      std::vector<GpuFacts> gpus_so_far;
      for (const auto& s : sources_) s->gpus(gpus_so_far);
      const std::size_t first = channels_.size();
      sources_.push_back(reg.make(env_));
      sources_.back()->probe(channels_, static_cast<unsigned int>(gpus_so_far.size()));
      for (std::size_t i = first; i < channels_.size(); ++i)
        channels_[i].source_index = sources_.size() - 1;
    }

    stride_ = 1 + channels_.size();
    max_rows_ = std::max<std::uint64_t>(4, ctx_.config.max_retained_samples);
    timeline_.reserve(std::min<std::uint64_t>(max_rows_, 4096) * stride_);
    last_proc_ = proc_.read();
    last_ns_ = now_ns;
    Interval first;
    first.now_ns = now_ns;
    first.rss_bytes = last_proc_.rss_bytes;
    for (Channel& c : channels_) sources_[c.source_index]->prime(c, first);
    push_row(now_ns);
    started_ = true;
  }

  static std::string proc_open_text(const KeptOpenFile& f) {
    return "cannot read " + f.path() + " (" + errno_text(f.open_errno()) + ")";
  }

  bool on(const std::string& s) const {
    auto it = enabled_.find(s);
    return it != enabled_.end() && it->second;
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
    Interval in;
    in.now_ns = now_ns;
    in.dt_s = dt_s;
    in.busy = d_busy ? *d_busy > 0 : (d_proc && *d_proc > 0);
    in.process_cpu_s = proc_cpu_s;
    in.rss_bytes = proc.rss_bytes;
    for (auto& s : sources_) s->begin_interval(in);

    for (Channel& c : channels_) {
      if (c.state == ChannelState::kDisqualified) continue;
      const Reading r = sources_[c.source_index]->sample(c, in);
      const std::optional<double> machine_j = r.machine_j;
      std::optional<double> attributed_j = r.attributed_j;
      if (machine_j && c.machine_level && cpu_share) attributed_j = *machine_j * *cpu_share;
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
        l.machine_energy_j =
            c.has_machine ? c.machine_j : kLiveUnknown;  // estimates have no machine reading
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
      if (c.state != ChannelState::kQualified) continue;
      auto it = best.find(c.name);
      if (it == best.end() || c.preference < it->second) best[c.name] = c.preference;
    }
    // psys covers the package and DRAM: with it, they would be counted twice.
    const bool platform = best.count("platform") > 0;
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      const Channel& c = channels_[i];
      if (c.state != ChannelState::kQualified || c.preference != best[c.name]) continue;
      if (platform && (c.name == "cpu" || c.name == "dram")) continue;
      out.push_back(i);
    }
    return out;
  }

  json component_json(const Channel& c) const {
    json j;
    j[rk::name] = c.name;
    j[rk::source] = c.source;
    j[rk::provenance] = c.provenance;
    const bool has_machine = c.has_machine;
    j[rk::machine_energy_j] = has_machine ? json(c.machine_j) : json(nullptr);
    const bool attributed =
        !(c.machine_level && !proc_.machine_ok()) && !(c.machine_level && !proc_.process_ok());
    j[rk::energy_j] = attributed ? json(c.attributed_j) : json(nullptr);
    j[rk::attributed_share] =
        (has_machine && attributed && c.machine_j > 0)
            ? json(c.attributed_j / c.machine_j)
            : (has_machine && attributed && !c.machine_level ? json(1.0) : json(nullptr));
    j[rk::average_power_w] =
        attributed && c.covered_s > 0 ? json(c.attributed_j / c.covered_s) : json(nullptr);
    j[rk::machine_average_power_w] =
        has_machine && c.covered_s > 0 ? json(c.machine_j / c.covered_s) : json(nullptr);
    std::string attribution = c.attribution;
    if (!c.attribution_counts.empty()) {
      // GPUs: the label that held for most intervals.
      auto it = std::max_element(c.attribution_counts.begin(), c.attribution_counts.end(),
                                 [](auto& a, auto& b) { return a.second < b.second; });
      attribution = it->first;
    }
    j[rk::attribution] = attribution;
    j[rk::samples] = c.samples;
    j[rk::discarded_intervals] = c.discarded;
    j[rk::failed_reads] = c.failed_reads;
    json notes = json::array();
    sources_[c.source_index]->describe(c, j, notes);
    j[rk::notes] = notes;
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
      if (cj[rk::energy_j].is_number())
        total = total.value_or(0.0) + cj[rk::energy_j].get<double>();
    }
    // Channels measured but not used, so a reader sees what else was available.
    for (std::size_t i = 0; i < channels_.size(); ++i) {
      const Channel& c = channels_[i];
      if (std::find(selected.begin(), selected.end(), i) != selected.end()) continue;
      if (c.state == ChannelState::kDisqualified) continue;
      if (!c.list_unused) continue;
      tried_.push_back({c.source, diag::kSkipped,
                        c.state == ChannelState::kPending
                            ? "never gave a usable reading"
                            : "a preferred source measured the same component"});
    }
    energy[rk::components] = components;
    energy[rk::total_j] = json_or_null(total);
    energy[rk::total_kwh] = total ? json(*total / 3.6e6) : json(nullptr);
    energy[rk::sample_interval_ms] = ctx_.config.sample_interval_ms;
    energy[rk::samples] = ticks_;
    json tried = json::array();
    for (const SourceStatus& s : tried_)
      tried.push_back({{rk::source, s.source}, {rk::status, s.status}, {rk::reason, s.reason}});
    energy[rk::sources_tried] = tried;
    // The rows themselves (cumulative attributed joules of each selected component), so a
    // reader can draw energy and power over time (the HTML page does).
    json columns = json::array({"t_offset_ns"});
    for (std::size_t i : selected) columns.push_back(channels_[i].name);
    json rows = json::array();
    for (std::size_t r = 0; r < rows_; ++r) {
      json row = json::array({static_cast<std::int64_t>(row_t(r))});
      for (std::size_t i : selected) row.push_back(timeline_[r * stride_ + 1 + i]);
      rows.push_back(std::move(row));
    }
    energy[rk::timeline] = {{rk::points, rows_},         {rk::decimations, decimations_},
                            {rk::max_points, max_rows_}, {rk::columns, std::move(columns)},
                            {rk::rows, std::move(rows)}};
    energy[rk::step_attribution] =
        "energy_j of a step = the attributed energy of the selected components between its start "
        "and end, with power taken as constant within each sample interval (linear interpolation "
        "of cumulative energy). Steps shorter than the sample interval get a time-proportional "
        "share of their interval's energy and are flagged energy_apportioned. Phase energy_j sums "
        "the phase's steps, warm-up included.";
    report[rk::energy] = energy;

    fill_phase_energy(report);
    fill_gpus(report);
  }

  // energy_j per retained step: the selected channels' attributed energy between its start and
  // end (energy_apportioned when the step is shorter than its sample interval), and the sums per
  // phase for phases.*.energy_j.
  void compute_step_energy(const std::vector<StepRecord>& records, StepTable& table) {
    const std::vector<std::size_t> selected = select_channels();
    std::vector<double>& energy = table.numbers(rk::energy_j, StepTable::Unset::kNull);
    std::vector<std::int8_t>& apportioned =
        table.bools(rk::energy_apportioned, StepTable::Unset::kOmit);
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
    if (!report.contains(rk::phases) || !report[rk::phases].is_object()) return;
    std::map<std::string, const PhaseEnergy*> by_name;
    for (const auto& [id, e] : phase_j_) by_name.emplace(ctx_.phase_name(id), &e);
    for (auto& [name, phase] : report[rk::phases].items()) {
      if (!phase.is_object()) continue;
      const auto it = by_name.find(name);
      phase[rk::energy_j] = (phases_complete_ && it != by_name.end() && it->second->seen)
                                ? json(it->second->joules)
                                : json(nullptr);
    }
  }

  void fill_gpus(json& report) {
    std::vector<GpuFacts> gpus;
    for (const auto& s : sources_) s->gpus(gpus);
    if (gpus.empty()) return;
    json& host = report[rk::host];
    if (!host.is_object()) host = json::object();
    json& list = host[rk::gpus];
    if (!list.is_array()) list = json::array();
    json peaks = json::object();
    for (const GpuFacts& g : gpus) {
      json* entry = nullptr;
      for (json& e : list)
        if (e.is_object() && e.value(rk::index, -1) == static_cast<int>(g.index)) entry = &e;
      if (entry == nullptr) {
        list.push_back(json::object());
        entry = &list.back();
      }
      (*entry)[rk::index] = g.index;
      (*entry)[rk::name] = g.name.empty() ? json(nullptr) : json(g.name);
      (*entry)["uuid"] = g.uuid.empty() ? json(nullptr) : json(g.uuid);
      (*entry)["power_limit_w"] = g.power_limit_w >= 0 ? json(g.power_limit_w) : json(nullptr);
      (*entry)["memory_total_bytes"] =
          g.memory_total_bytes >= 0 ? json(g.memory_total_bytes) : json(nullptr);
      peaks["gpu:" + std::to_string(g.index)] =
          g.used_peak_bytes ? json(*g.used_peak_bytes) : json(nullptr);
    }
    json& memory = report[rk::memory];
    if (!memory.is_object()) memory = json::object();
    memory["gpu_device_used_peak_bytes"] = peaks;
  }

  RunContext& ctx_;
  std::map<std::string, bool> enabled_;
  ProcCpuReader proc_;
  ProcCpuSample last_proc_;
  std::vector<SourceStatus> tried_;
  SourceEnv env_{ctx_.config, ctx_.diagnostics, tried_};
  std::vector<std::unique_ptr<EnergySource>> sources_;  // registry order
  std::vector<Channel> channels_;
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
  std::uint64_t max_rows_ = 0, decimations_ = 0, ticks_ = 0;
  std::int64_t last_ns_ = 0;
  bool started_ = false, stopped_ = false;
};

}  // namespace

std::unique_ptr<Component> make_energy_component(RunContext& ctx) {
  return std::make_unique<EnergyComponent>(ctx);
}

}  // namespace trainmeter::detail
