// Prometheus text exposition (format 0.0.4) for node_exporter's textfile collector. Base units
// (seconds, joules, bytes, grams) as Prometheus' naming guide asks; figures that were not
// measured are left out rather than written as 0.
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "export/access.hpp"
#include "export/exports.hpp"

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
    if (!v) return;
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
      "run=\"{}\",run_id=\"{}\",rank=\"{}\"", label_value(string_at(report, "/run/name")),
      label_value(string_at(report, "/run/id")),
      static_cast<long long>(number_at(report, "/run/rank").value_or(0)));
  Writer w(base);

  // Step time per phase: a summary with the report's quantiles; _sum and _count cover the
  // non-warm-up steps the quantiles describe.
  const nlohmann::json* phases = json_at(report, "/phases");
  bool any_summary = false;
  if (phases != nullptr && phases->is_object()) {
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      const nlohmann::json& p = it.value();
      if (json_at(p, "/step_time_ns") == nullptr) continue;
      if (!any_summary)
        w.family("trainmeter_step_time_seconds", "summary",
                 "Wall time of a training step, warm-up steps excluded.");
      any_summary = true;
      const std::string phase = "phase=\"" + label_value(it.key()) + "\"";
      static const std::pair<const char*, const char*> kQ[] = {{"0.5", "/step_time_ns/p50"},
                                                               {"0.9", "/step_time_ns/p90"},
                                                               {"0.95", "/step_time_ns/p95"},
                                                               {"0.99", "/step_time_ns/p99"}};
      for (const auto& [q, ptr] : kQ)
        if (auto v = number_at(p, ptr))
          w.sample("trainmeter_step_time_seconds", phase + ",quantile=\"" + q + "\"", *v * 1e-9);
      const double steps = number_at(p, "/steps").value_or(0);
      const double warm = number_at(p, "/warmup_steps").value_or(0);
      w.sample("trainmeter_step_time_seconds_sum", phase, number_at(p, "/duration_s").value_or(0));
      w.sample("trainmeter_step_time_seconds_count", phase, steps - warm);
    }
    bool any_steps = false;
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      if (!any_steps)
        w.family("trainmeter_steps_total", "counter", "Steps recorded, warm-up included.");
      any_steps = true;
      w.sample("trainmeter_steps_total", "phase=\"" + label_value(it.key()) + "\"",
               number_at(it.value(), "/steps").value_or(0));
    }
  }

  w.single("trainmeter_run_duration_seconds", "gauge", "Wall time of the run.",
           number_at(report, "/run/duration_s"));

  const nlohmann::json* comps = json_at(report, "/energy/components");
  bool any_energy = false;
  if (comps != nullptr && comps->is_array()) {
    for (const auto& c : *comps) {
      const auto e = number_at(c, "/energy_j");
      if (!e) continue;
      if (!any_energy)
        w.family("trainmeter_energy_joules_total", "counter",
                 "Energy attributed to this process per hardware component.");
      any_energy = true;
      w.sample("trainmeter_energy_joules_total",
               fmt::format("component=\"{}\",provenance=\"{}\"", label_value(string_at(c, "/name")),
                           label_value(string_at(c, "/provenance"))),
               *e);
    }
  }
  if (auto co2e = number_at(report, "/carbon/co2e_kg"))
    w.single("trainmeter_co2e_grams_total", "counter",
             "Carbon dioxide equivalent emitted: energy x PUE x grid intensity.", *co2e * 1000.0);
  w.single("trainmeter_grid_intensity_grams_per_kwh", "gauge",
           "Grid carbon intensity used for the run (g CO2e per kWh).",
           number_at(report, "/carbon/intensity_g_per_kwh"));
  w.single("trainmeter_peak_rss_bytes", "gauge", "Peak resident set size of the process.",
           number_at(report, "/memory/peak_rss_bytes"));
  const auto tensor = tensor_peaks(report);
  if (!tensor.empty()) {
    w.family("trainmeter_peak_tensor_bytes", "gauge",
             "Peak bytes held by libtorch tensors, per device.");
    for (const auto& [device, bytes] : tensor)
      w.sample("trainmeter_peak_tensor_bytes", "device=\"" + label_value(device) + "\"", bytes);
  }
  return w.take();
}

}  // namespace trainmeter::detail
