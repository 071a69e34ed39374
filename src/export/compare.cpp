#include "export/compare.hpp"

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "base/stats.hpp"
#include "export/access.hpp"
#include "report/units.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;

// Median of v by linear interpolation, reordering v (nth_element: O(n) per bootstrap resample).
double median_in_place(std::vector<double>& v) {
  const std::size_t n = v.size();
  const std::size_t mid = (n - 1) / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  const double lo = v[mid];
  if (n % 2 == 1) return lo;
  const double hi = *std::min_element(v.begin() + static_cast<std::ptrdiff_t>(mid) + 1, v.end());
  return 0.5 * (lo + hi);
}

// A uniform index below n from the generator's 64 bits. Not std::uniform_int_distribution: its
// algorithm differs between standard libraries, and the interval for a seed must not. The modulo
// bias is below n / 2^64.
std::size_t draw(std::mt19937_64& rng, std::size_t n) {
  return static_cast<std::size_t>(rng() % static_cast<std::uint64_t>(n));
}

// Continued fraction of the regularised incomplete beta function (modified Lentz).
double beta_continued_fraction(double a, double b, double x) {
  constexpr double kTiny = 1e-300, kEps = 1e-15;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= 500; ++m) {
    const double m2 = 2.0 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double del = d * c;
    h *= del;
    if (std::fabs(del - 1) < kEps) break;
  }
  return h;
}

double regularized_incomplete_beta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

double student_t_cdf(double t, double df) {
  const double tail = 0.5 * regularized_incomplete_beta(df / 2, 0.5, df / (df + t * t));
  return t > 0 ? 1 - tail : tail;
}

// One drawn run rebuilt from circular blocks of `block` steps into `out` (sized like the run).
void block_resample(const std::vector<double>& run, std::size_t block, std::mt19937_64& rng,
                    std::vector<double>& out) {
  const std::size_t n = run.size();
  std::size_t filled = 0;
  while (filled < n) {
    std::size_t i = draw(rng, n);
    for (std::size_t j = 0; j < block && filled < n; ++j) {
      out[filled++] = run[i];
      if (++i == n) i = 0;
    }
  }
}

std::string escape_pointer(const std::string& name) {
  // Phase names may hold '/' or '~': escape them as JSON Pointer requires.
  std::string escaped;
  for (char c : name) {
    if (c == '~')
      escaped += "~0";
    else if (c == '/')
      escaped += "~1";
    else
      escaped += c;
  }
  return escaped;
}

// Backslash-escapes what Markdown (GitHub's) would read as markup in a table cell or heading.
std::string markdown_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\`*_[]<>|#~").find(c) != std::string_view::npos) out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out;
}

std::string ratio_text(const json& r) {
  return r.is_number() ? fmt::format("{:.3f}x", r.get<double>()) : std::string("n/a");
}

std::string value_text(const json& v, const json& metric) {
  return v.is_number() ? format_in_unit(v.get<double>(), metric.value(rk::unit, std::string()))
                       : std::string("n/a");
}

// How the interval was reached, one line: the resampling, its blocks and the seed.
std::string method_text(const json& st) {
  if (!st["ci_low"].is_number()) return "";
  auto blocks = [](const json& v) {
    std::size_t lo = 0, hi = 0;
    for (const auto& b : v) {
      const auto x = b.get<std::size_t>();
      lo = lo == 0 ? x : std::min(lo, x);
      hi = std::max(hi, x);
    }
    return lo == hi ? std::to_string(lo) : fmt::format("{}-{}", lo, hi);
  };
  return fmt::format("{} ({} and {} runs; blocks of {} and {} steps), {} resamples, seed {}",
                     st.value(rk::method, std::string()), st["runs_a"].get<std::size_t>(),
                     st["runs_b"].get<std::size_t>(), blocks(st["block_steps_a"]),
                     blocks(st["block_steps_b"]), st["resamples"].get<int>(),
                     st["seed"].get<std::uint64_t>());
}

constexpr const char* kOneRunNote =
    "one run per side: the interval covers step-to-step variation only, not the variation between "
    "runs of the same program; pass several reports per side (A1 A2 A3 -- B1 B2 B3)";

}  // namespace

double median_of(std::vector<double> values) {
  if (values.empty()) return std::nan("");
  return median_in_place(values);
}

double side_centre(const SideSteps& runs) {
  if (runs.empty()) return std::nan("");
  double sum = 0;
  for (const auto& r : runs) {
    if (r.empty()) return std::nan("");
    sum += median_of(r);
  }
  return sum / static_cast<double>(runs.size());
}

std::size_t block_steps_for(std::size_t steps, const CompareOptions& o) {
  if (steps == 0) return 0;
  std::size_t b = o.block_steps;
  if (b == 0) b = static_cast<std::size_t>(std::ceil(std::sqrt(static_cast<double>(steps))));
  return std::clamp<std::size_t>(b, 1, steps);
}

double student_t_quantile(double p, double df) {
  if (!(p > 0 && p < 1) || !(df > 0)) return std::nan("");
  if (p < 0.5) return -student_t_quantile(1 - p, df);
  if (p == 0.5) return 0;
  double lo = 0, hi = 1;
  while (student_t_cdf(hi, df) < p && hi < 1e300) hi *= 2;
  for (int i = 0; i < 200 && hi - lo > 1e-12 * hi; ++i) {
    const double mid = 0.5 * (lo + hi);
    (student_t_cdf(mid, df) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double interval_tail(std::size_t runs_a, std::size_t runs_b, double confidence) {
  const double alpha_half = (1.0 - confidence) / 2.0;
  if (runs_a <= 1 && runs_b <= 1) return alpha_half;
  const double k = static_cast<double>(std::max<std::size_t>(2, std::min(runs_a, runs_b)));
  const double df = static_cast<double>(runs_a + runs_b) - 2.0;
  const double z = std::sqrt(k / (k - 1)) * student_t_quantile(1 - alpha_half, df);
  return 0.5 * std::erfc(z / std::sqrt(2.0));
}

std::optional<std::pair<double, double>> bootstrap_ratio(const SideSteps& a, const SideSteps& b,
                                                         const CompareOptions& o) {
  if (a.empty() || b.empty() || o.resamples < 10) return std::nullopt;
  for (const SideSteps* side : {&a, &b})
    for (const auto& run : *side)
      if (run.empty()) return std::nullopt;
  std::mt19937_64 rng(o.seed);
  // One buffer per run, sized like it: a run drawn twice in a resample reuses its buffer.
  auto buffers = [](const SideSteps& s) {
    std::vector<std::vector<double>> out;
    for (const auto& r : s) out.emplace_back(r.size());
    return out;
  };
  std::vector<std::vector<double>> buf_a = buffers(a), buf_b = buffers(b);
  auto resampled_centre = [&](const SideSteps& side, std::vector<std::vector<double>>& buf) {
    double sum = 0;
    for (std::size_t i = 0; i < side.size(); ++i) {
      const std::size_t j = side.size() == 1 ? 0 : draw(rng, side.size());
      block_resample(side[j], block_steps_for(side[j].size(), o), rng, buf[j]);
      sum += median_in_place(buf[j]);
    }
    return sum / static_cast<double>(side.size());
  };
  std::vector<double> ratios;
  ratios.reserve(static_cast<std::size_t>(o.resamples));
  for (int i = 0; i < o.resamples; ++i) {
    const double ca = resampled_centre(a, buf_a), cb = resampled_centre(b, buf_b);
    if (!(ca > 0)) return std::nullopt;
    ratios.push_back(cb / ca);
  }
  std::sort(ratios.begin(), ratios.end());
  const double tail = interval_tail(a.size(), b.size(), o.confidence);
  return std::make_pair(exact_quantile_sorted(ratios, tail),
                        exact_quantile_sorted(ratios, 1.0 - tail));
}

std::optional<std::pair<double, double>> bootstrap_median_ratio(const std::vector<double>& a,
                                                                const std::vector<double>& b,
                                                                const CompareOptions& o) {
  return bootstrap_ratio(SideSteps{a}, SideSteps{b}, o);
}

json compare_reports(const json& a, const json& b, const CompareOptions& o) {
  return compare_runs(std::vector<json>{a}, std::vector<json>{b}, o);
}

json compare_runs(const std::vector<json>& a, const std::vector<json>& b, const CompareOptions& o) {
  if (a.empty() || b.empty())
    throw std::invalid_argument("compare_runs: each side needs at least one report");
  const std::string phase = o.phase.empty() ? main_phase(a.front()) : o.phase;
  const std::string pp = rk::pointer(rk::phases, escape_pointer(phase));
  std::string currency = rk::currency;
  for (const auto* side : {&a, &b})
    for (const json& r : *side)
      if (currency == rk::currency)
        currency = string_at(r, rk::pointer(rk::cost, rk::currency), currency);
  struct Metric {
    const char* name;
    std::string pointer;  // "" = the sum of the per-device tensor peaks
    std::string unit;
    const char* better;  // "lower" or "higher"
  };
  const std::vector<Metric> metrics = {
      {"step_time_p50", pp + rk::pointer(rk::step_time_ns, rk::p50), "ns", "lower"},
      {"step_time_mean", pp + rk::pointer(rk::step_time_ns, rk::mean), "ns", "lower"},
      {rk::samples_per_s, pp + rk::pointer(rk::samples_per_s), "samples/s", "higher"},
      {rk::tokens_per_s, pp + rk::pointer(rk::tokens_per_s), "tokens/s", "higher"},
      {rk::peak_rss_bytes, rk::pointer(rk::memory, rk::peak_rss_bytes), "bytes", "lower"},
      {rk::peak_tensor_bytes, "", "bytes", "lower"},
      {"model_bytes", rk::pointer(rk::model, rk::total_bytes), "bytes", "lower"},
      {rk::energy_j, rk::pointer(rk::energy, rk::total_j), "J", "lower"},
      {rk::co2e_kg, rk::pointer(rk::carbon, rk::co2e_kg), "kg CO2e", "lower"},
      {rk::cost, rk::pointer(rk::cost, rk::total), currency, "lower"},
  };
  // A side's figure: the mean over its reports, absent unless every report has it.
  auto side_value = [](const std::vector<json>& side, const Metric& m) -> std::optional<double> {
    double sum = 0;
    for (const json& r : side) {
      const auto v = m.pointer.empty() ? tensor_peak_sum(r) : number_at(r, m.pointer.c_str());
      if (!v) return std::nullopt;
      sum += *v;
    }
    return sum / static_cast<double>(side.size());
  };
  json out = {{rk::phase, phase},
              {"runs_a", a.size()},
              {"runs_b", b.size()},
              {rk::metrics, json::object()}};
  std::vector<std::string> order;
  for (const Metric& m : metrics) {
    const auto va = side_value(a, m), vb = side_value(b, m);
    json ratio = nullptr;
    if (va && vb && *va != 0) ratio = *vb / *va;
    out[rk::metrics][m.name] = {{"a", va ? json(*va) : json(nullptr)},
                                {"b", vb ? json(*vb) : json(nullptr)},
                                {"ratio", ratio},
                                {rk::unit, m.unit},
                                {"better", m.better}};
    order.push_back(m.name);
  }
  out["metric_order"] = order;

  SideSteps sa, sb;
  std::size_t steps_a = 0, steps_b = 0, empty_runs = 0;
  json blocks_a = json::array(), blocks_b = json::array();
  for (const json& r : a) {
    sa.push_back(retained_step_times(r, phase));
    steps_a += sa.back().size();
    empty_runs += sa.back().empty();
    blocks_a.push_back(block_steps_for(sa.back().size(), o));
  }
  for (const json& r : b) {
    sb.push_back(retained_step_times(r, phase));
    steps_b += sb.back().size();
    empty_runs += sb.back().empty();
    blocks_b.push_back(block_steps_for(sb.back().size(), o));
  }
  const bool several = a.size() > 1 || b.size() > 1;
  json st = {{"steps_a", steps_a},
             {"steps_b", steps_b},
             {"runs_a", a.size()},
             {"runs_b", b.size()},
             {"resamples", o.resamples},
             {"confidence", o.confidence},
             {"seed", o.seed},
             {rk::method, several ? "run-level bootstrap, blocks within runs"
                                  : "block bootstrap within each run"},
             {"block_steps_a", blocks_a},
             {"block_steps_b", blocks_b},
             {"tail", interval_tail(a.size(), b.size(), o.confidence)},
             {"run_variance", several ? "measured" : "not measured"},
             {"median_ratio", nullptr},
             {"ci_low", nullptr},
             {"ci_high", nullptr},
             {"significant", nullptr},
             {"speedup", nullptr}};
  std::string verdict;
  if (empty_runs == 0) {
    const double ma = side_centre(sa), mb = side_centre(sb);
    if (ma > 0 && mb > 0) {
      const double r = mb / ma;
      st["median_ratio"] = r;
      st["speedup"] = 1.0 / r;
      if (auto ci = bootstrap_ratio(sa, sb, o)) {
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
    verdict = fmt::format(
        "no confidence interval: {} of {} reports retain no non-warm-up '{}' steps ({} steps in "
        "A, {} in B)",
        empty_runs, a.size() + b.size(), phase, steps_a, steps_b);
  st["verdict"] = verdict;
  if (!several && st["ci_low"].is_number()) st["note"] = kOneRunNote;
  out["step_time"] = std::move(st);
  return out;
}

std::optional<bool> apply_slower_gate(json& c, double pct) {
  const json& st = c["step_time"];
  const double limit = 1.0 + pct / 100.0;
  bool failed = false;
  std::string basis;
  if (st["median_ratio"].is_number() && st["ci_low"].is_number()) {
    failed = st["median_ratio"].get<double>() > limit && st["ci_low"].get<double>() > 1.0;
    basis = "step-time ratio and its bootstrap confidence interval";
  } else if (c[rk::metrics]["step_time_p50"]["ratio"].is_number()) {
    failed = c[rk::metrics]["step_time_p50"]["ratio"].get<double>() > limit;
    basis = "the reports' p50 ratio (no retained steps, no confidence interval)";
  } else {
    return std::nullopt;
  }
  c["gate"] = {{"fail_if_slower_pct", pct}, {"failed", failed}, {"basis", basis}};
  return failed;
}

std::string render_comparison(const json& c) {
  std::string out = fmt::format("phase: {}  (A: {} report{}, B: {} report{})\n",
                                c.value(rk::phase, std::string()), c.value("runs_a", 1),
                                c.value("runs_a", 1) == 1 ? "" : "s", c.value("runs_b", 1),
                                c.value("runs_b", 1) == 1 ? "" : "s");
  out += fmt::format("{:<20} {:>16} {:>16} {:>10}\n", "metric", "A", "B", "B/A");
  for (const auto& name : c["metric_order"]) {
    const json& m = c[rk::metrics][name.get<std::string>()];
    out += fmt::format("{:<20} {:>16} {:>16} {:>10}\n", name.get<std::string>(),
                       value_text(m["a"], m), value_text(m["b"], m), ratio_text(m["ratio"]));
  }
  const json& st = c["step_time"];
  out += "step time (B vs A): " + st.value("verdict", std::string()) + "\n";
  if (const std::string method = method_text(st); !method.empty())
    out += "  method: " + method + "\n";
  if (st.contains("note")) out += "  note: " + st["note"].get<std::string>() + "\n";
  if (c.contains("gate"))
    out +=
        fmt::format("gate --fail-if-slower {}: {}\n", c["gate"]["fail_if_slower_pct"].get<double>(),
                    c["gate"]["failed"].get<bool>() ? "FAILED" : "passed");
  return out;
}

std::string render_comparison_markdown(const json& c) {
  const json& st = c["step_time"];
  std::string out = fmt::format("### trainmeter compare: {}\n\n",
                                markdown_escape(st.value("verdict", std::string())));
  if (c.contains("gate"))
    out += fmt::format("**Gate `--fail-if-slower {}`: {}**\n\n",
                       c["gate"]["fail_if_slower_pct"].get<double>(),
                       c["gate"]["failed"].get<bool>() ? "FAILED" : "passed");
  auto inputs = [&](const char* side) {
    std::string list;
    if (c.contains(rk::inputs) && c[rk::inputs].contains(side))
      for (const auto& p : c[rk::inputs][side])
        list += (list.empty() ? "" : ", ") + markdown_escape(p.get<std::string>());
    return list;
  };
  out += fmt::format("Phase {}. A: {} report{}{}{}. B: {} report{}{}{}.\n\n",
                     markdown_escape(c.value(rk::phase, std::string())), c.value("runs_a", 1),
                     c.value("runs_a", 1) == 1 ? "" : "s", inputs("a").empty() ? "" : " (",
                     inputs("a").empty() ? "" : inputs("a") + ")", c.value("runs_b", 1),
                     c.value("runs_b", 1) == 1 ? "" : "s", inputs("b").empty() ? "" : " (",
                     inputs("b").empty() ? "" : inputs("b") + ")");
  out += "| metric | A | B | B/A | better |\n|---|---:|---:|---:|---|\n";
  for (const auto& name : c["metric_order"]) {
    const json& m = c[rk::metrics][name.get<std::string>()];
    out += fmt::format("| {} | {} | {} | {} | {} |\n", markdown_escape(name.get<std::string>()),
                       value_text(m["a"], m), value_text(m["b"], m), ratio_text(m["ratio"]),
                       m.value("better", std::string()));
  }
  if (const std::string method = method_text(st); !method.empty())
    out += "\nStep-time interval: " + markdown_escape(method) + ".\n";
  if (st.contains("note"))
    out += "\n_Note: " + markdown_escape(st["note"].get<std::string>()) + "._\n";
  return out;
}

}  // namespace trainmeter::detail
