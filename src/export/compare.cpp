#include "export/compare.hpp"

#include <algorithm>
#include <cmath>
#include <random>

#include <fmt/format.h>

#include "export/access.hpp"
#include "report/stats.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;

// Median of v by linear interpolation, reordering v (nth_element: O(n) per bootstrap resample).
double median_in_place(std::vector<double>& v) {
  const std::size_t n = v.size();
  const std::size_t mid = (n - 1) / 2;
  std::nth_element(v.begin(), v.begin() + mid, v.end());
  const double lo = v[mid];
  if (n % 2 == 1) return lo;
  const double hi = *std::min_element(v.begin() + mid + 1, v.end());
  return 0.5 * (lo + hi);
}

std::string ratio_text(double r) {
  return fmt::format("{:.3f}x", r);
}

}  // namespace

double median_of(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  return median_in_place(values);
}

std::optional<std::pair<double, double>> bootstrap_median_ratio(const std::vector<double>& a,
                                                                const std::vector<double>& b,
                                                                const CompareOptions& o) {
  if (a.empty() || b.empty() || o.resamples < 10) return std::nullopt;
  std::mt19937_64 rng(o.seed);
  std::vector<double> ra(a.size()), rb(b.size()), ratios;
  ratios.reserve(static_cast<std::size_t>(o.resamples));
  std::uniform_int_distribution<std::size_t> pick_a(0, a.size() - 1), pick_b(0, b.size() - 1);
  for (int i = 0; i < o.resamples; ++i) {
    for (double& x : ra) x = a[pick_a(rng)];
    for (double& x : rb) x = b[pick_b(rng)];
    const double ma = median_in_place(ra), mb = median_in_place(rb);
    if (ma <= 0) return std::nullopt;
    ratios.push_back(mb / ma);
  }
  std::sort(ratios.begin(), ratios.end());
  const double tail = (1.0 - o.confidence) / 2.0;
  return std::make_pair(exact_quantile_sorted(ratios, tail),
                        exact_quantile_sorted(ratios, 1.0 - tail));
}

json compare_reports(const json& a, const json& b, const CompareOptions& o) {
  std::string phase = o.phase.empty() ? main_phase(a) : o.phase;
  auto phase_ptr = [&](const char* key) {
    // Phase names may hold '/' or '~': escape them as JSON Pointer requires.
    std::string escaped;
    for (char c : phase) {
      if (c == '~')
        escaped += "~0";
      else if (c == '/')
        escaped += "~1";
      else
        escaped += c;
    }
    return "/phases/" + escaped + key;
  };
  struct Metric {
    const char* name;
    std::string pointer;
    const char* unit;
    const char* better;  // "lower" or "higher"
  };
  const std::vector<Metric> metrics = {
      {"step_time_p50", phase_ptr("/step_time_ns/p50"), "ns", "lower"},
      {"step_time_mean", phase_ptr("/step_time_ns/mean"), "ns", "lower"},
      {"samples_per_s", phase_ptr("/samples_per_s"), "samples/s", "higher"},
      {"tokens_per_s", phase_ptr("/tokens_per_s"), "tokens/s", "higher"},
      {"peak_rss_bytes", "/memory/peak_rss_bytes", "bytes", "lower"},
      {"peak_tensor_bytes", "/memory/peak_tensor_bytes", "bytes", "lower"},
      {"model_bytes", "/model/total_bytes", "bytes", "lower"},
      {"energy_j", "/energy/total_j", "J", "lower"},
      {"co2e_kg", "/carbon/co2e_kg", "kg", "lower"},
      {"cost", "/cost/total", "currency", "lower"},
  };
  json out = {{"phase", phase}, {"metrics", json::object()}};
  std::vector<std::string> order;
  for (const Metric& m : metrics) {
    const bool tensor = m.pointer == "/memory/peak_tensor_bytes";
    const auto va = tensor ? tensor_peak_sum(a) : number_at(a, m.pointer.c_str());
    const auto vb = tensor ? tensor_peak_sum(b) : number_at(b, m.pointer.c_str());
    json ratio = nullptr;
    if (va && vb && *va != 0) ratio = *vb / *va;
    out["metrics"][m.name] = {{"a", va ? json(*va) : json(nullptr)},
                              {"b", vb ? json(*vb) : json(nullptr)},
                              {"ratio", ratio},
                              {"unit", m.unit},
                              {"better", m.better}};
    order.push_back(m.name);
  }
  out["metric_order"] = order;

  const std::vector<double> sa = retained_step_times(a, phase), sb = retained_step_times(b, phase);
  json st = {{"steps_a", sa.size()},       {"steps_b", sb.size()},    {"resamples", o.resamples},
             {"confidence", o.confidence}, {"median_ratio", nullptr}, {"ci_low", nullptr},
             {"ci_high", nullptr},         {"significant", nullptr},  {"speedup", nullptr}};
  std::string verdict;
  if (!sa.empty() && !sb.empty()) {
    const double ma = median_of(sa), mb = median_of(sb);
    if (ma > 0 && mb > 0) {
      const double r = mb / ma;
      st["median_ratio"] = r;
      st["speedup"] = 1.0 / r;
      if (auto ci = bootstrap_median_ratio(sa, sb, o)) {
        st["ci_low"] = ci->first;
        st["ci_high"] = ci->second;
        const bool significant = ci->second < 1.0 || ci->first > 1.0;
        st["significant"] = significant;
        const int pct = static_cast<int>(std::lround(o.confidence * 100));
        if (!significant)
          verdict = fmt::format(
              "no significant difference (median ratio B/A {:.3f}, {}% CI {:.3f}-{:.3f})", r, pct,
              ci->first, ci->second);
        else if (r < 1.0)
          verdict = fmt::format("{:.2f}x faster ({:.2f}-{:.2f}, {}% CI)", 1.0 / r, 1.0 / ci->second,
                                1.0 / ci->first, pct);
        else
          verdict =
              fmt::format("{:.2f}x slower ({:.2f}-{:.2f}, {}% CI)", r, ci->first, ci->second, pct);
      }
    }
  }
  if (verdict.empty())
    verdict =
        fmt::format("no confidence interval: {} retained non-warm-up '{}' steps in A, {} in B",
                    sa.size(), phase, sb.size());
  st["verdict"] = verdict;
  out["step_time"] = std::move(st);
  return out;
}

std::string render_comparison(const json& c) {
  std::string out = fmt::format("phase: {}\n", c.value("phase", std::string()));
  out += fmt::format("{:<20} {:>16} {:>16} {:>10}\n", "metric", "A", "B", "B/A");
  for (const auto& name : c["metric_order"]) {
    const json& m = c["metrics"][name.get<std::string>()];
    auto cell = [](const json& v) {
      return v.is_number() ? fmt::format("{:.6g}", v.get<double>()) : std::string("n/a");
    };
    out += fmt::format(
        "{:<20} {:>16} {:>16} {:>10}\n", name.get<std::string>(), cell(m["a"]), cell(m["b"]),
        m["ratio"].is_number() ? ratio_text(m["ratio"].get<double>()) : std::string("n/a"));
  }
  out += "step time (B vs A): " + c["step_time"].value("verdict", std::string()) + "\n";
  return out;
}

}  // namespace trainmeter::detail
