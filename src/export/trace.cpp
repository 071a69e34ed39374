// Chrome Trace Event Format: steps as complete ("X") events on their recording thread, runs of
// consecutive same-phase steps as enclosing phase events, and memory / step power as counter
// ("C") events. Timestamps are microseconds since the run started (the format's unit).
//
// The events are made in one order by TraceEvents, whether the steps come from a document
// (chrome_trace()) or one at a time from the report file (write_trace_streamed(): each event is
// written as it is made, so a trace of any length holds one step and the open phase runs).
#include <map>
#include <utility>

#include "base/report_keys.hpp"
#include "export/access.hpp"
#include "export/exports.hpp"
#include "report/json_io.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;
constexpr auto kReplace = json::error_handler_t::replace;

class TraceEvents {
 public:
  using Emit = std::function<void(json&&)>;
  TraceEvents(const json& report, Emit emit)
      : emit_(std::move(emit)),
        pid_(static_cast<int>(number_at(report, rk::pointer(rk::run, rk::rank)).value_or(0))) {
    emit_({{"ph", "M"},
           {rk::name, "process_name"},
           {"pid", pid_},
           {"tid", 0},
           {"args",
            {{rk::name, string_at(report, rk::pointer(rk::run, rk::name), rk::trainmeter)}}}});
  }

  void step(const json& s) {
    const auto start = number_at(s, rk::pointer(rk::start_offset_ns));
    const auto wall = number_at(s, rk::pointer(rk::wall_ns));
    if (!start || !wall) return;
    const long long tid = static_cast<long long>(number_at(s, rk::pointer(rk::thread)).value_or(0));
    const std::string phase = string_at(s, rk::pointer(rk::phase), "other");
    const double ts = *start / 1000.0, dur = *wall / 1000.0;
    json args = {{rk::index, s.value(rk::index, json(nullptr))},
                 {rk::warmup, s.value(rk::warmup, json(nullptr))}};
    for (const char* key : {rk::loss, rk::energy_j, rk::peak_tensor_bytes, rk::samples})
      if (const json* v = json_at(s, (std::string("/") + key).c_str())) args[key] = *v;
    emit_({{"ph", "X"},
           {"cat", "step"},
           {rk::name, phase},
           {"pid", pid_},
           {"tid", tid},
           {"ts", ts},
           {"dur", dur},
           {"args", std::move(args)}});
    if (auto e = number_at(s, rk::pointer(rk::energy_j)); e && *wall > 0)
      emit_({{"ph", "C"},
             {rk::name, "power"},
             {"pid", pid_},
             {"ts", ts},
             {"args", {{"step_average_w", *e / (*wall * 1e-9)}}}});
    if (auto b = number_at(s, rk::pointer(rk::peak_tensor_bytes)))
      emit_({{"ph", "C"},
             {rk::name, "tensor memory"},
             {"pid", pid_},
             {"ts", ts},
             {"args", {{"step_peak_bytes", *b}}}});
    auto it = open_.find(tid);
    if (it != open_.end() && it->second.phase != phase) {
      segments_.emplace_back(tid, it->second);
      open_.erase(it);
      it = open_.end();
    }
    if (it == open_.end()) {
      open_[tid] = Segment{phase, ts, ts + dur, 1};
    } else {
      it->second.end_us = std::max(it->second.end_us, ts + dur);
      ++it->second.steps;
    }
  }

  /// The phase runs, thread names and memory counters, after every step.
  void finish(const json& report) {
    for (auto& [tid, seg] : open_) segments_.emplace_back(tid, seg);
    std::map<long long, bool> named;
    for (const auto& [tid, seg] : segments_) {
      emit_({{"ph", "X"},
             {"cat", rk::phase},
             {rk::name, "phase " + seg.phase},
             {"pid", pid_},
             {"tid", tid},
             {"ts", seg.start_us},
             {"dur", seg.end_us - seg.start_us},
             {"args", {{rk::steps, seg.steps}}}});
      named[tid] = true;
    }
    for (const auto& [tid, _] : named)
      emit_({{"ph", "M"},
             {rk::name, "thread_name"},
             {"pid", pid_},
             {"tid", tid},
             {"args", {{rk::name, "steps (thread " + std::to_string(tid) + ")"}}}});
    if (const json* points = json_at(report, rk::pointer(rk::memory, rk::timeline, rk::points));
        points && points->is_array()) {
      for (const auto& p : *points) {
        if (!p.is_array() || p.size() < 2 || !p[0].is_number() || !p[1].is_number()) continue;
        emit_({{"ph", "C"},
               {rk::name, rk::memory},
               {"pid", pid_},
               {"ts", p[0].get<double>() / 1000.0},
               {"args", {{"rss_bytes", p[1].get<double>()}}}});
      }
    }
  }

 private:
  struct Segment {
    std::string phase;
    double start_us = 0, end_us = 0;
    std::uint64_t steps = 0;
  };
  Emit emit_;
  int pid_;
  std::map<long long, Segment> open_;  // by thread
  std::vector<std::pair<long long, Segment>> segments_;
};

json other_data(const json& report) {
  return {{rk::run, report.value(rk::run, json(nullptr))},
          {rk::schema_version, report.value(rk::schema_version, json(nullptr))},
          {"time_origin", "run start (run.start_utc)"}};
}

}  // namespace

nlohmann::json chrome_trace(const nlohmann::json& report) {
  json events = json::array();
  TraceEvents trace(report, [&](json&& e) { events.push_back(std::move(e)); });
  if (const json* steps = json_at(report, rk::pointer(rk::steps));
      steps != nullptr && steps->is_array())
    for (const auto& s : *steps) trace.step(s);
  trace.finish(report);
  return {{"traceEvents", std::move(events)},
          {"displayTimeUnit", "ms"},
          {"otherData", other_data(report)}};
}

std::string write_trace_streamed(const nlohmann::json& sections, const StepSource& steps,
                                 const std::function<void(const std::string&)>& write) {
  // chrome_trace(report).dump() + "\n": an object's keys in order (displayTimeUnit, otherData,
  // traceEvents), compact, the events joined by commas.
  std::string chunk = R"({"displayTimeUnit":"ms","otherData":)";
  chunk += other_data(sections).dump(-1, ' ', false, kReplace);
  chunk += R"(,"traceEvents":[)";
  bool first = true;
  TraceEvents trace(sections, [&](json&& e) {
    if (!first) chunk += ',';
    first = false;
    chunk += e.dump(-1, ' ', false, kReplace);
    if (chunk.size() >= AtomicFile::kBufferBytes / 2) {
      write(chunk);
      chunk.clear();
    }
  });
  const std::string error = steps([&](const json& s, std::size_t) { trace.step(s); });
  if (!error.empty()) return error;
  trace.finish(sections);
  chunk += "]}\n";
  write(chunk);
  return "";
}

}  // namespace trainmeter::detail
