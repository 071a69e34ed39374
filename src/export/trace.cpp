// Chrome Trace Event Format: steps as complete ("X") events on their recording thread, runs of
// consecutive same-phase steps as enclosing phase events, and memory / step power as counter
// ("C") events. Timestamps are microseconds since the run started (the format's unit).
#include <map>

#include "export/access.hpp"
#include "export/exports.hpp"

namespace trainmeter::detail {

nlohmann::json chrome_trace(const nlohmann::json& report) {
  using nlohmann::json;
  json events = json::array();
  const int pid = static_cast<int>(number_at(report, "/run/rank").value_or(0));
  events.push_back({{"ph", "M"},
                    {"name", "process_name"},
                    {"pid", pid},
                    {"tid", 0},
                    {"args", {{"name", string_at(report, "/run/name", "trainmeter")}}}});

  struct Segment {
    std::string phase;
    double start_us = 0, end_us = 0;
    std::uint64_t steps = 0;
  };
  std::map<long long, Segment> open;  // by thread
  std::vector<std::pair<long long, Segment>> segments;

  const json* steps = json_at(report, "/steps");
  if (steps != nullptr && steps->is_array()) {
    for (const auto& s : *steps) {
      const auto start = number_at(s, "/start_offset_ns");
      const auto wall = number_at(s, "/wall_ns");
      if (!start || !wall) continue;
      const long long tid = static_cast<long long>(number_at(s, "/thread").value_or(0));
      const std::string phase = string_at(s, "/phase", "other");
      const double ts = *start / 1000.0, dur = *wall / 1000.0;
      json args = {{"index", s.value("index", json(nullptr))},
                   {"warmup", s.value("warmup", json(nullptr))}};
      for (const char* key : {"loss", "energy_j", "peak_tensor_bytes", "samples"})
        if (const json* v = json_at(s, (std::string("/") + key).c_str())) args[key] = *v;
      events.push_back({{"ph", "X"},
                        {"cat", "step"},
                        {"name", phase},
                        {"pid", pid},
                        {"tid", tid},
                        {"ts", ts},
                        {"dur", dur},
                        {"args", std::move(args)}});
      if (auto e = number_at(s, "/energy_j"); e && *wall > 0)
        events.push_back({{"ph", "C"},
                          {"name", "power"},
                          {"pid", pid},
                          {"ts", ts},
                          {"args", {{"step_average_w", *e / (*wall * 1e-9)}}}});
      if (auto b = number_at(s, "/peak_tensor_bytes"))
        events.push_back({{"ph", "C"},
                          {"name", "tensor memory"},
                          {"pid", pid},
                          {"ts", ts},
                          {"args", {{"step_peak_bytes", *b}}}});
      auto it = open.find(tid);
      if (it != open.end() && it->second.phase != phase) {
        segments.emplace_back(tid, it->second);
        open.erase(it);
        it = open.end();
      }
      if (it == open.end()) {
        open[tid] = Segment{phase, ts, ts + dur, 1};
      } else {
        it->second.end_us = std::max(it->second.end_us, ts + dur);
        ++it->second.steps;
      }
    }
  }
  for (auto& [tid, seg] : open) segments.emplace_back(tid, seg);
  std::map<long long, bool> named;
  for (const auto& [tid, seg] : segments) {
    events.push_back({{"ph", "X"},
                      {"cat", "phase"},
                      {"name", "phase " + seg.phase},
                      {"pid", pid},
                      {"tid", tid},
                      {"ts", seg.start_us},
                      {"dur", seg.end_us - seg.start_us},
                      {"args", {{"steps", seg.steps}}}});
    named[tid] = true;
  }
  for (const auto& [tid, _] : named)
    events.push_back({{"ph", "M"},
                      {"name", "thread_name"},
                      {"pid", pid},
                      {"tid", tid},
                      {"args", {{"name", "steps (thread " + std::to_string(tid) + ")"}}}});

  if (const json* points = json_at(report, "/memory/timeline/points");
      points && points->is_array()) {
    for (const auto& p : *points) {
      if (!p.is_array() || p.size() < 2 || !p[0].is_number() || !p[1].is_number()) continue;
      events.push_back({{"ph", "C"},
                        {"name", "memory"},
                        {"pid", pid},
                        {"ts", p[0].get<double>() / 1000.0},
                        {"args", {{"rss_bytes", p[1].get<double>()}}}});
    }
  }

  json other = {{"run", report.value("run", json(nullptr))},
                {"schema_version", report.value("schema_version", json(nullptr))},
                {"time_origin", "run start (run.start_utc)"}};
  return {{"traceEvents", std::move(events)},
          {"displayTimeUnit", "ms"},
          {"otherData", std::move(other)}};
}

}  // namespace trainmeter::detail
