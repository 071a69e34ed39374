#include "export/recover.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <vector>

#include <fmt/format.h>

#include "carbon/settings.hpp"
#include "export/outputs.hpp"
#include "platform/file.hpp"
#include "report/json_io.hpp"
#include "report/stats.hpp"
#include "trainmeter/version.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;

struct LineError {
  std::string what;
};

std::string type_name(const json& v) {
  if (v.is_number_float()) return "a non-integer or out-of-range number";
  if (v.is_number_integer()) return "integer";
  return v.type_name();
}

// Field checks: throw LineError naming the key and what was found.
const json& need(const json& obj, const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw LineError{fmt::format("missing key '{}'", key)};
  return *it;
}
std::int64_t need_int(const json& obj, const char* key, bool non_negative, bool nullable_ok,
                      bool* is_null = nullptr) {
  const json& v = need(obj, key);
  if (v.is_null() && nullable_ok) {
    if (is_null) *is_null = true;
    return 0;
  }
  if (is_null) *is_null = false;
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > std::uint64_t(INT64_MAX))
      throw LineError{fmt::format("key '{}': {} is out of range", key, v.dump())};
    return static_cast<std::int64_t>(v.get<std::uint64_t>());
  }
  if (v.is_number_integer()) {
    const auto x = v.get<std::int64_t>();
    if (non_negative && x < 0)
      throw LineError{fmt::format("key '{}': expected >= 0, got {}", key, x)};
    return x;
  }
  throw LineError{fmt::format("key '{}': expected {}integer{}, got {}", key,
                              non_negative ? "a non-negative " : "an ",
                              nullable_ok ? " or null" : "", type_name(v))};
}
std::string need_string(const json& obj, const char* key) {
  const json& v = need(obj, key);
  if (!v.is_string())
    throw LineError{fmt::format("key '{}': expected a string, got {}", key, type_name(v))};
  return v.get<std::string>();
}
bool need_bool(const json& obj, const char* key) {
  const json& v = need(obj, key);
  if (!v.is_boolean())
    throw LineError{fmt::format("key '{}': expected true or false, got {}", key, type_name(v))};
  return v.get<bool>();
}
std::optional<double> need_number_or_null(const json& obj, const char* key, bool optional_key) {
  const auto it = obj.find(key);
  if (it == obj.end()) {
    if (optional_key) return std::nullopt;
    throw LineError{fmt::format("missing key '{}'", key)};
  }
  if (it->is_null()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>()))
    throw LineError{
        fmt::format("key '{}': expected a number or null, got {}", key, type_name(*it))};
  return it->get<double>();
}
const json& need_object(const json& obj, const char* key) {
  const json& v = need(obj, key);
  if (!v.is_object())
    throw LineError{fmt::format("key '{}': expected an object, got {}", key, type_name(v))};
  return v;
}

std::string iso_utc(std::int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>((unix_ns / 1000000) % 1000));
}

struct PhaseAcc {
  std::uint64_t steps = 0, warmup = 0, samples = 0, tokens = 0;
  double wall_sum_ns = 0;
  RunningStats wall, cpu, loss;
  std::vector<double> walls, cpus;
  double first_loss = std::nan(""), last_loss = std::nan("");
};

// Same definitions as the live report (report/builder.cpp): Welford moments, exact percentiles
// by linear interpolation, rounded to whole ns and kept within [min, max].
json stats_json(const RunningStats& s, std::vector<double>& values) {
  if (s.count() == 0) return nullptr;
  std::sort(values.begin(), values.end());
  auto q = [&](double p) {
    return static_cast<std::int64_t>(
        std::llround(std::clamp(exact_quantile_sorted(values, p), s.min(), s.max())));
  };
  return {{"mean", s.mean()},
          {"stddev", s.stddev()},
          {"min", static_cast<std::int64_t>(s.min())},
          {"p50", q(0.5)},
          {"p90", q(0.9)},
          {"p95", q(0.95)},
          {"p99", q(0.99)},
          {"max", static_cast<std::int64_t>(s.max())},
          {"percentiles_exact", true}};
}

}  // namespace

RecoverResult recover_stream(const std::string& path, std::size_t max_bytes) {
  RecoverResult out;
  int err = 0;
  auto text = read_text_file(path, max_bytes + 1, &err);
  if (!text) {
    out.error = path + ": cannot read: " + errno_text(err);
    return out;
  }
  if (text->size() > max_bytes) {
    out.error = fmt::format("{}: larger than {} bytes", path, max_bytes);
    return out;
  }
  const std::string& t = *text;
  if (t.empty()) {
    out.error = path + ": empty file (no stream header)";
    return out;
  }

  json header;
  json steps = json::array();
  json points = json::array();
  std::vector<std::string> phase_order;
  std::map<std::string, PhaseAcc> phases;
  std::optional<json> footer;
  std::int64_t last_end_ns = 0, last_rss = -1, peak_rss = -1;
  std::int64_t peak_step_tensor = -1;  // highest CPU tensor peak any step line carries
  std::uint64_t samples = 0;
  std::optional<std::uint64_t> last_index;
  // The sampler's energy rows (cumulative since the start): the last one and the totals over time.
  std::optional<json> last_energy;
  json energy_rows = json::array();  // [t_offset_ns, total_j|null]
  std::size_t torn_bytes = 0;

  std::size_t pos = 0, line_no = 0;
  try {
    while (pos < t.size()) {
      ++line_no;
      const std::size_t nl = t.find('\n', pos);
      const bool terminated = nl != std::string::npos;
      const std::string line = t.substr(pos, terminated ? nl - pos : std::string::npos);
      pos = terminated ? nl + 1 : t.size();
      JsonLoad parsed = parse_json_text(line);
      if (!parsed.value) {
        // A killed writer leaves at most its last line torn, never one followed by others.
        if (!terminated && line_no > 1) {
          out.torn_last_line = true;
          torn_bytes = line.size();
          break;
        }
        // parse_json_text says "line 1, column C: ..." of this one line; report the file's line.
        std::string what = parsed.error;
        // Drop nlohmann's own "[json.exception...] parse error at line 1, column C: " prefix.
        if (const auto at = what.find("parse error at line "); at != std::string::npos)
          if (const auto colon = what.find(": ", at); colon != std::string::npos)
            what = what.substr(0, what.find(": ") + 2) + what.substr(colon + 2);
        if (what.rfind("line 1, ", 0) == 0) {
          out.error = fmt::format("{}: line {}, {}", path, line_no, what.substr(8));
          return out;
        }
        throw LineError{what};
      }
      const json& v = *parsed.value;
      if (!v.is_object()) throw LineError{"not a JSON object"};
      if (!terminated && line_no > 1) {
        // Complete JSON but no newline: the write of the newline itself may have been lost; the
        // object is whole, so keep it.
      }
      const std::string type = need_string(v, "type");
      if (line_no == 1) {
        if (type != "header") throw LineError{"the first line is not a trainmeter stream header"};
        const std::int64_t sv = need_int(v, "stream_version", true, false);
        if (sv != kStreamVersion)
          throw LineError{fmt::format(
              "stream_version {} is not supported (this trainmeter reads {})", sv, kStreamVersion)};
        const std::int64_t rv = need_int(v, "schema_version", true, false);
        if (rv != kReportSchemaVersion)
          throw LineError{
              fmt::format("schema_version {} is not supported (this trainmeter writes {})", rv,
                          kReportSchemaVersion)};
        const json& run = need_object(v, "run");
        need_string(run, "name");
        need_string(run, "id");
        need_string(run, "start_utc");
        need_int(run, "start_unix_ns", false, false);
        need_int(run, "rank", true, false);
        if (need_int(run, "world_size", true, false) < 1)
          throw LineError{"key 'world_size': expected >= 1"};
        const json& cl = need(run, "command_line");
        if (!cl.is_array() ||
            !std::all_of(cl.begin(), cl.end(), [](const json& x) { return x.is_string(); }))
          throw LineError{"key 'command_line': expected an array of strings"};
        const json& tags = need_object(run, "tags");
        for (const auto& x : tags)
          if (!x.is_string()) throw LineError{"key 'tags': expected string values"};
        need_object(v, "host");
        need_object(v, "config");
        need_object(v, "trainmeter");
        header = v;
        continue;
      }
      if (footer) throw LineError{"a line after the footer"};
      if (type == "step") {
        const std::int64_t index = need_int(v, "index", true, false);
        if (last_index && std::uint64_t(index) <= *last_index)
          throw LineError{fmt::format("step index {} does not follow {}", index, *last_index)};
        last_index = static_cast<std::uint64_t>(index);
        const std::string phase = need_string(v, "phase");
        const std::int64_t start = need_int(v, "start_offset_ns", false, false);
        const std::int64_t wall = need_int(v, "wall_ns", true, false);
        bool cpu_null = true, tensor_null = true;
        const std::int64_t cpu = need_int(v, "cpu_ns", true, true, &cpu_null);
        const std::int64_t samples_n = need_int(v, "samples", true, false);
        const std::int64_t tokens_n = need_int(v, "tokens", true, false);
        const bool warm = need_bool(v, "warmup");
        const std::optional<double> loss = need_number_or_null(v, "loss", true);
        const std::int64_t tensor = need_int(v, "peak_tensor_bytes", true, true, &tensor_null);
        const std::optional<double> energy = need_number_or_null(v, "energy_j", true);
        std::int64_t thread = 0;
        if (v.contains("thread")) thread = need_int(v, "thread", true, false);
        if (start > INT64_MAX - wall)
          throw LineError{"key 'wall_ns': start_offset_ns + wall_ns overflows"};

        json s = {{"index", index},
                  {"phase", phase},
                  {"thread", thread},
                  {"start_offset_ns", start},
                  {"wall_ns", wall},
                  {"cpu_ns", cpu_null ? json(nullptr) : json(cpu)},
                  {"samples", samples_n},
                  {"tokens", tokens_n},
                  {"warmup", warm},
                  {"loss", loss ? json(*loss) : json(nullptr)},
                  {"peak_tensor_bytes", tensor_null ? json(nullptr) : json(tensor)}};
        if (energy) s["energy_j"] = *energy;
        // Per-step CUDA figures, as streamed (gpu_ns is resolved after streaming: null there).
        for (const char* key : {"gpu_ns", "peak_cuda_tensor_bytes"}) {
          const auto it = v.find(key);
          if (it != v.end() && (it->is_null() || it->is_number_unsigned() || it->is_object()))
            s[key] = *it;
        }
        if (!tensor_null) peak_step_tensor = std::max(peak_step_tensor, tensor);
        steps.push_back(std::move(s));
        last_end_ns = std::max(last_end_ns, start + wall);

        if (!phases.count(phase)) phase_order.push_back(phase);
        PhaseAcc& p = phases[phase];
        ++p.steps;
        if (warm) {
          ++p.warmup;
        } else {
          p.samples += std::uint64_t(samples_n);
          p.tokens += std::uint64_t(tokens_n);
          p.wall_sum_ns += double(wall);
          p.wall.add(double(wall));
          p.walls.push_back(double(wall));
          if (!cpu_null) {
            p.cpu.add(double(cpu));
            p.cpus.push_back(double(cpu));
          }
          if (loss) {
            p.loss.add(*loss);
            if (std::isnan(p.first_loss)) p.first_loss = *loss;
            p.last_loss = *loss;
          }
        }
      } else if (type == "sample") {
        const std::int64_t t_off = need_int(v, "t_offset_ns", false, false);
        bool rss_null = true;
        const std::int64_t rss = need_int(v, "rss_bytes", true, true, &rss_null);
        ++samples;
        last_end_ns = std::max(last_end_ns, t_off);
        if (const auto e = v.find("energy"); e != v.end()) {
          if (!e->is_object()) throw LineError{"key 'energy': expected an object"};
          const std::int64_t et = need_int(*e, "t_offset_ns", false, false);
          const std::optional<double> total = need_number_or_null(*e, "total_j", false);
          need_bool(*e, "estimated");
          const json& comps = need(*e, "components");
          if (!comps.is_array()) throw LineError{"key 'components': expected an array"};
          for (const json& c : comps) {
            if (!c.is_object()) throw LineError{"key 'components': expected objects"};
            for (const char* key : {"name", "source", "provenance", "attribution"})
              need_string(c, key);
            need_bool(c, "selected");
            for (const char* key : {"energy_j", "machine_energy_j"})
              if (auto x = need_number_or_null(c, key, false); x && *x < 0)
                throw LineError{fmt::format("key '{}': expected >= 0", key)};
          }
          energy_rows.push_back(json::array({et, total ? json(*total) : json(nullptr)}));
          last_energy = *e;
        }
        if (!rss_null) {
          points.push_back(json::array({t_off, rss}));
          last_rss = rss;
          peak_rss = std::max(peak_rss, rss);
        }
      } else if (type == "footer") {
        need_string(v, "status");
        footer = v;
      } else if (type == "header") {
        throw LineError{"a second header"};
      } else {
        throw LineError{fmt::format("unknown line type '{}'", type)};
      }
    }
  } catch (const LineError& e) {
    out.error = fmt::format("{}: line {}: {}", path, line_no, e.what);
    return out;
  } catch (const std::exception& e) {
    out.error = fmt::format("{}: line {}: {}", path, line_no, e.what());
    return out;
  }
  if (header.is_null()) {
    out.error = path + ": line 1: no complete stream header";
    return out;
  }

  const json& hrun = header["run"];
  const std::int64_t start_unix_ns = hrun["start_unix_ns"].get<std::int64_t>();
  json report = json::object();
  report["schema_version"] = kReportSchemaVersion;
  report["trainmeter"] = {
      {"version", header["trainmeter"].value("version", std::string("unknown"))},
      {"build", "recovered"}};
  const std::string status = footer ? footer->value("status", std::string("crashed")) : "crashed";
  json run = {{"name", hrun["name"]},
              {"id", hrun["id"]},
              {"status", status == "completed" || status == "aborted" ? status : "crashed"},
              {"start_utc", hrun["start_utc"]},
              {"end_utc", iso_utc(start_unix_ns + last_end_ns)},
              {"duration_s", 1e-9 * double(last_end_ns)},
              {"rank", hrun["rank"]},
              {"world_size", hrun["world_size"]},
              {"command_line", hrun["command_line"]},
              {"tags", hrun["tags"]},
              {"cpu_time_s", nullptr},
              {"steps_recorded", steps.size()},
              {"steps_dropped", 0},
              {"steps_retained", steps.size()},
              {"recovered_from", path}};
  if (hrun.contains("local_rank") && hrun["local_rank"].is_number_unsigned())
    run["local_rank"] = hrun["local_rank"];
  if (hrun.contains("local_world_size") && hrun["local_world_size"].is_number_unsigned() &&
      hrun["local_world_size"].get<std::uint64_t>() >= 1)
    run["local_world_size"] = hrun["local_world_size"];
  report["run"] = std::move(run);
  // The header's host facts are taken key by key: a missing or wrongly typed one becomes null
  // (gpus: only the object entries), so a damaged header still yields a schema-valid report.
  json host = header["host"];
  for (const char* key : {"hostname", "os", "kernel", "cpu_model", "torch_version", "cuda_version"})
    if (!host.contains(key) || !host[key].is_string()) host[key] = nullptr;
  for (const char* key : {"logical_cpus", "memory_bytes"})
    if (!host.contains(key) || !host[key].is_number_integer()) host[key] = nullptr;
  json gpus = json::array();
  if (host.contains("gpus") && host["gpus"].is_array())
    for (const json& g : host["gpus"])
      if (g.is_object()) gpus.push_back(g);
  host["gpus"] = std::move(gpus);
  report["host"] = std::move(host);
  report["config"] = header["config"];
  report["model"] = nullptr;

  json phases_json = json::object();
  for (const std::string& name : phase_order) {
    PhaseAcc& p = phases[name];
    const double duration_s = 1e-9 * p.wall_sum_ns;
    json loss = nullptr;
    if (p.loss.count() > 0)
      loss = {{"first", p.first_loss},
              {"last", p.last_loss},
              {"min", p.loss.min()},
              {"mean", p.loss.mean()}};
    const bool timed = duration_s > 0 && p.wall.count() > 0;
    phases_json[name] = {
        {"steps", p.steps},
        {"warmup_steps", p.warmup},
        {"samples", p.samples},
        {"tokens", p.tokens},
        {"duration_s", duration_s},
        {"step_time_ns", stats_json(p.wall, p.walls)},
        {"cpu_time_ns", stats_json(p.cpu, p.cpus)},
        {"samples_per_s",
         timed && p.samples > 0 ? json(double(p.samples) / duration_s) : json(nullptr)},
        {"tokens_per_s",
         timed && p.tokens > 0 ? json(double(p.tokens) / duration_s) : json(nullptr)},
        {"loss", loss}};
  }
  report["phases"] = std::move(phases_json);

  if (samples > 0 || peak_step_tensor >= 0) {
    report["memory"] = {
        {"peak_rss_bytes", nullptr},
        {"peak_rss_source", nullptr},
        {"current_rss_bytes", last_rss >= 0 ? json(last_rss) : json(nullptr)},
        {"getrusage_max_rss_bytes", nullptr},
        {"sampled_peak_rss_bytes", peak_rss >= 0 ? json(peak_rss) : json(nullptr)},
        // The run's peak is not in the stream, but each step's CPU tensor peak is: their maximum
        // is the run's peak inside steps (a lower bound of the whole run's).
        {"peak_tensor_bytes",
         peak_step_tensor >= 0 ? json{{"cpu", peak_step_tensor}} : json(nullptr)},
        {"cuda", nullptr},
        {"timeline",
         {{"interval_ms", 0}, {"samples", samples}, {"dropped", 0}, {"points", points}}},
        {"notes",
         json::array(
             {"recovered from the stream: peak_rss_bytes (VmHWM) is not in it; "
              "sampled_peak_rss_bytes is the largest RSS sampled (not a bound of the true peak), "
              "current_rss_bytes the last sample",
              "recovered from the stream: peak_tensor_bytes.cpu is the highest of "
              "the steps' peak_tensor_bytes (peaks outside steps are not in the "
              "stream)"})}};
    if (const auto it = header["config"].find("sample_interval_ms");
        it != header["config"].end() && it->is_string()) {
      try {
        report["memory"]["timeline"]["interval_ms"] = std::stoull(it->get<std::string>());
      } catch (...) {
      }
    }
  } else {
    report["memory"] = nullptr;
  }
  report["energy"] = nullptr;
  report["carbon"] = nullptr;
  report["cost"] = nullptr;
  std::string carbon_problem;
  if (last_energy) {
    // Energy as the sampler had it at its last flushed row: each component's cumulative joules
    // then, with the averages over the time they cover.
    const json& e = *last_energy;
    const double t_s = 1e-9 * double(e["t_offset_ns"].get<std::int64_t>());
    json comps = json::array();
    for (const json& c : e["components"]) {
      const auto num = [&](const char* key) {
        return c[key].is_number() ? std::optional<double>(c[key].get<double>()) : std::nullopt;
      };
      const auto attributed = num("energy_j"), machine = num("machine_energy_j");
      const auto per_s = [&](std::optional<double> j) {
        return j && t_s > 0 ? json(*j / t_s) : json(nullptr);
      };
      comps.push_back(
          {{"name", c["name"]},
           {"source", c["source"]},
           {"provenance", c["provenance"]},
           {"machine_energy_j", machine ? json(*machine) : json(nullptr)},
           {"energy_j", attributed ? json(*attributed) : json(nullptr)},
           {"attributed_share", attributed && machine && *machine > 0
                                    ? json(std::min(1.0, *attributed / *machine))
                                    : json(nullptr)},
           {"average_power_w", per_s(attributed)},
           {"machine_average_power_w", per_s(machine)},
           {"attribution", c["attribution"]},
           {"selected", c["selected"]},
           {"samples", energy_rows.size()},
           {"notes", json::array({fmt::format("recovered from the stream: cumulative energy at "
                                              "the last flushed sampler row (t = {:.3f} s)",
                                              t_s)})}});
    }
    const json total = e["total_j"];
    std::uint64_t interval_ms = 1;
    if (const auto it = header["config"].find("sample_interval_ms");
        it != header["config"].end() && it->is_string()) {
      try {
        interval_ms = std::max<std::uint64_t>(1, std::stoull(it->get<std::string>()));
      } catch (...) {
      }
    }
    report["energy"] = {
        {"components", std::move(comps)},
        {"total_j", total},
        {"total_kwh",
         total.is_number() ? json(total.get<double>() / kJoulesPerKwh) : json(nullptr)},
        {"estimated", e["estimated"]},
        {"sample_interval_ms", interval_ms},
        {"samples", energy_rows.size()},
        {"sources_tried", json::array()},
        {"timeline",
         {{"points", energy_rows.size()}, {"decimations", 0}, {"max_points", energy_rows.size()}}},
        {"recovered_timeline", {{"columns", {"t_offset_ns", "total_j"}}, {"rows", energy_rows}}},
        {"recovered_at_s", t_s},
        {"step_attribution",
         "recovered from the stream: steps carry no energy_j (it is apportioned only at "
         "finish); energy covers the run up to the last flushed sampler row"}};
    // Carbon and cost from the header's configuration, as the live run would have computed
    // them, over the recovered energy and duration.
    try {
      apply_carbon(report, carbon_settings_from_config_json(header["config"]), start_unix_ns,
                   nullptr);
    } catch (const std::exception& ex) {
      carbon_problem = ex.what();
      report["carbon"] = nullptr;
      report["cost"] = nullptr;
    }
  }
  report["steps"] = std::move(steps);
  json diags = json::array();
  if (out.torn_last_line)
    diags.push_back(
        {{"source", "recover"},
         {"status", "dropped"},
         {"count", 1},
         {"message", fmt::format("torn last line ({} bytes, the writer died mid-write) ignored",
                                 torn_bytes)}});
  if (!last_energy)
    diags.push_back({{"source", "recover"},
                     {"status", "unavailable"},
                     {"count", 1},
                     {"message",
                      "the stream has no energy rows (no energy source, or a stream from an older "
                      "trainmeter): energy, carbon and cost are unknown; phases recomputed from "
                      "the stream's steps"}});
  else
    diags.push_back(
        {{"source", "recover"},
         {"status", "skipped"},
         {"count", 1},
         {"message",
          fmt::format("recovered from the stream{}: energy, carbon and cost up to the last "
                      "flushed sampler row ({:.3f} s of {:.3f} s recovered), phases from the "
                      "steps flushed before the end",
                      footer ? " (the written report has the exact figures)" : "",
                      report["energy"]["recovered_at_s"].get<double>(),
                      1e-9 * double(last_end_ns))}});
  if (!carbon_problem.empty())
    diags.push_back({{"source", "recover"},
                     {"status", "error"},
                     {"count", 1},
                     {"message", "carbon and cost not recomputed: " + carbon_problem}});
  report["diagnostics"] = std::move(diags);
  out.steps = report["steps"].size();
  out.had_footer = footer.has_value();
  out.report = std::move(report);
  return out;
}

}  // namespace trainmeter::detail
