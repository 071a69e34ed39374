// Prometheus text exposition (format 0.0.4): the textfile export written at finish (for
// node_exporter's textfile collector) and the live endpoint's text rendered at each sample. Base
// units (seconds, joules, bytes, grams) as Prometheus' naming guide asks; figures that were not
// measured are left out rather than written as 0.
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "export/access.hpp"
#include "export/exports.hpp"
#include "export/metrics_server.hpp"
#include "report/summary.hpp"

namespace trainmeter::detail {

namespace {

// Label values escape backslash, double quote and newline (exposition format spec).
std::string label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string value_text(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", x);
}

class Writer {
 public:
  explicit Writer(std::string base_labels) : base_(std::move(base_labels)) {}

  void family(const char* name, const char* type, const char* help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  void sample(const std::string& name, const std::string& extra_labels, double value) {
    out_ += name;
    out_ += '{';
    out_ += base_;
    if (!extra_labels.empty()) out_ += "," + extra_labels;
    out_ += "} ";
    out_ += value_text(value);
    out_ += '\n';
  }
  // A family with a single sample, written only when the value is known.
  void single(const char* name, const char* type, const char* help, std::optional<double> v) {
    if (!v || std::isnan(*v)) return;
    family(name, type, help);
    sample(name, "", *v);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string base_;
  std::string out_;
};

}  // namespace

std::string prometheus_text(const nlohmann::json& report) {
  const std::string base = fmt::format(
      "run=\"{}\",run_id=\"{}\",rank=\"{}\"",
      label_value(string_at(report, rk::pointer(rk::run, rk::name))),
      label_value(string_at(report, rk::pointer(rk::run, rk::id))),
      static_cast<long long>(number_at(report, rk::pointer(rk::run, rk::rank)).value_or(0)));
  Writer w(base);

  // Step time per phase: a summary with the report's quantiles; _sum and _count cover the
  // non-warm-up steps the quantiles describe.
  const nlohmann::json* phases = json_at(report, rk::pointer(rk::phases));
  bool any_summary = false;
  if (phases != nullptr && phases->is_object()) {
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      const nlohmann::json& p = it.value();
      if (json_at(p, rk::pointer(rk::step_time_ns)) == nullptr) continue;
      if (!any_summary)
        w.family("trainmeter_step_time_seconds", "summary",
                 "Wall time of a training step, warm-up steps excluded.");
      any_summary = true;
      const std::string phase = "phase=\"" + label_value(it.key()) + "\"";
      static const std::pair<const char*, std::string> kQ[] = {
          {"0.5", rk::pointer(rk::step_time_ns, rk::p50)},
          {"0.9", rk::pointer(rk::step_time_ns, rk::p90)},
          {"0.95", rk::pointer(rk::step_time_ns, rk::p95)},
          {"0.99", rk::pointer(rk::step_time_ns, rk::p99)}};
      for (const auto& [q, ptr] : kQ)
        if (auto v = number_at(p, ptr))
          w.sample("trainmeter_step_time_seconds", phase + ",quantile=\"" + q + "\"", *v * 1e-9);
      const double steps = number_at(p, rk::pointer(rk::steps)).value_or(0);
      const double warm = number_at(p, rk::pointer(rk::warmup_steps)).value_or(0);
      w.sample("trainmeter_step_time_seconds_sum", phase,
               number_at(p, rk::pointer(rk::duration_s)).value_or(0));
      w.sample("trainmeter_step_time_seconds_count", phase, steps - warm);
    }
    bool any_steps = false;
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      if (!any_steps)
        w.family("trainmeter_steps_total", "counter", "Steps recorded, warm-up included.");
      any_steps = true;
      w.sample("trainmeter_steps_total", "phase=\"" + label_value(it.key()) + "\"",
               number_at(it.value(), rk::pointer(rk::steps)).value_or(0));
    }
  }

  w.single("trainmeter_run_duration_seconds", "gauge", "Wall time of the run.",
           number_at(report, rk::pointer(rk::run, rk::duration_s)));

  const nlohmann::json* comps = json_at(report, rk::pointer(rk::energy, rk::components));
  bool any_energy = false;
  if (comps != nullptr && comps->is_array()) {
    for (const auto& c : *comps) {
      const auto e = number_at(c, rk::pointer(rk::energy_j));
      if (!e) continue;
      if (!any_energy)
        w.family("trainmeter_energy_joules_total", "counter",
                 "Energy attributed to this process per hardware component.");
      any_energy = true;
      w.sample("trainmeter_energy_joules_total",
               fmt::format("component=\"{}\",provenance=\"{}\"",
                           label_value(string_at(c, rk::pointer(rk::name))),
                           label_value(string_at(c, rk::pointer(rk::provenance)))),
               *e);
    }
  }
  if (auto co2e = number_at(report, rk::pointer(rk::carbon, rk::co2e_kg)))
    w.single("trainmeter_co2e_grams_total", "counter",
             "Carbon dioxide equivalent emitted: energy x PUE x grid intensity.", *co2e * 1000.0);
  w.single("trainmeter_grid_intensity_grams_per_kwh", "gauge",
           "Grid carbon intensity used for the run (g CO2e per kWh).",
           number_at(report, rk::pointer(rk::carbon, rk::intensity_g_per_kwh)));
  w.single("trainmeter_peak_rss_bytes", "gauge", "Peak resident set size of the process.",
           number_at(report, rk::pointer(rk::memory, rk::peak_rss_bytes)));
  const auto tensor = tensor_peaks(report);
  if (!tensor.empty()) {
    w.family("trainmeter_peak_tensor_bytes", "gauge",
             "Peak bytes held by libtorch tensors, per device.");
    for (const auto& [device, bytes] : tensor)
      w.sample("trainmeter_peak_tensor_bytes", "device=\"" + label_value(device) + "\"", bytes);
  }
  // A merged report: each rank's own step time, how often it was the slowest, energy per host.
  // The rank itself is `of_rank` (the base `rank` label is the report's, the root's).
  if (const nlohmann::json view = ranks_view(report); view.is_object()) {
    const std::string phase = "phase=\"" + label_value(view[rk::phase].get<std::string>()) + "\"";
    w.family("trainmeter_rank_step_time_seconds", "gauge",
             "Each rank's own step time (its non-warm-up steps), by statistic.");
    for (const auto& r : view[rk::per_rank])
      for (const char* stat : {rk::p50, rk::mean, rk::max}) {
        const auto& v = r[std::string(stat) + "_ns"];
        if (!v.is_number()) continue;
        w.sample("trainmeter_rank_step_time_seconds",
                 fmt::format("of_rank=\"{}\",host=\"{}\",{},stat=\"{}\"", r[rk::rank].dump(),
                             label_value(r[rk::hostname].get<std::string>()), phase, stat),
                 v.get<double>() * 1e-9);
      }
    w.family("trainmeter_rank_slowest_steps", "gauge",
             "Aligned steps in which the rank was the slowest (straggler count).");
    for (const auto& r : view[rk::per_rank])
      if (r[rk::slowest_steps].is_number())
        w.sample("trainmeter_rank_slowest_steps", fmt::format("of_rank=\"{}\"", r[rk::rank].dump()),
                 r[rk::slowest_steps].get<double>());
    bool any_host = false;
    for (const auto& h : view["per_host"])
      for (const char* kind : {rk::energy_j, rk::machine_energy_j}) {
        if (!h[kind].is_number()) continue;
        if (!any_host)
          w.family("trainmeter_host_energy_joules_total", "counter",
                   "Energy per host: attributed to the ranks (energy_j) and machine-level "
                   "counters counted once (machine_energy_j).");
        any_host = true;
        w.sample("trainmeter_host_energy_joules_total",
                 fmt::format("host=\"{}\",kind=\"{}\"", label_value(h[rk::host].get<std::string>()),
                             kind),
                 h[kind].get<double>());
      }
  }
  return w.take();
}

namespace {

std::optional<double> known(double x) {
  return std::isfinite(x) ? std::optional<double>(x) : std::nullopt;
}
std::optional<double> known_bytes(std::int64_t x) {
  return x >= 0 ? std::optional<double>(double(x)) : std::nullopt;
}

}  // namespace

std::string prometheus_live_text(const LiveMetrics& m) {
  Writer w(fmt::format("run=\"{}\",run_id=\"{}\",rank=\"{}\"", label_value(m.run_name),
                       label_value(m.run_id), m.rank));
  w.family("trainmeter_run_info", "gauge",
           "Always 1: the run's identity and where it runs, as labels.");
  w.sample("trainmeter_run_info",
           fmt::format("program=\"{}\",host=\"{}\",version=\"{}\",world_size=\"{}\"",
                       label_value(m.program), label_value(m.host), label_value(m.version),
                       m.world_size),
           1);
  w.single("trainmeter_run_finished", "gauge",
           "1 once the run has finished (these are its final figures), else 0.",
           m.finished ? 1.0 : 0.0);
  w.single("trainmeter_run_duration_seconds", "gauge", "Wall time of the run so far.", m.uptime_s);

  if (!m.phases.empty()) {
    w.family("trainmeter_steps_total", "counter", "Steps recorded, warm-up included.");
    for (const LivePhase& p : m.phases)
      w.sample("trainmeter_steps_total", "phase=\"" + label_value(p.name) + "\"", double(p.steps));
    w.family("trainmeter_step_time_seconds", "summary",
             "Wall time of a training step, warm-up steps excluded.");
    for (const LivePhase& p : m.phases) {
      const std::string phase = "phase=\"" + label_value(p.name) + "\"";
      const std::pair<const char*, double> q[] = {
          {"0.5", p.p50_s}, {"0.9", p.p90_s}, {"0.95", p.p95_s}, {"0.99", p.p99_s}};
      for (const auto& [quantile, v] : q)
        if (std::isfinite(v))
          w.sample("trainmeter_step_time_seconds", phase + ",quantile=\"" + quantile + "\"", v);
      w.sample("trainmeter_step_time_seconds_sum", phase, p.wall_sum_s);
      w.sample("trainmeter_step_time_seconds_count", phase, double(p.timed_steps));
    }
    w.family("trainmeter_samples_total", "counter", "Samples processed (Session::step's count).");
    for (const LivePhase& p : m.phases)
      w.sample("trainmeter_samples_total", "phase=\"" + label_value(p.name) + "\"", p.samples);
    bool any_loss = false;
    for (const LivePhase& p : m.phases) {
      if (!std::isfinite(p.loss)) continue;
      if (!any_loss) w.family("trainmeter_loss", "gauge", "Loss of the phase's last step.");
      any_loss = true;
      w.sample("trainmeter_loss", "phase=\"" + label_value(p.name) + "\"", p.loss);
    }
  }
  w.single("trainmeter_samples_per_second", "gauge",
           "Samples per second over the last second or so, every phase together.",
           known(m.samples_per_s));

  const LiveSnapshot& l = m.live;
  w.single("trainmeter_rss_bytes", "gauge", "Resident set size of the process at the last sample.",
           known_bytes(l.rss_bytes));
  w.single("trainmeter_peak_rss_bytes", "gauge", "Highest resident set size sampled so far.",
           known_bytes(l.rss_peak_sampled_bytes));
  w.single("trainmeter_tensor_bytes", "gauge", "Bytes held by libtorch tensors (track_memory).",
           known_bytes(l.tensor_bytes));
  w.single("trainmeter_peak_tensor_bytes", "gauge",
           "Peak bytes held by libtorch tensors so far (track_memory).",
           known_bytes(l.tensor_peak_bytes));
  const std::pair<const char*, std::int64_t LiveCudaMemory::*> cuda[] = {
      {"trainmeter_cuda_allocated_bytes", &LiveCudaMemory::allocated_bytes},
      {"trainmeter_cuda_reserved_bytes", &LiveCudaMemory::reserved_bytes}};
  for (const auto& [name, field] : cuda) {
    bool any = false;
    for (const LiveCudaMemory& c : l.cuda) {
      if (c.*field < 0) continue;
      if (!any)
        w.family(name, "gauge",
                 field == &LiveCudaMemory::allocated_bytes
                     ? "CUDA caching-allocator bytes allocated, per device."
                     : "CUDA caching-allocator bytes reserved, per device.");
      any = true;
      w.sample(name, fmt::format("device=\"cuda:{}\"", c.device), double(c.*field));
    }
  }

  if (!l.channels.empty()) {
    w.family("trainmeter_energy_joules_total", "counter",
             "Energy attributed to this process per hardware component.");
    for (const LiveEnergyChannel& c : l.channels)
      w.sample("trainmeter_energy_joules_total",
               fmt::format("component=\"{}\",source=\"{}\",provenance=\"{}\",selected=\"{}\"",
                           label_value(c.component), label_value(c.source),
                           label_value(c.provenance), c.selected ? "true" : "false"),
               c.energy_j);
    bool any_power = false;
    for (const LiveEnergyChannel& c : l.channels) {
      if (!std::isfinite(c.power_w)) continue;
      if (!any_power)
        w.family("trainmeter_power_watts", "gauge",
                 "Power attributed to this process per component over the last sample interval.");
      any_power = true;
      w.sample("trainmeter_power_watts",
               fmt::format("component=\"{}\",source=\"{}\",provenance=\"{}\",selected=\"{}\"",
                           label_value(c.component), label_value(c.source),
                           label_value(c.provenance), c.selected ? "true" : "false"),
               c.power_w);
    }
  }
  w.single("trainmeter_run_energy_joules_total", "counter",
           "Energy counted in the run's total so far (the selected components; energy.total_j).",
           known(l.energy_total_j));
  w.single("trainmeter_run_power_watts", "gauge",
           "Power of the selected components over the last sample interval.", known(l.power_w));
  if (std::isfinite(l.energy_total_j))
    w.single("trainmeter_energy_estimated", "gauge",
             "1 when some selected component's energy is estimated rather than measured.",
             l.energy_estimated ? 1.0 : 0.0);
  w.single("trainmeter_pue", "gauge", "Power usage effectiveness applied to the energy.", m.pue);
  if (std::isfinite(m.intensity_g_per_kwh)) {
    w.family("trainmeter_grid_intensity_grams_per_kwh", "gauge",
             "Grid carbon intensity used for the run (g CO2e per kWh).");
    w.sample("trainmeter_grid_intensity_grams_per_kwh",
             "source=\"" + label_value(m.intensity_source) + "\"", m.intensity_g_per_kwh);
  }
  w.single("trainmeter_co2e_grams_total", "counter",
           "Carbon dioxide equivalent emitted so far: energy x PUE x grid intensity.",
           known(m.co2e_g));
  return w.take();
}

}  // namespace trainmeter::detail
