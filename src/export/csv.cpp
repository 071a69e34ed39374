// CodeCarbon-compatible emissions.csv rows and the strict CSV reader that guards appends.
#include "export/csv.hpp"

#include <cmath>
#include <optional>

#include <fmt/format.h>

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
                                                   "run_id",
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
                                                   "region",
                                                   "cloud_provider",
                                                   "cloud_region",
                                                   "os",
                                                   "python_version",
                                                   "codecarbon_version",
                                                   "cpu_count",
                                                   "cpu_model",
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
                                                   "pue",
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

// Sums of the energy section's components by CodeCarbon's three groups. A group with no
// component, or one whose figure is null, stays absent (an empty cell).
struct GroupEnergy {
  std::optional<double> energy_j, power_w;
};

GroupEnergy group(const nlohmann::json& report, const std::string& group_name) {
  GroupEnergy g;
  const nlohmann::json* comps = json_at(report, "/energy/components");
  if (comps == nullptr || !comps->is_array()) return g;
  for (const auto& c : *comps) {
    const std::string n = string_at(c, "/name");
    const bool in = group_name == "gpu"   ? n.rfind("gpu", 0) == 0
                    : group_name == "ram" ? (n == "dram" || n == "ram")
                                          : (n == "cpu" || n == "package" || n == "core");
    if (!in) continue;
    if (auto e = number_at(c, "/energy_j")) g.energy_j = g.energy_j.value_or(0) + *e;
    if (auto p = number_at(c, "/average_power_w")) g.power_w = g.power_w.value_or(0) + *p;
  }
  return g;
}

}  // namespace

std::string csv_row_line(const nlohmann::json& report) {
  const std::optional<double> duration = number_at(report, "/run/duration_s");
  const std::optional<double> co2e = number_at(report, "/carbon/co2e_kg");
  std::optional<double> rate;
  if (co2e && duration && *duration > 0) rate = *co2e / *duration;
  const GroupEnergy cpu = group(report, "cpu"), gpu = group(report, "gpu"),
                    ram = group(report, "ram");
  auto kwh = [](std::optional<double> j) -> std::optional<double> {
    if (!j) return std::nullopt;
    return *j / kJoulesPerKwh;
  };
  // energy_consumed is after PUE in CodeCarbon; the carbon section carries it, else the energy
  // total times the configured PUE.
  std::optional<double> consumed = number_at(report, "/carbon/energy_kwh_with_pue");
  std::optional<double> pue = number_at(report, "/carbon/pue");
  if (!pue) {
    try {
      pue = std::stod(string_at(report, "/config/pue", "1"));
    } catch (...) {
      pue = std::nullopt;
    }
  }
  if (!consumed) {
    const std::optional<double> total = number_at(report, "/energy/total_kwh");
    if (total && pue) consumed = *total * *pue;
  }
  const std::string source = string_at(report, "/carbon/intensity_source");
  const std::string region = string_at(report, "/carbon/region");
  std::string country_name, country_iso, cloud_provider, cloud_region;
  if (source == "country") {
    country_iso = region;
    country_name = string_at(report, "/carbon/region_name");
  } else if (source == "cloud_region") {
    const auto colon = region.find(':');
    cloud_provider = colon == std::string::npos ? region : region.substr(0, colon);
    cloud_region = colon == std::string::npos ? "" : region.substr(colon + 1);
  }
  std::string gpu_model;
  std::size_t gpu_count = 0;
  if (const nlohmann::json* gpus = json_at(report, "/host/gpus"); gpus && gpus->is_array()) {
    gpu_count = gpus->size();
    std::string first;
    bool same = true;
    for (const auto& g : *gpus) {
      const std::string n = string_at(g, "/name", "unknown");
      if (first.empty()) first = n;
      same = same && n == first;
      if (!gpu_model.empty()) gpu_model += ", ";
      gpu_model += n;
    }
    if (same && gpu_count > 0) gpu_model = fmt::format("{} x {}", gpu_count, first);
  }
  std::optional<double> ram_total, ram_used;
  if (auto b = number_at(report, "/host/memory_bytes")) ram_total = *b / kBytesPerGib;
  if (auto b = number_at(report, "/memory/peak_rss_bytes")) ram_used = *b / kBytesPerGib;
  auto int_text = [&](const char* pointer) {
    const auto v = number_at(report, pointer);
    return v ? fmt::format("{}", static_cast<long long>(*v)) : std::string();
  };

  const std::vector<std::string> cells = {
      string_at(report, "/run/end_utc", string_at(report, "/run/start_utc")),
      string_at(report, "/run/name"),
      string_at(report, "/run/id"),
      string_at(report, "/run/tags/experiment_id"),
      num(duration),
      num(co2e),
      num(rate),
      num(cpu.power_w),
      num(gpu.power_w),
      num(ram.power_w),
      num(kwh(cpu.energy_j)),
      num(kwh(gpu.energy_j)),
      num(kwh(ram.energy_j)),
      num(consumed),
      "",  // water_consumed: not measured
      country_name,
      country_iso,
      "",  // region (sub-national): not known
      cloud_provider,
      cloud_region,
      string_at(report, "/host/os"),
      "",  // python_version: not a Python run
      "",  // codecarbon_version: not CodeCarbon
      int_text("/host/logical_cpus"),
      string_at(report, "/host/cpu_model"),
      fmt::format("{}", gpu_count),
      gpu_model,
      "",  // longitude: not located
      "",  // latitude
      num(ram_total),
      "process",  // energy is attributed to this process (see energy.components[].attribution)
      "",         // cpu_utilization_percent: machine utilisation is not sampled
      "",         // gpu_utilization_percent
      "",         // ram_utilization_percent
      num(ram_used),
      cloud_provider.empty() ? "N" : "Y",
      num(pue),
      "",  // wue: not known
  };
  std::string out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) out += ',';
    out += csv_field(cells[i]);
  }
  return out + "\n";
}

}  // namespace trainmeter::detail
