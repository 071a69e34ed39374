// CodeCarbon-compatible emissions.csv rows and the strict CSV reader that guards appends.
#include "export/csv.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "carbon/intensity.hpp"
#include "export/access.hpp"
#include "export/exports.hpp"

namespace trainmeter::detail {

std::string csv_field(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

CsvTable parse_csv(const std::string& text, const std::string& name, std::size_t max_rows) {
  CsvTable t;
  std::vector<std::string> row;
  std::string field;
  std::size_t line = 1, col = 1, row_line = 1;
  bool quoted = false, after_quote = false, field_started = false;
  auto fail = [&](const std::string& what) {
    t.rows.clear();
    t.error = fmt::format("{}: line {}, column {}: {}", name, line, col, what);
  };
  auto end_row = [&]() -> bool {
    row.push_back(std::move(field));
    field.clear();
    if (!t.rows.empty() && row.size() != t.rows.front().size()) {
      line = row_line;
      col = 1;
      fail(fmt::format("{} fields where the header has {}", row.size(), t.rows.front().size()));
      return false;
    }
    if (t.rows.size() >= max_rows) {
      fail(fmt::format("more than {} rows", max_rows));
      return false;
    }
    t.rows.push_back(std::move(row));
    row.clear();
    return true;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
          ++col;
        } else {
          quoted = false;
          after_quote = true;
        }
      } else {
        field += c;
        if (c == '\n') {
          ++line;
          col = 0;
        }
      }
      ++col;
      continue;
    }
    if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      after_quote = field_started = false;
    } else if (c == '\n' || (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) {
      if (c == '\r') ++i;
      if (!end_row()) return t;
      after_quote = field_started = false;
      ++line;
      row_line = line;
      col = 0;
    } else if (after_quote) {
      fail("text after a closing quote");
      return t;
    } else if (c == '"') {
      if (field_started) {
        fail("a quote inside an unquoted field");
        return t;
      }
      quoted = true;
      field_started = true;
    } else if (c == '\r') {
      fail("a carriage return outside quotes not followed by a newline");
      return t;
    } else {
      field += c;
      field_started = true;
    }
    ++col;
  }
  if (quoted) {
    fail("unterminated quoted field (truncated file?)");
    return t;
  }
  if (!field.empty() || !row.empty() || after_quote) end_row();
  return t;
}

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> columns = {"timestamp",
                                                   "project_name",
                                                   rk::run_id,
                                                   "experiment_id",
                                                   "duration",
                                                   "emissions",
                                                   "emissions_rate",
                                                   "cpu_power",
                                                   "gpu_power",
                                                   "ram_power",
                                                   "cpu_energy",
                                                   "gpu_energy",
                                                   "ram_energy",
                                                   "energy_consumed",
                                                   "water_consumed",
                                                   "country_name",
                                                   "country_iso_code",
                                                   rk::region,
                                                   "cloud_provider",
                                                   "cloud_region",
                                                   rk::os,
                                                   "python_version",
                                                   "codecarbon_version",
                                                   "cpu_count",
                                                   rk::cpu_model,
                                                   "gpu_count",
                                                   "gpu_model",
                                                   "longitude",
                                                   "latitude",
                                                   "ram_total_size",
                                                   "tracking_mode",
                                                   "cpu_utilization_percent",
                                                   "gpu_utilization_percent",
                                                   "ram_utilization_percent",
                                                   "ram_used_gb",
                                                   "on_cloud",
                                                   rk::pue,
                                                   "wue"};
  return columns;
}

std::string csv_header_line() {
  std::string out;
  for (const std::string& c : csv_columns()) {
    if (!out.empty()) out += ',';
    out += c;
  }
  return out + "\n";
}

namespace {

constexpr double kJoulesPerKwh = 3.6e6;
constexpr double kBytesPerGib = 1024.0 * 1024.0 * 1024.0;

std::string num(std::optional<double> x) {
  return x ? fmt::format("{}", *x) : std::string();
}

// A float column CodeCarbon writes as a Python float: "1.0", never "1".
std::string float_text(std::optional<double> x) {
  if (!x) return std::string();
  return std::floor(*x) == *x && std::fabs(*x) < 1e15 ? fmt::format("{:.1f}", *x)
                                                      : fmt::format("{}", *x);
}

// CodeCarbon's timestamp format, "%Y-%m-%dT%H:%M:%S" (no fraction, no zone); ours is UTC.
std::string codecarbon_timestamp(const std::string& utc) {
  return utc.size() >= 19 ? utc.substr(0, 19) : utc;
}

// Sums of the energy section's components by CodeCarbon's three groups. A group with no
// component, or one whose figure is null, stays absent (an empty cell).
struct GroupEnergy {
  std::optional<double> energy_j, power_w;
};

GroupEnergy group(const nlohmann::json& report, const std::string& group_name) {
  GroupEnergy g;
  const nlohmann::json* comps = json_at(report, rk::pointer(rk::energy, rk::components));
  if (comps == nullptr || !comps->is_array()) return g;
  for (const auto& c : *comps) {
    const std::string n = string_at(c, rk::pointer(rk::name));
    const bool in = group_name == "gpu"   ? n.rfind("gpu", 0) == 0
                    : group_name == "ram" ? (n == "dram" || n == "ram")
                                          : (n == "cpu" || n == "package" || n == "core");
    if (!in) continue;
    if (auto e = number_at(c, rk::pointer(rk::energy_j))) g.energy_j = g.energy_j.value_or(0) + *e;
    if (auto p = number_at(c, rk::pointer(rk::average_power_w)))
      g.power_w = g.power_w.value_or(0) + *p;
  }
  return g;
}

}  // namespace

std::string csv_row_line(const nlohmann::json& report) {
  const std::optional<double> duration = number_at(report, rk::pointer(rk::run, rk::duration_s));
  const std::optional<double> co2e = number_at(report, rk::pointer(rk::carbon, rk::co2e_kg));
  std::optional<double> rate;
  if (co2e && duration && *duration > 0) rate = *co2e / *duration;
  const GroupEnergy cpu = group(report, "cpu"), gpu = group(report, "gpu"),
                    ram = group(report, "ram");
  // CodeCarbon multiplies every component's energy by PUE, so cpu_energy + gpu_energy +
  // ram_energy = energy_consumed (kWh, after PUE); powers are the components' own (no PUE).
  std::optional<double> pue = number_at(report, rk::pointer(rk::carbon, rk::pue));
  if (!pue) pue = number_at(report, rk::pointer(rk::energy, rk::pue));
  if (!pue) {
    try {
      pue = std::stod(string_at(report, rk::pointer(rk::config, rk::pue), "1"));
    } catch (...) {
      pue = std::nullopt;
    }
  }
  auto kwh_pue = [&](std::optional<double> j) -> std::optional<double> {
    if (!j || !pue) return std::nullopt;
    return *j / kJoulesPerKwh * *pue;
  };
  std::optional<double> consumed =
      number_at(report, rk::pointer(rk::carbon, rk::energy_kwh_with_pue));
  if (!consumed) {
    const std::optional<double> total = number_at(report, rk::pointer(rk::energy, rk::total_kwh));
    if (total && pue) consumed = *total * *pue;
  }
  // Location: CodeCarbon writes ISO 3166-1 alpha-3 codes (its tables are keyed by them) and, for
  // cloud runs, the provider, region and the region's country; both come from our tables.
  const std::string source = string_at(report, rk::pointer(rk::carbon, rk::intensity_source));
  const std::string region = string_at(report, rk::pointer(rk::carbon, rk::region));
  std::string country_name, country_iso, cloud_provider, cloud_region;
  auto set_country = [&](const std::string& code) {
    if (const auto c = lookup_country(code)) {
      country_iso = c->iso3;
      country_name = c->name;
    }
  };
  if (source == "country") {
    set_country(region);
    if (country_name.empty())
      country_name = string_at(report, rk::pointer(rk::carbon, rk::region_name));
  } else if (source == "cloud_region") {
    const auto colon = region.find(':');
    cloud_provider = colon == std::string::npos ? region : region.substr(0, colon);
    cloud_region = colon == std::string::npos ? "" : region.substr(colon + 1);
    if (const auto r = lookup_region(region)) set_country(r->country);
  }
  const bool on_cloud = !cloud_provider.empty();
  // GPUs counted by model, as CodeCarbon's "<n> x <name>"; several models joined by ", ".
  std::string gpu_model;
  std::size_t gpu_count = 0;
  if (const nlohmann::json* gpus = json_at(report, rk::pointer(rk::host, rk::gpus));
      gpus && gpus->is_array()) {
    std::vector<std::pair<std::string, std::size_t>> by_model;
    for (const auto& g : *gpus) {
      const std::string n = string_at(g, rk::pointer(rk::name), "unknown");
      ++gpu_count;
      auto it = std::find_if(by_model.begin(), by_model.end(),
                             [&](const auto& m) { return m.first == n; });
      if (it == by_model.end())
        by_model.emplace_back(n, 1);
      else
        ++it->second;
    }
    for (const auto& [name, n] : by_model)
      gpu_model += fmt::format("{}{} x {}", gpu_model.empty() ? "" : ", ", n, name);
  }
  // No GPU: CodeCarbon writes 0 W and 0 kWh, which is exact (nothing to consume). GPUs present
  // but not measured stay empty.
  std::optional<double> gpu_power = gpu.power_w, gpu_energy = kwh_pue(gpu.energy_j);
  if (gpu_count == 0 && !gpu.energy_j) {
    gpu_power = 0.0;
    gpu_energy = 0.0;
  }
  std::optional<double> ram_total, ram_used;
  if (auto b = number_at(report, rk::pointer(rk::host, rk::memory_bytes)))
    ram_total = *b / kBytesPerGib;
  // ram_used_gb: CodeCarbon's mean of the RAM used over its samples (the process's, in
  // tracking_mode "process", which we write): the mean sampled RSS of this process.
  if (const nlohmann::json* pts =
          json_at(report, rk::pointer(rk::memory, rk::timeline, rk::points));
      pts && pts->is_array() && !pts->empty()) {
    double sum = 0;
    std::size_t n = 0;
    for (const auto& p : *pts)
      if (p.is_array() && p.size() == 2 && p[1].is_number()) {
        sum += p[1].get<double>();
        ++n;
      }
    if (n > 0) ram_used = sum / double(n) / kBytesPerGib;
  }
  // Utilisation, in percent as CodeCarbon's means: the process's CPU time over the run's
  // capacity (duration x logical CPUs); RAM used over the machine's RAM. GPU utilisation is not
  // sampled: 0 without GPUs (as CodeCarbon), else empty.
  std::optional<double> cpu_util, ram_util, gpu_util;
  if (const auto user = number_at(report, rk::pointer(rk::run, rk::cpu_time_s, rk::user))) {
    const auto system = number_at(report, rk::pointer(rk::run, rk::cpu_time_s, rk::system));
    const auto cpus = number_at(report, rk::pointer(rk::host, rk::logical_cpus));
    if (duration && *duration > 0 && cpus && *cpus > 0)
      cpu_util = 100.0 * (*user + system.value_or(0)) / (*duration * *cpus);
  }
  if (ram_used && ram_total && *ram_total > 0) ram_util = 100.0 * *ram_used / *ram_total;
  if (gpu_count == 0) gpu_util = 0.0;
  auto int_text = [&](std::string_view pointer) {
    const auto v = number_at(report, pointer);
    return v ? fmt::format("{}", static_cast<long long>(*v)) : std::string();
  };

  const std::vector<std::string> cells = {
      codecarbon_timestamp(string_at(report, rk::pointer(rk::run, rk::end_utc),
                                     string_at(report, rk::pointer(rk::run, rk::start_utc)))),
      string_at(report, rk::pointer(rk::run, rk::name)),
      string_at(report, rk::pointer(rk::run, rk::id)),
      string_at(report, "/run/tags/experiment_id"),
      num(duration),
      num(co2e),
      num(rate),
      num(cpu.power_w),
      num(gpu_power),
      num(ram.power_w),
      num(kwh_pue(cpu.energy_j)),
      num(gpu_energy),
      num(kwh_pue(ram.energy_j)),
      num(consumed),
      "0.0",  // water_consumed = energy_consumed x wue, with wue 0 (CodeCarbon's default)
      country_name,
      country_iso,
      "",  // region (sub-national): not known
      cloud_provider,
      cloud_region,
      string_at(report, rk::pointer(rk::host, rk::os)),
      "",  // python_version: not a Python run
      "",  // codecarbon_version: not CodeCarbon
      int_text(rk::pointer(rk::host, rk::logical_cpus)),
      string_at(report, rk::pointer(rk::host, rk::cpu_model)),
      fmt::format("{}", gpu_count),
      gpu_model,
      "",  // longitude: not located
      "",  // latitude
      num(ram_total),
      "process",  // energy is attributed to this process (see energy.components[].attribution)
      num(cpu_util),
      num(gpu_util),
      num(ram_util),
      num(ram_used),
      on_cloud ? "Y" : "N",
      float_text(pue),
      "0.0",  // wue: trainmeter has no water-usage setting; CodeCarbon's default 0 L/kWh
  };
  std::string out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) out += ',';
    out += csv_field(cells[i]);
  }
  return out + "\n";
}

}  // namespace trainmeter::detail
