#include "export/access.hpp"
#include "base/values.hpp"

#include <cmath>

#include "base/report_keys.hpp"

namespace trainmeter::detail {

const nlohmann::json* json_at(const nlohmann::json& doc, std::string_view pointer) noexcept {
  try {
    const nlohmann::json::json_pointer p{std::string(pointer)};
    if (!doc.contains(p)) return nullptr;
    const nlohmann::json& v = doc.at(p);
    return v.is_null() ? nullptr : &v;
  } catch (...) {
    return nullptr;
  }
}

std::optional<double> number_at(const nlohmann::json& doc, std::string_view pointer) noexcept {
  const nlohmann::json* v = json_at(doc, pointer);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  const double x = v->get<double>();
  if (!std::isfinite(x)) return std::nullopt;
  return x;
}

std::string string_at(const nlohmann::json& doc, std::string_view pointer,
                      const std::string& fallback) {
  const nlohmann::json* v = json_at(doc, pointer);
  return v != nullptr && v->is_string() ? v->get<std::string>() : fallback;
}

std::vector<std::pair<std::string, double>> tensor_peaks(const nlohmann::json& report) {
  std::vector<std::pair<std::string, double>> out;
  const nlohmann::json* v = json_at(report, rk::pointer(rk::memory, rk::peak_tensor_bytes));
  if (v == nullptr) return out;
  if (v->is_number()) {
    out.emplace_back("cpu", v->get<double>());
  } else if (v->is_object()) {
    for (auto it = v->begin(); it != v->end(); ++it)
      if (it->is_number()) out.emplace_back(it.key(), it->get<double>());
  }
  return out;
}

std::optional<double> tensor_peak_sum(const nlohmann::json& report) {
  const auto peaks = tensor_peaks(report);
  if (peaks.empty()) return std::nullopt;
  double sum = 0;
  for (const auto& p : peaks) sum += p.second;
  return sum;
}

std::vector<double> retained_step_times(const nlohmann::json& report, const std::string& phase) {
  std::vector<double> out;
  const auto steps = report.find(rk::steps);
  if (steps == report.end() || !steps->is_array()) return out;
  for (const auto& s : *steps) {
    if (!s.is_object()) continue;
    const auto p = s.find(rk::phase);
    const auto w = s.find(rk::warmup);
    const auto t = s.find(rk::wall_ns);
    if (p == s.end() || !p->is_string() || p->get_ref<const std::string&>() != phase) continue;
    if (w != s.end() && w->is_boolean() && w->get<bool>()) continue;
    if (t == s.end() || !t->is_number()) continue;
    out.push_back(t->get<double>());
  }
  return out;
}

std::string main_phase(const nlohmann::json& report) {
  const auto phases = report.find(rk::phases);
  if (phases == report.end() || !phases->is_object() || phases->empty()) return "";
  if (phases->contains(std::string(kDefaultPhase))) return std::string(kDefaultPhase);
  std::string best;
  double most = -1;
  for (auto it = phases->begin(); it != phases->end(); ++it) {
    const auto steps = it->find(rk::steps);
    const double n = (steps != it->end() && steps->is_number()) ? steps->get<double>() : 0;
    if (n > most) {
      most = n;
      best = it.key();
    }
  }
  return best;
}

std::string beside_report(const std::string& report_path, const std::string& suffix) {
  const std::string ext = ".json";
  if (report_path.size() > ext.size() &&
      report_path.compare(report_path.size() - ext.size(), ext.size(), ext) == 0)
    return report_path.substr(0, report_path.size() - ext.size()) + suffix;
  return report_path + suffix;
}

}  // namespace trainmeter::detail
