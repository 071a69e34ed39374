// The HTML report: one file, no network, charts drawn here as inline SVG. A two-line inline script
// records any script error on the root element (data-tm-errors) and counts the rendered charts
// (data-tm-charts), so a headless browser test can read both from the DOM.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <optional>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "export/access.hpp"
#include "export/exports.hpp"
#include "report/findings.hpp"
#include "report/summary.hpp"
#include "report/units.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;

constexpr double kWidth = 760, kHeight = 240;
constexpr double kLeft = 70, kRight = 20, kTop = 20, kBottom = 40;
// Charts stay light in the browser: polylines keep at most this many points (every k-th step).
constexpr std::size_t kMaxPolylinePoints = 4000;

std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string or_na(std::optional<double> v, const std::string& (*)(double) = nullptr) {
  return v ? fmt::format("{:.6g}", *v) : std::string("n/a");
}

struct Axis {
  double lo, hi;
  double map(double v, double a, double b) const {
    return hi > lo ? a + (v - lo) / (hi - lo) * (b - a) : (a + b) / 2;
  }
};

std::string svg_open(const std::string& id, const std::string& title) {
  return fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" "
      "height=\"{}\" "
      "viewBox=\"0 0 {} {}\" role=\"img\"><title>{}</title>"
      "<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"#fafafa\"/>",
      id, kWidth, kHeight, kWidth, kHeight, esc(title), kWidth, kHeight);
}

std::string axes(const std::string& x_label, const std::string& y_label, const std::string& y_lo,
                 const std::string& y_hi, const std::string& x_lo, const std::string& x_hi) {
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  std::string s = fmt::format(
      "<g class=\"axes\" stroke=\"#444\" stroke-width=\"1\"><line x1=\"{0}\" y1=\"{2}\" x2=\"{1}\" "
      "y2=\"{2}\"/>"
      "<line x1=\"{0}\" y1=\"{2}\" x2=\"{0}\" y2=\"{3}\"/></g>",
      x0, x1, y0, y1);
  s += fmt::format(
      "<g font-family=\"sans-serif\" font-size=\"11\" fill=\"#222\">"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>"
      "<text x=\"{}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>"
      "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>"
      "<text x=\"12\" y=\"{}\" transform=\"rotate(-90 12 {})\" "
      "text-anchor=\"middle\">{}</text></g>",
      x0 - 4, y0, esc(y_lo), x0 - 4, y1 + 8, esc(y_hi), x0, y0 + 14, esc(x_lo), x1, y0 + 14,
      esc(x_hi), (x0 + x1) / 2, kHeight - 6, esc(x_label), (y0 + y1) / 2, (y0 + y1) / 2,
      esc(y_label));
  return s;
}

std::string empty_chart(const std::string& id, const std::string& title, const std::string& why) {
  return svg_open(id, title) +
         fmt::format(
             "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-family=\"sans-serif\" "
             "font-size=\"13\" fill=\"#666\">{}</text></svg>",
             kWidth / 2, kHeight / 2, esc(why));
}

// Each phase its own colour in the step chart, in the order the report lists the phases (never
// the warm-up orange, #ff7f0e, nor the histogram's green).
constexpr const char* kPhaseColours[] = {"#1f77b4", "#8c564b", "#17becf",
                                         "#e377c2", "#bcbd22", "#7f7f7f"};

// What the charts draw of each retained step, kept instead of the step's JSON (about 70 bytes a
// step against 1.5 KiB), so a page of any length is made with the steps read one at a time.
// A field the step does not carry (or carries as something else than a number) is NaN.
struct PageStep {
  double index = NAN, wall_ns = NAN, start_ns = NAN, samples = NAN, loss = NAN, tensor = NAN;
  std::uint32_t phase = 0;                     // into PageSteps::phases
  std::uint32_t cuda_begin = 0, cuda_end = 0;  // into PageSteps::cuda
  bool warmup = false;
};

struct PageSteps {
  std::vector<PageStep> steps;
  std::vector<std::string> phases;  // each distinct "phase" value ("" where absent)
  std::vector<std::string> cuda_keys;
  std::vector<std::pair<std::uint32_t, double>> cuda;  // (cuda_keys index, peak bytes)

  void add(const json& s) {
    auto num = [&](const char* key) {
      const auto v = number_at(s, rk::pointer(key));
      return v ? *v : NAN;
    };
    PageStep p;
    p.index = num(rk::index);
    p.wall_ns = num(rk::wall_ns);
    p.start_ns = num(rk::start_offset_ns);
    p.samples = num(rk::samples);
    p.loss = num(rk::loss);
    p.tensor = num(rk::peak_tensor_bytes);
    const json* warm = json_at(s, rk::pointer(rk::warmup));
    p.warmup = warm != nullptr && warm->is_boolean() && warm->get<bool>();
    p.phase = intern(phases, string_at(s, rk::pointer(rk::phase)));
    p.cuda_begin = static_cast<std::uint32_t>(cuda.size());
    if (const json* c = json_at(s, rk::pointer(rk::peak_cuda_tensor_bytes)); c && c->is_object())
      for (auto it = c->begin(); it != c->end(); ++it)
        if (it->is_number()) cuda.emplace_back(intern(cuda_keys, it.key()), it->get<double>());
    p.cuda_end = static_cast<std::uint32_t>(cuda.size());
    steps.push_back(p);
  }
  const std::string& phase(const PageStep& p) const { return phases[p.phase]; }

 private:
  static std::uint32_t intern(std::vector<std::string>& list, const std::string& v) {
    const auto it = std::find(list.begin(), list.end(), v);
    if (it != list.end()) return static_cast<std::uint32_t>(it - list.begin());
    list.push_back(v);
    return static_cast<std::uint32_t>(list.size() - 1);
  }
};

struct StepPoint {
  double index, wall_ms;
  bool warmup;
};

/// Retained steps of `phase` (every phase when empty).
std::vector<StepPoint> step_points(const PageSteps& steps, const std::string& phase) {
  std::vector<StepPoint> out;
  for (const PageStep& s : steps.steps) {
    if (!phase.empty() && steps.phase(s) != phase) continue;
    if (std::isnan(s.index) || std::isnan(s.wall_ns)) continue;
    out.push_back({s.index, s.wall_ns / 1e6, s.warmup});
  }
  return out;
}

std::string step_series_chart(const json& report, const PageSteps& steps) {
  std::vector<std::pair<std::string, std::vector<StepPoint>>> phases;
  if (const json* ps = json_at(report, rk::pointer(rk::phases)); ps && ps->is_object())
    for (auto it = ps->begin(); it != ps->end(); ++it) {
      auto p = step_points(steps, it.key());
      if (!p.empty()) phases.emplace_back(it.key(), std::move(p));
    }
  const std::string title =
      phases.size() == 1 ? "Step time per step, phase " + phases[0].first : "Step time per step";
  if (phases.empty()) return empty_chart("chart-step-times", title, "no retained steps");
  const std::vector<StepPoint> pts = step_points(steps, "");
  Axis x{pts.front().index, pts.back().index}, y{0, 0};
  for (const auto& p : pts) {
    x.lo = std::min(x.lo, p.index);
    x.hi = std::max(x.hi, p.index);
    y.hi = std::max(y.hi, p.wall_ms);
  }
  if (y.hi <= 0) y.hi = 1;
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  std::string s = svg_open("chart-step-times", title);
  s += axes("step index", "ms", "0", fmt::format("{:.3g}", y.hi), fmt::format("{:.0f}", x.lo),
            fmt::format("{:.0f}", x.hi));
  const std::size_t stride = std::max<std::size_t>(1, pts.size() / kMaxPolylinePoints + 1);
  std::string legend;
  for (std::size_t ph = 0; ph < phases.size(); ++ph) {
    const auto& list = phases[ph].second;
    const char* colour = kPhaseColours[ph % (sizeof kPhaseColours / sizeof *kPhaseColours)];
    std::string line;
    for (std::size_t i = 0; i < list.size(); i += stride) {
      if (list[i].warmup) continue;
      line += fmt::format("{:.1f},{:.1f} ", x.map(list[i].index, x0, x1),
                          y.map(list[i].wall_ms, y0, y1));
    }
    s += fmt::format(
        "<polyline class=\"steps\" fill=\"none\" stroke=\"{}\" stroke-width=\"1\" "
        "points=\"{}\"/>",
        colour, line);
    legend += fmt::format("<text x=\"{}\" y=\"{}\" fill=\"{}\" class=\"phase-legend\">{}</text>",
                          kWidth - kRight - 4, kTop + 12 + 13.0 * static_cast<double>(ph), colour,
                          esc(phases[ph].first));
  }
  s += "<g font-family=\"sans-serif\" font-size=\"11\" text-anchor=\"end\">" + legend + "</g>";
  std::size_t warm = 0;
  for (const auto& p : pts) {
    if (!p.warmup) continue;
    ++warm;
    s += fmt::format(
        "<circle class=\"warmup\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" "
        "fill=\"#ff7f0e\"><title>warm-up step {:.0f}: {:.4g} ms</title></circle>",
        x.map(p.index, x0, x1), y.map(p.wall_ms, y0, y1), p.index, p.wall_ms);
  }
  s += fmt::format(
      "<g font-family=\"sans-serif\" font-size=\"11\"><text x=\"{}\" y=\"14\" "
      "fill=\"#222\">steps{}</text>"
      "<text x=\"{}\" y=\"14\" fill=\"#ff7f0e\">warm-up ({} step{}, excluded from "
      "statistics)</text></g>",
      kLeft + 10, stride > 1 ? fmt::format(" (every {}th shown)", stride) : "", kLeft + 180, warm,
      warm == 1 ? "" : "s");
  return s + "</svg>";
}

// Bins of equal width on a log axis (step times spread over decades: a 1 ms step and a 1 s
// checkpoint step both stay visible), with the phase's p50, p90 and p99 marked.
std::string histogram_chart(const json& report, const std::vector<StepPoint>& pts,
                            const std::string& phase) {
  const std::string title = "Step-time histogram, phase " + phase + ", warm-up excluded";
  std::vector<double> v;
  for (const auto& p : pts)
    if (!p.warmup) v.push_back(p.wall_ms);
  if (v.empty()) return empty_chart("chart-histogram", title, "no retained non-warm-up steps");
  const auto [mn, mx] = std::minmax_element(v.begin(), v.end());
  const double lo = std::max(*mn, 1e-6), hi = std::max(*mx, lo);  // log axis: lo > 0
  const int bins = v.size() < 30 ? std::max<int>(1, static_cast<int>(v.size())) : 30;
  const double span = std::log(hi / lo);
  auto at_fraction = [&](double f) { return lo * std::exp(span * f); };
  std::vector<std::size_t> counts(static_cast<std::size_t>(bins), 0);
  for (double x : v) {
    int b = span > 0 ? static_cast<int>(std::log(std::max(x, lo) / lo) / span * bins) : 0;
    counts[static_cast<std::size_t>(std::clamp(b, 0, bins - 1))]++;
  }
  const double top = double(*std::max_element(counts.begin(), counts.end()));
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  std::string s = svg_open("chart-histogram", title);
  s += axes("step time (ms, log scale)", rk::steps, "0", fmt::format("{:.0f}", top),
            fmt::format("{:.4g}", lo), fmt::format("{:.4g}", hi));
  const double bw = (x1 - x0) / bins;
  for (int b = 0; b < bins; ++b) {
    const double h = (y0 - y1) * double(counts[b]) / top;
    const double from = at_fraction(double(b) / bins), to = at_fraction(double(b + 1) / bins);
    s += fmt::format(
        "<rect class=\"bin\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
        "fill=\"#2ca02c\">"
        "<title>{:.4g}-{:.4g} ms: {} steps</title></rect>",
        x0 + b * bw + 0.5, y0 - h, std::max(bw - 1, 0.5), h, from, to, counts[b]);
  }
  const json* stats = json_at(report, rk::pointer(rk::phases));
  stats = stats != nullptr && stats->is_object() && stats->contains(phase)
              ? json_at((*stats)[phase], rk::pointer(rk::step_time_ns))
              : nullptr;
  int k = 0;
  for (const char* q : {rk::p50, rk::p90, rk::p99}) {
    const auto ns = stats != nullptr ? number_at(*stats, (std::string("/") + q).c_str())
                                     : std::optional<double>();
    ++k;
    if (!ns) continue;
    const double ms = std::clamp(*ns / 1e6, lo, hi);
    const double x = span > 0 ? x0 + (x1 - x0) * std::log(ms / lo) / span : (x0 + x1) / 2;
    s += fmt::format(
        "<line class=\"percentile\" x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" "
        "stroke=\"#222\" stroke-dasharray=\"4 3\"/><text x=\"{0:.1f}\" y=\"{3}\" "
        "font-family=\"sans-serif\" font-size=\"11\" text-anchor=\"middle\">{4} {5}</text>",
        x, y0, y1 + 10 * k, y1 + 10 * k - 2, q, esc(format_duration_ns(*ns)));
  }
  return s + "</svg>";
}

// One line of a time chart: its name in the legend, its colour and CSS class, a note written
// beside the name ("estimated"), and its points (x seconds since the run's start, y value).
struct TimeSeries {
  std::string name, colour, css_class, note;
  std::vector<std::pair<double, double>> pts;
};

// Lines over the run's time on one linear axis from 0; `absent` names the series this report
// does not have, written in the legend as "not measured" (never drawn as zeros).
std::string time_chart(const std::string& id, const std::string& title, const std::string& y_label,
                       std::string (*y_format)(double, int), const std::vector<TimeSeries>& series,
                       const std::vector<std::string>& absent, const std::string& why_empty) {
  Axis x{INFINITY, -INFINITY}, y{0, 0};
  for (const auto& ts : series)
    for (const auto& [t, v] : ts.pts) {
      x.lo = std::min(x.lo, t);
      x.hi = std::max(x.hi, t);
      y.hi = std::max(y.hi, v);
    }
  if (!std::isfinite(x.lo)) return empty_chart(id, title, why_empty);
  if (y.hi <= 0) y.hi = 1;
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  std::string s = svg_open(id, title);
  s += axes("seconds since start", y_label, "0", y_format(y.hi, 3), fmt::format("{:.3g}", x.lo),
            fmt::format("{:.3g}", x.hi));
  std::string legend;
  std::size_t k = 0;
  for (const auto& ts : series) {
    if (ts.pts.empty()) continue;
    const std::size_t stride = ts.pts.size() / kMaxPolylinePoints + 1;
    std::string line;
    for (std::size_t i = 0; i < ts.pts.size(); i += stride)
      line += fmt::format("{:.1f},{:.1f} ", x.map(ts.pts[i].first, x0, x1),
                          y.map(ts.pts[i].second, y0, y1));
    s += fmt::format(
        "<polyline class=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
        "points=\"{}\"><title>{}</title></polyline>",
        ts.css_class, ts.colour, line, esc(ts.name));
    // A solid swatch beside the name: exact colour pixels a screenshot test can find.
    legend += fmt::format(
        "<rect class=\"swatch\" x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\" fill=\"{}\" class=\"series-legend\">{}{}</text>",
        kWidth - kRight - 12, kTop + 3 + 13.0 * static_cast<double>(k), ts.colour,
        kWidth - kRight - 16, kTop + 12 + 13.0 * static_cast<double>(k), ts.colour, esc(ts.name),
        esc(ts.note.empty() ? "" : " " + ts.note));
    ++k;
  }
  for (const auto& name : absent)
    legend += fmt::format(
        "<text x=\"{}\" y=\"{}\" fill=\"#666\" class=\"series-absent\">{}: not measured</text>",
        kWidth - kRight - 16, kTop + 12 + 13.0 * static_cast<double>(k++), esc(name));
  s += "<g font-family=\"sans-serif\" font-size=\"11\" text-anchor=\"end\">" + legend + "</g>";
  return s + "</svg>";
}

// Memory over time: RSS from memory.timeline, and from the retained steps each step's peak
// tensor bytes (CPU allocator) and peak CUDA tensor bytes per device, at the step's end.
std::string memory_chart(const json& report, const PageSteps& steps) {
  std::vector<TimeSeries> series;
  std::vector<std::string> absent;
  TimeSeries rss{"RSS", "#9467bd", "rss", "", {}};
  if (const json* points = json_at(report, rk::pointer(rk::memory, rk::timeline, rk::points));
      points && points->is_array())
    for (const auto& p : *points)
      if (p.is_array() && p.size() >= 2 && p[0].is_number() && p[1].is_number())
        rss.pts.emplace_back(p[0].get<double>() / 1e9, p[1].get<double>());
  TimeSeries tensors{"tensors (CPU)", "#e9a400", "tensors", "per-step peak", {}};
  std::vector<TimeSeries> cuda;
  for (const PageStep& st : steps.steps) {
    if (std::isnan(st.start_ns) || std::isnan(st.wall_ns)) continue;
    const double end_s = (st.start_ns + st.wall_ns) / 1e9;
    if (!std::isnan(st.tensor)) tensors.pts.emplace_back(end_s, st.tensor);
    for (std::uint32_t k = st.cuda_begin; k < st.cuda_end; ++k) {
      const std::string& device = steps.cuda_keys[steps.cuda[k].first];
      auto at = std::find_if(cuda.begin(), cuda.end(),
                             [&](const TimeSeries& x) { return x.css_class == device; });
      if (at == cuda.end()) {
        static constexpr const char* kCudaColours[] = {"#118ab2", "#06d6a0", "#073b4c"};
        cuda.push_back({"tensors (" + device + ")",
                        kCudaColours[cuda.size() % 3],
                        device,
                        "per-step peak",
                        {}});
        at = cuda.end() - 1;
      }
      at->pts.emplace_back(end_s, steps.cuda[k].second);
    }
  }
  for (auto& ts : cuda) ts.css_class = rk::cuda;
  for (TimeSeries* ts : {&rss, &tensors}) {
    if (ts->pts.empty())
      absent.push_back(ts->name);
    else
      series.push_back(std::move(*ts));
  }
  // A machine with a GPU (or a report with a CUDA memory section) whose steps carry no CUDA
  // tensor bytes: said, not drawn.
  const json* gpus = json_at(report, rk::pointer(rk::host, rk::gpus));
  const json* mem_cuda = json_at(report, rk::pointer(rk::memory, rk::cuda));
  if (cuda.empty() && ((mem_cuda != nullptr && !mem_cuda->is_null()) ||
                       (gpus != nullptr && gpus->is_array() && !gpus->empty())))
    absent.push_back("tensors (CUDA)");
  for (auto& ts : cuda) series.push_back(std::move(ts));
  return time_chart("chart-memory", "Memory over the run", "bytes", format_bytes, series, absent,
                    "memory over time not measured");
}

// Each component its own colour in the energy and power charts (none of the phase, warm-up,
// histogram or memory colours).
constexpr const char* kComponentColours[] = {"#b5179e", "#2a9d8f", "#e76f51",
                                             "#264653", "#f4a261", "#6a4c93"};

// Energy and power over time per component, from the energy timeline's rows (cumulative
// attributed joules per component; a recovered report has only the total). Power is constant
// within each sample interval, so it is drawn as steps.
std::string energy_time_charts(const json& report) {
  const json* tl = json_at(report, rk::pointer(rk::energy, rk::timeline));
  if (tl == nullptr || json_at(*tl, rk::pointer(rk::rows)) == nullptr)
    tl = json_at(report, "/energy/recovered_timeline");
  const json* cols = tl != nullptr ? json_at(*tl, rk::pointer(rk::columns)) : nullptr;
  const json* rows = tl != nullptr ? json_at(*tl, rk::pointer(rk::rows)) : nullptr;
  std::vector<TimeSeries> energy, power;
  std::vector<std::string> absent;
  bool total_only = false;  // a recovered report: the selected components' sum only
  auto provenance = [&](const std::string& name) {
    if (const json* comps = json_at(report, rk::pointer(rk::energy, rk::components));
        comps && comps->is_array())
      for (const auto& c : *comps)
        if (string_at(c, rk::pointer(rk::name)) == name)
          return string_at(c, rk::pointer(rk::provenance));
    return std::string();
  };
  if (cols != nullptr && cols->is_array() && rows != nullptr && rows->is_array())
    for (std::size_t c = 1; c < cols->size(); ++c) {
      std::string name = (*cols)[c].is_string() ? (*cols)[c].get<std::string>() : "?";
      total_only = total_only || name == rk::total_j;
      if (name == rk::total_j) name = rk::total;
      const bool estimated = provenance(name) == "estimated";
      const char* colour = kComponentColours[(c - 1) % std::size(kComponentColours)];
      TimeSeries e{name, colour, "energy-line", estimated ? "(estimated)" : "", {}};
      TimeSeries p{name, colour, "power-line", e.note, {}};
      double last_t = NAN, last_j = NAN;
      for (const auto& r : *rows) {
        if (!r.is_array() || r.size() <= c || !r[0].is_number() || !r[c].is_number()) continue;
        const double t = r[0].get<double>() / 1e9, j = r[c].get<double>();
        e.pts.emplace_back(t, j);
        if (std::isfinite(last_t) && t > last_t) {
          const double w = std::max(0.0, (j - last_j) / (t - last_t));
          p.pts.emplace_back(last_t, w);
          p.pts.emplace_back(t, w);
        }
        last_t = t;
        last_j = j;
      }
      energy.push_back(std::move(e));
      power.push_back(std::move(p));
    }
  // Components of the report that the timeline does not carry.
  if (const json* comps = json_at(report, rk::pointer(rk::energy, rk::components));
      comps && comps->is_array())
    for (const auto& comp : *comps) {
      const std::string name = string_at(comp, rk::pointer(rk::name), "?");
      const bool drawn = std::any_of(energy.begin(), energy.end(), [&](const TimeSeries& x) {
        return x.name == name && !x.pts.empty();
      });
      if (!drawn && !total_only) absent.push_back(name + " over time");
    }
  const std::string why = json_at(report, rk::pointer(rk::energy, rk::components)) == nullptr
                              ? "energy not measured"
                              : "energy over time not measured";
  return time_chart("chart-energy-time", "Energy over the run, per component (cumulative)",
                    rk::energy, format_energy_j, energy, absent, why) +
         time_chart("chart-power", "Power over the run, per component (mean per sample interval)",
                    "power", format_power_w, power, absent, why);
}

// Throughput over time per phase: windows of consecutive non-warm-up steps, samples (or steps
// when no step counts samples) over the elapsed time from the window's first start to its last
// end, so time between steps (waiting for input) lowers it.
std::string throughput_chart(const json& report, const PageSteps& steps) {
  struct Step {
    double start_s, end_s, samples;
  };
  std::vector<std::string> names;
  if (const json* ps = json_at(report, rk::pointer(rk::phases)); ps && ps->is_object())
    for (auto it = ps->begin(); it != ps->end(); ++it) names.push_back(it.key());
  std::vector<std::vector<Step>> by_phase(names.size());
  bool any_samples = false;
  for (const PageStep& st : steps.steps) {
    const auto ph = std::find(names.begin(), names.end(), steps.phase(st));
    if (ph == names.end() || std::isnan(st.start_ns) || std::isnan(st.wall_ns) || st.warmup)
      continue;
    const double n = std::isnan(st.samples) ? 0 : st.samples;
    any_samples = any_samples || n > 0;
    by_phase[static_cast<std::size_t>(ph - names.begin())].push_back(
        {st.start_ns / 1e9, (st.start_ns + st.wall_ns) / 1e9, n});
  }
  std::vector<TimeSeries> series;
  std::string window_note;
  for (std::size_t ph = 0; ph < names.size(); ++ph) {
    auto& list = by_phase[ph];
    if (list.empty()) continue;
    std::sort(list.begin(), list.end(),
              [](const Step& a, const Step& b) { return a.start_s < b.start_s; });
    const std::size_t k = std::max<std::size_t>(1, list.size() / 100);
    TimeSeries ts{names[ph],
                  kPhaseColours[ph % std::size(kPhaseColours)],
                  "throughput",
                  k > 1 ? fmt::format("(windows of {} steps)", k) : "",
                  {}};
    for (std::size_t i = 0; i + k <= list.size(); i += k) {
      double n = 0;
      for (std::size_t j = i; j < i + k; ++j) n += any_samples ? list[j].samples : 1;
      const double span = list[i + k - 1].end_s - list[i].start_s;
      if (span > 0) ts.pts.emplace_back(list[i + k - 1].end_s, n / span);
    }
    series.push_back(std::move(ts));
  }
  const char* unit = any_samples ? "samples/s" : "steps/s";
  return time_chart(
      "chart-throughput", std::string("Throughput over the run (") + unit + ", warm-up excluded)",
      unit, [](double v, int digits) { return fmt::format("{:.{}g}", v, digits); }, series, {},
      "no retained non-warm-up steps");
}

std::string energy_chart(const json& report) {
  const std::string title = "Energy by component (attributed to this process)";
  std::vector<std::pair<std::string, double>> bars;
  std::vector<std::string> labels;
  std::vector<bool> estimated;  // "estimated" is written next to the figure, not only in the title
  if (const json* comps = json_at(report, rk::pointer(rk::energy, rk::components));
      comps && comps->is_array())
    for (const auto& c : *comps)
      if (auto e = number_at(c, rk::pointer(rk::energy_j))) {
        bars.emplace_back(string_at(c, rk::pointer(rk::name), "?"), *e);
        labels.push_back(string_at(c, rk::pointer(rk::provenance)) + ", " +
                         string_at(c, rk::pointer(rk::source)));
        estimated.push_back(string_at(c, rk::pointer(rk::provenance)) == "estimated");
      }
  if (bars.empty()) return empty_chart("chart-energy", title, "energy not measured");
  double top = 0;
  for (const auto& b : bars) top = std::max(top, b.second);
  if (top <= 0) top = 1;
  const double row = std::min(36.0, (kHeight - kTop - 10) / double(bars.size()));
  const double x0 = 150, x1 = kWidth - 140;
  std::string s = svg_open("chart-energy", title);
  for (std::size_t i = 0; i < bars.size(); ++i) {
    const double y = kTop + i * row;
    const double w = (x1 - x0) * bars[i].second / top;
    s += fmt::format(
        "<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\" font-family=\"sans-serif\" "
        "font-size=\"12\">{}</text>"
        "<rect class=\"bar\" x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
        "fill=\"#d62728\"><title>{}</title></rect>"
        "<text x=\"{:.1f}\" y=\"{:.1f}\" font-family=\"sans-serif\" font-size=\"12\">{}</text>",
        x0 - 6, y + row * 0.6, esc(bars[i].first), x0, y + 2, std::max(w, 1.0), row - 6,
        esc(labels[i]), x0 + std::max(w, 1.0) + 6, y + row * 0.6,
        esc(format_energy_j(bars[i].second) + (estimated[i] ? " (estimated)" : "")));
  }
  return s + "</svg>";
}

std::string row(const std::string& k, const std::string& v) {
  return "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>";
}

// The loss of every retained step that has one, against the step index, each phase in its
// colour. Only drawn when some step has a loss.
std::string loss_chart(const json& report, const PageSteps& steps) {
  std::vector<std::string> names;
  if (const json* ps = json_at(report, rk::pointer(rk::phases)); ps && ps->is_object())
    for (auto it = ps->begin(); it != ps->end(); ++it) names.push_back(it.key());
  std::vector<std::vector<std::pair<double, double>>> by_phase(names.size());
  Axis x{INFINITY, -INFINITY}, y{INFINITY, -INFINITY};
  for (const PageStep& st : steps.steps) {
    const auto ph = std::find(names.begin(), names.end(), steps.phase(st));
    if (std::isnan(st.index) || std::isnan(st.loss) || ph == names.end()) continue;
    by_phase[static_cast<std::size_t>(ph - names.begin())].emplace_back(st.index, st.loss);
    x.lo = std::min(x.lo, st.index);
    x.hi = std::max(x.hi, st.index);
    y.lo = std::min(y.lo, st.loss);
    y.hi = std::max(y.hi, st.loss);
  }
  if (!std::isfinite(x.lo)) return "";
  const double x0 = kLeft, x1 = kWidth - kRight, y0 = kHeight - kBottom, y1 = kTop;
  std::string s = svg_open("chart-loss", "Loss per step");
  s += axes("step index", rk::loss, fmt::format("{:.4g}", y.lo), fmt::format("{:.4g}", y.hi),
            fmt::format("{:.0f}", x.lo), fmt::format("{:.0f}", x.hi));
  for (std::size_t ph = 0; ph < by_phase.size(); ++ph) {
    if (by_phase[ph].empty()) continue;
    const std::size_t stride = by_phase[ph].size() / kMaxPolylinePoints + 1;
    std::string line;
    for (std::size_t i = 0; i < by_phase[ph].size(); i += stride)
      line += fmt::format("{:.1f},{:.1f} ", x.map(by_phase[ph][i].first, x0, x1),
                          y.map(by_phase[ph][i].second, y0, y1));
    s += fmt::format(
        "<polyline class=\"loss\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\" "
        "points=\"{}\"><title>{}</title></polyline>",
        kPhaseColours[ph % (sizeof kPhaseColours / sizeof *kPhaseColours)], line, esc(names[ph]));
  }
  return "<section id=\"loss\"><h2>Loss</h2>" + s + "</svg></section>\n";
}

std::string model_section(const json& report) {
  const json* m = json_at(report, rk::pointer(rk::model));
  std::string h = "<section id=\"model\"><h2>Model</h2><table>";
  if (m == nullptr || !m->is_object())
    return h + row(rk::model, "n/a (not described)") + "</table></section>\n";
  h += row(rk::name, string_at(*m, rk::pointer(rk::name), "n/a"));
  h += row(rk::parameters, or_na(number_at(*m, rk::pointer(rk::parameters))) + " (" +
                               or_na(number_at(*m, rk::pointer(rk::trainable_parameters))) +
                               " trainable)");
  if (const auto b = number_at(*m, rk::pointer(rk::parameter_bytes)))
    h += row("parameter bytes", format_bytes(*b));
  if (const auto b = number_at(*m, rk::pointer(rk::buffer_bytes)))
    h += row("buffer bytes", format_bytes(*b));
  if (const json* d = json_at(*m, rk::pointer(rk::bytes_by_dtype)); d && d->is_object())
    for (auto it = d->begin(); it != d->end(); ++it)
      if (it->is_number()) h += row("bytes, " + it.key(), format_bytes(it->get<double>()));
  if (const auto a = number_at(*m, rk::pointer(rk::optimizer_state_bytes_estimate, rk::adam)))
    h += row("Adam state", format_bytes(*a) + " (estimated)");
  if (const auto a =
          number_at(*m, rk::pointer(rk::optimizer_state_bytes_estimate, rk::sgd_momentum)))
    h += row("SGD momentum state", format_bytes(*a) + " (estimated)");
  if (const auto z = number_at(*m, rk::pointer(rk::zero_fraction)))
    h += row("zero fraction", fmt::format("{:.3g}", *z));
  return h + "</table></section>\n";
}

// A merged distributed report: one row per rank.
std::string ranks_section(const json& report) {
  const json* per = json_at(report, rk::pointer(rk::ranks, rk::per_rank));
  if (per == nullptr || !per->is_array()) return "";
  const json view = ranks_view(report);
  const std::string phase = view.is_object() ? view[rk::phase].get<std::string>() : "";
  std::string h = fmt::format(
      "<section id=\"ranks\"><h2>Ranks</h2><table><tr><th>rank</th><th>host</th><th>status</th>"
      "<th>duration</th><th>steps</th><th>{} step p50</th><th>mean</th><th>max</th><th>slowest "
      "steps</th><th>energy</th><th>CO2e</th></tr>",
      esc(phase));
  auto ns = [](const json& v) {
    return v.is_number() ? format_duration_ns(v.get<double>()) : std::string("n/a");
  };
  for (std::size_t i = 0; i < per->size(); ++i) {
    const json& r = (*per)[i];
    const json& v =
        view.is_object() && i < view[rk::per_rank].size() ? view[rk::per_rank][i] : json();
    const auto dur = number_at(r, rk::pointer(rk::duration_s));
    const auto e = number_at(r, rk::pointer(rk::energy_j));
    const auto kg = number_at(r, rk::pointer(rk::co2e_kg));
    h += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
        "td><td>{}</td><td>{}</td><td>{}</td></tr>",
        or_na(number_at(r, rk::pointer(rk::rank))), esc(string_at(r, rk::pointer(rk::hostname))),
        esc(string_at(r, rk::pointer(rk::status))), dur ? format_duration_s(*dur) : "n/a",
        or_na(number_at(r, rk::pointer(rk::steps_recorded))), ns(v.value(rk::p50_ns, json())),
        ns(v.value("mean_ns", json())), ns(v.value(rk::max_ns, json())),
        or_na(number_at(r, rk::pointer(rk::slowest_steps))), e ? format_energy_j(*e) : "n/a",
        kg ? format_co2e_kg(*kg) : "n/a");
  }
  h += "</table>";
  if (const auto s = number_at(report, rk::pointer(rk::ranks, rk::straggler_rank)))
    h += "<p>straggler: rank " + or_na(s) + "</p>";
  if (view.is_object() && !view["stragglers"].empty()) {
    h += "<table id=\"stragglers\"><tr><th>rank</th><th>slowest in steps</th><th>share</th></tr>";
    for (const json& s : view["stragglers"])
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>", s[rk::rank].dump(),
                       s[rk::slowest_steps].dump(),
                       s["share"].is_number()
                           ? fmt::format("{:.0f}%", 100 * s["share"].get<double>())
                           : std::string("n/a"));
    h += "</table>";
  }
  if (view.is_object() && !view["per_host"].empty()) {
    auto joules = [](const json& v) {
      return v.is_number() ? format_energy_j(v.get<double>()) : std::string("n/a");
    };
    h += "<table id=\"host-energy\"><tr><th>host</th><th>ranks</th><th>attributed energy</th>"
         "<th>machine energy (counted once)</th></tr>";
    for (const json& x : view["per_host"])
      h += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                       esc(x[rk::host].get<std::string>()), esc(x[rk::ranks].dump()),
                       joules(x[rk::energy_j]), joules(x[rk::machine_energy_j]));
    h += "</table>";
  }
  return h + "</section>\n";
}

std::string findings_section(const json& report) {
  const json section = stored_or_computed_findings(report);
  std::string h = "<section id=\"findings\"><h2>Findings</h2>";
  const json* items = json_at(section, rk::pointer(rk::items));
  if (items == nullptr || !items->is_array() || items->empty())
    return h + "<p>none: no rule found evidence of a problem in this report</p></section>\n";
  h += "<ol class=\"findings\">";
  for (const json& f : *items) {
    if (!f.is_object()) continue;
    const std::string sev = string_at(f, rk::pointer(rk::severity), "info");
    h += fmt::format("<li class=\"finding sev-{}\"><b>[{}] {}</b> {}", esc(sev), esc(sev),
                     esc(string_at(f, rk::pointer(rk::id))),
                     esc(string_at(f, rk::pointer(rk::title))));
    h += "<table class=\"evidence\">";
    if (const json* ev = json_at(f, rk::pointer(rk::evidence)); ev && ev->is_array())
      for (const json& e : *ev)
        h += row(string_at(e, rk::pointer(rk::key)),
                 format_evidence_value(e.contains(rk::value) ? e[rk::value] : json(),
                                       string_at(e, rk::pointer(rk::unit), "")));
    if (const json* t = json_at(f, rk::pointer(rk::try_)); t && t->is_array())
      for (const json& line : *t)
        if (line.is_string()) h += row(rk::try_, line.get<std::string>());
    if (const json* g = json_at(f, rk::pointer(rk::expected_gain)); g && g->is_object()) {
      std::string what;
      if (const auto fr = number_at(*g, rk::pointer(rk::fraction)))
        what = format_evidence_value(*fr, rk::fraction) + ": ";
      h += row("expected gain", what + string_at(*g, rk::pointer(rk::method)));
    }
    h += "</table></li>";
  }
  return h + "</ol></section>\n";
}

std::string render_page(const json& report, const PageSteps& steps) {
  const std::string name = string_at(report, rk::pointer(rk::run, rk::name), rk::run);
  const std::string phase = main_phase(report);
  const std::vector<StepPoint> pts = step_points(steps, phase);
  std::string h;
  h.reserve(64 * 1024 + pts.size() * 40);
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src "
       "'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">";
  h += "<script>window.addEventListener('error',function(e){var r=document.documentElement;"
       "r.setAttribute('data-tm-errors',(r.getAttribute('data-tm-errors')||'')+(e.message||'error')"
       "+';');});</script>";
  h += "<title>trainmeter: " + esc(name) +
       "</title><style>"
       "body{font-family:sans-serif;margin:24px;color:#222;background:#fff}"
       "table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px "
       "8px;text-align:left;vertical-align:top}"
       "th{background:#f0f0f0}section{margin-bottom:28px}.na{color:#888}</style></head><body>\n";
  h += "<h1>trainmeter report: " + esc(name) + "</h1>\n";
  h += findings_section(report);
  h += "<section id=\"run\"><h2>Run</h2><table>";
  h += row("run id", string_at(report, rk::pointer(rk::run, rk::id)));
  h += row(rk::status, string_at(report, rk::pointer(rk::run, rk::status)));
  h += row("start (UTC)", string_at(report, rk::pointer(rk::run, rk::start_utc)));
  h += row("end (UTC)", string_at(report, rk::pointer(rk::run, rk::end_utc), "n/a"));
  if (auto d = number_at(report, rk::pointer(rk::run, rk::duration_s)))
    h += row("duration", format_duration_s(*d));
  if (const auto user = number_at(report, rk::pointer(rk::run, rk::cpu_time_s, rk::user)))
    h += row(
        "process CPU time",
        format_duration_s(*user) + " user, " +
            format_duration_s(
                number_at(report, rk::pointer(rk::run, rk::cpu_time_s, rk::system)).value_or(NAN)) +
            " system");
  if (const json* cmd = json_at(report, rk::pointer(rk::run, rk::command_line));
      cmd && cmd->is_array()) {
    std::string line;
    for (const json& a : *cmd)
      if (a.is_string()) line += (line.empty() ? "" : " ") + a.get<std::string>();
    h += row("command line", line);
  }
  h += row("rank / world size",
           fmt::format(
               "{} / {}", (long long)number_at(report, rk::pointer(rk::run, rk::rank)).value_or(0),
               (long long)number_at(report, rk::pointer(rk::run, rk::world_size)).value_or(1)));
  h += row(rk::host, string_at(report, rk::pointer(rk::host, rk::hostname), "n/a") + " — " +
                         string_at(report, rk::pointer(rk::host, rk::cpu_model), "n/a") + " — " +
                         string_at(report, rk::pointer(rk::host, rk::os), "n/a"));
  if (const json* tags = json_at(report, rk::pointer(rk::run, rk::tags)); tags && tags->is_object())
    for (auto it = tags->begin(); it != tags->end(); ++it)
      h += row("tag " + it.key(), it->is_string() ? it->get<std::string>() : it->dump());
  h += "</table></section>\n";

  h += "<section "
       "id=\"phases\"><h2>Phases</h2><table><tr><th>phase</th><th>steps</th><th>warm-up</th>"
       "<th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>samples/s</th></tr>";
  if (const json* phases = json_at(report, rk::pointer(rk::phases)); phases && phases->is_object())
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      const json& p = it.value();
      auto ns = [&](std::string_view ptr) {
        auto v = number_at(p, ptr);
        return v ? format_duration_ns(*v) : std::string("n/a");
      };
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</"
          "td><td>{}</td></tr>",
          esc(it.key()), or_na(number_at(p, rk::pointer(rk::steps))),
          or_na(number_at(p, rk::pointer(rk::warmup_steps))),
          ns(rk::pointer(rk::step_time_ns, rk::mean)), ns(rk::pointer(rk::step_time_ns, rk::p50)),
          ns(rk::pointer(rk::step_time_ns, rk::p90)), ns(rk::pointer(rk::step_time_ns, rk::p99)),
          or_na(number_at(p, rk::pointer(rk::samples_per_s))));
    }
  h += "</table></section>\n";

  h += "<section id=\"step-times\"><h2>Step time</h2>" + step_series_chart(report, steps) +
       "</section>\n";
  h += loss_chart(report, steps);
  h += "<section id=\"histogram\"><h2>Step-time distribution</h2>" +
       histogram_chart(report, pts, phase) + "</section>\n";
  h += "<section id=\"throughput\"><h2>Throughput</h2>" + throughput_chart(report, steps) +
       "</section>\n";
  h += "<section id=\"memory\"><h2>Memory</h2>" + memory_chart(report, steps) + "<table>";
  h += row("peak RSS",
           number_at(report, rk::pointer(rk::memory, rk::peak_rss_bytes))
               ? format_bytes(*number_at(report, rk::pointer(rk::memory, rk::peak_rss_bytes)))
               : "n/a");
  const auto tensor = tensor_peaks(report);
  if (tensor.empty()) h += row("peak tensor bytes", "n/a");
  for (const auto& [device, bytes] : tensor)
    h += row("peak tensor bytes, " + device, format_bytes(bytes));
  h += "</table></section>\n";
  h += "<section id=\"energy\"><h2>Energy</h2>" + energy_chart(report) +
       energy_time_charts(report) + "<table>";
  bool estimated = false;
  if (const json* comps = json_at(report, rk::pointer(rk::energy, rk::components));
      comps && comps->is_array())
    for (const auto& c : *comps)
      estimated = estimated || string_at(c, rk::pointer(rk::provenance)) == "estimated";
  h += row(rk::total,
           number_at(report, rk::pointer(rk::energy, rk::total_j))
               ? format_energy_j(*number_at(report, rk::pointer(rk::energy, rk::total_j))) +
                     (estimated ? " (estimated: some components are estimates)" : "")
               : "n/a");
  h += "</table></section>\n";
  h += model_section(report);

  h += "<section id=\"carbon\"><h2>Carbon</h2><table>";
  if (json_at(report, rk::pointer(rk::carbon)) == nullptr) {
    h += row("CO2e", "n/a (no carbon section)");
  } else {
    const auto kg = number_at(report, rk::pointer(rk::carbon, rk::co2e_kg));
    h += row("CO2e", kg ? format_co2e_kg(*kg) + (estimated ? " (estimated)" : "") : "n/a");
    h += row("grid intensity",
             or_na(number_at(report, rk::pointer(rk::carbon, rk::intensity_g_per_kwh))) +
                 " g/kWh (" + string_at(report, rk::pointer(rk::carbon, rk::intensity_source)) +
                 ", " + string_at(report, rk::pointer(rk::carbon, rk::region), "no region") + ")");
    h += row(rk::source, string_at(report, rk::pointer(rk::carbon, rk::data_source)) + " " +
                             or_na(number_at(report, rk::pointer(rk::carbon, rk::data_year))));
    h += row("PUE", or_na(number_at(report, rk::pointer(rk::carbon, rk::pue))));
    h += row(rk::formula, string_at(report, rk::pointer(rk::carbon, rk::formula)));
    if (auto km = number_at(report, rk::pointer(rk::carbon, rk::equivalents, rk::car_km)))
      h += row(
          "equivalent",
          fmt::format(
              "{:.4g} km by car ({} g/km, {})", *km,
              or_na(number_at(report, rk::pointer(rk::carbon, rk::equivalents, rk::car_g_per_km))),
              string_at(report, rk::pointer(rk::carbon, rk::equivalents, rk::car_source))));
    if (auto f =
            number_at(report, rk::pointer(rk::carbon, rk::equivalents, rk::car_lifetime_fraction)))
      h += row("equivalent", fmt::format("{:.3g} of a car's lifetime emissions ({})", *f,
                                         string_at(report, rk::pointer(rk::carbon, rk::equivalents,
                                                                       rk::car_lifetime_source))));
  }
  h += "</table></section>\n";
  h += "<section id=\"cost\"><h2>Cost</h2><table>";
  if (json_at(report, rk::pointer(rk::cost)) == nullptr) {
    h += row(rk::cost, "n/a (no prices given)");
  } else {
    const std::string cur = string_at(report, rk::pointer(rk::cost, rk::currency));
    for (const char* part : {rk::compute, rk::energy, rk::total}) {
      const auto v = number_at(report, rk::pointer(rk::cost, part));
      h += row(part, v ? fmt::format("{:.4g} {}", *v, cur) : "n/a");
    }
    h += row(rk::formula, string_at(report, rk::pointer(rk::cost, rk::formula)));
  }
  h += "</table></section>\n";
  h += ranks_section(report);

  h += "<section id=\"diagnostics\"><h2>Diagnostics</h2><table "
       "id=\"diagnostics-table\"><tr><th>source</th><th>status</th><th>count</th><th>message</th></"
       "tr>";
  const json* diags = json_at(report, rk::pointer(rk::diagnostics));
  if (diags == nullptr || !diags->is_array() || diags->empty())
    h += "<tr><td colspan=\"4\">none</td></tr>";
  if (diags != nullptr && diags->is_array())
    for (const auto& d : *diags)
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
          esc(string_at(d, rk::pointer(rk::source))), esc(string_at(d, rk::pointer(rk::status))),
          or_na(number_at(d, rk::pointer(rk::count))), esc(string_at(d, rk::pointer(rk::message))));
  h += "</table></section>\n";
  h += "<section id=\"config\"><h2>Configuration</h2><table>";
  if (const json* cfg = json_at(report, rk::pointer(rk::config));
      cfg && cfg->is_object() && !cfg->empty())
    for (auto it = cfg->begin(); it != cfg->end(); ++it)
      h += row(it.key(), it->is_string() ? it->get<std::string>() : it->dump());
  else
    h += row(rk::config, "none recorded");
  h += "</table></section>\n";
  h += "<footer><small>trainmeter " +
       esc(string_at(report, rk::pointer(rk::trainmeter, rk::version))) + ", report schema " +
       or_na(number_at(report, rk::pointer(rk::schema_version))) + "</small></footer>\n";
  h += "<script>document.documentElement.setAttribute('data-tm-charts',String(document."
       "querySelectorAll('svg.chart').length));</script>\n";
  h += "</body></html>\n";
  return h;
}

}  // namespace

std::string html_page(const json& report) {
  PageSteps steps;
  if (const json* list = json_at(report, rk::pointer(rk::steps)); list && list->is_array())
    for (const auto& s : *list) steps.add(s);
  return render_page(report, steps);
}

std::string write_html_streamed(const json& sections, const StepSource& source,
                                const std::function<void(const std::string&)>& write) {
  PageSteps steps;
  // A report from before the findings section has its findings computed here from its steps,
  // which takes the document of them, as the page did before it was streamed.
  const json* stored = json_at(sections, rk::pointer(rk::findings));
  const bool legacy = stored == nullptr || !stored->is_object();
  json doc;
  json* list = nullptr;
  if (legacy) {
    doc = sections;
    list = &(doc[rk::steps] = json::array());
  }
  const std::string error = source([&](const json& s, std::size_t) {
    steps.add(s);
    if (list != nullptr) list->push_back(s);
  });
  if (!error.empty()) return error;
  write(render_page(legacy ? doc : sections, steps));
  return "";
}

}  // namespace trainmeter::detail
