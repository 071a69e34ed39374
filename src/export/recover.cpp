#include "export/recover.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <map>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "base/stats.hpp"
#include "carbon/settings.hpp"
#include "export/outputs.hpp"
#include "platform/file.hpp"
#include "platform/text.hpp"
#include "report/builder.hpp"
#include "report/json_io.hpp"
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

struct PhaseAcc {
  std::uint64_t steps = 0, warmup = 0, samples = 0, tokens = 0;
  double wall_sum_ns = 0;
  RunningStats wall, loss;
  std::vector<double> walls, cpus;
  double first_loss = std::nan(""), last_loss = std::nan("");
};

// Reads a file line by line (bounded memory: one line at a time). A last line without its
// newline is reported as not terminated.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : in_(path, std::ios::binary) {}
  bool is_open() const { return in_.is_open(); }
  bool next(std::string& line, bool& terminated) {
    if (!std::getline(in_, line)) return false;
    terminated = !in_.eof();
    return terminated || !line.empty();
  }
  bool failed() const { return in_.bad(); }

 private:
  std::ifstream in_;
};

// A step line's fields, validated, and the step as the recovered report writes it.
struct StepLine {
  json step;
  std::string phase;
  std::int64_t index = 0, start = 0, wall = 0, cpu = 0, samples = 0, tokens = 0, tensor = 0;
  bool cpu_null = true, tensor_null = true, warm = false;
  std::optional<double> loss;
};

StepLine parse_step_line(const json& v) {
  StepLine l;
  l.index = need_int(v, rk::index, true, false);
  l.phase = need_string(v, rk::phase);
  l.start = need_int(v, rk::start_offset_ns, false, false);
  l.wall = need_int(v, rk::wall_ns, true, false);
  l.cpu = need_int(v, rk::cpu_ns, true, true, &l.cpu_null);
  l.samples = need_int(v, rk::samples, true, false);
  l.tokens = need_int(v, rk::tokens, true, false);
  l.warm = need_bool(v, rk::warmup);
  l.loss = need_number_or_null(v, rk::loss, true);
  l.tensor = need_int(v, rk::peak_tensor_bytes, true, true, &l.tensor_null);
  const std::optional<double> energy = need_number_or_null(v, rk::energy_j, true);
  std::int64_t thread = 0;
  if (v.contains(rk::thread)) thread = need_int(v, rk::thread, true, false);
  if (l.start > INT64_MAX - l.wall)
    throw LineError{"key 'wall_ns': start_offset_ns + wall_ns overflows"};
  l.step = {{rk::index, l.index},
            {rk::phase, l.phase},
            {rk::thread, thread},
            {rk::start_offset_ns, l.start},
            {rk::wall_ns, l.wall},
            {rk::cpu_ns, l.cpu_null ? json(nullptr) : json(l.cpu)},
            {rk::samples, l.samples},
            {rk::tokens, l.tokens},
            {rk::warmup, l.warm},
            {rk::loss, json_or_null(l.loss)},
            {rk::peak_tensor_bytes, l.tensor_null ? json(nullptr) : json(l.tensor)}};
  if (energy) l.step[rk::energy_j] = *energy;
  // Per-step CUDA figures, as streamed (gpu_ns is resolved after streaming: null there).
  for (const char* key : {rk::gpu_ns, rk::peak_cuda_tensor_bytes}) {
    const auto it = v.find(key);
    if (it != v.end() && (it->is_null() || it->is_number_unsigned() || it->is_object()))
      l.step[key] = *it;
  }
  return l;
}

}  // namespace

RecoverResult recover_stream(const std::string& path, std::size_t max_bytes, bool keep_steps) {
  RecoverResult out;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    out.error = path + ": cannot read: " + errno_text(errno);
    return out;
  }
  if (static_cast<std::uint64_t>(st.st_size) > max_bytes) {
    out.error = fmt::format("{}: larger than {} bytes", path, max_bytes);
    return out;
  }
  LineReader reader(path);
  if (!reader.is_open()) {
    out.error = path + ": cannot read: " + errno_text(errno);
    return out;
  }
  if (st.st_size == 0) {
    out.error = path + ": empty file (no stream header)";
    return out;
  }

  json header;
  json steps = json::array();  // keep_steps only
  std::uint64_t step_count = 0;
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

  std::size_t line_no = 0;
  std::string line;
  bool terminated = true;
  try {
    while (reader.next(line, terminated)) {
      ++line_no;
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
        const std::int64_t rv = need_int(v, rk::schema_version, true, false);
        if (rv != kReportSchemaVersion)
          throw LineError{
              fmt::format("schema_version {} is not supported (this trainmeter writes {})", rv,
                          kReportSchemaVersion)};
        const json& run = need_object(v, rk::run);
        need_string(run, rk::name);
        need_string(run, rk::id);
        need_string(run, rk::start_utc);
        need_int(run, "start_unix_ns", false, false);
        need_int(run, rk::rank, true, false);
        if (need_int(run, rk::world_size, true, false) < 1)
          throw LineError{"key 'world_size': expected >= 1"};
        const json& cl = need(run, rk::command_line);
        if (!cl.is_array() ||
            !std::all_of(cl.begin(), cl.end(), [](const json& x) { return x.is_string(); }))
          throw LineError{"key 'command_line': expected an array of strings"};
        const json& tags = need_object(run, rk::tags);
        for (const auto& x : tags)
          if (!x.is_string()) throw LineError{"key 'tags': expected string values"};
        need_object(v, rk::host);
        need_object(v, rk::config);
        need_object(v, rk::trainmeter);
        header = v;
        continue;
      }
      if (footer) throw LineError{"a line after the footer"};
      if (type == "step") {
        StepLine l = parse_step_line(v);
        const std::int64_t index = l.index;
        if (last_index && std::uint64_t(index) <= *last_index)
          throw LineError{fmt::format("step index {} does not follow {}", index, *last_index)};
        last_index = static_cast<std::uint64_t>(index);
        const std::string& phase = l.phase;
        const std::int64_t start = l.start, wall = l.wall, cpu = l.cpu;
        const std::int64_t samples_n = l.samples, tokens_n = l.tokens, tensor = l.tensor;
        const bool cpu_null = l.cpu_null, tensor_null = l.tensor_null, warm = l.warm;
        const std::optional<double> loss = l.loss;
        if (!tensor_null) peak_step_tensor = std::max(peak_step_tensor, tensor);
        ++step_count;
        if (keep_steps) steps.push_back(std::move(l.step));
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
          if (!cpu_null) p.cpus.push_back(double(cpu));
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
        if (const auto e = v.find(rk::energy); e != v.end()) {
          if (!e->is_object()) throw LineError{"key 'energy': expected an object"};
          const std::int64_t et = need_int(*e, "t_offset_ns", false, false);
          const std::optional<double> total = need_number_or_null(*e, rk::total_j, false);
          need_bool(*e, "estimated");
          const json& comps = need(*e, rk::components);
          if (!comps.is_array()) throw LineError{"key 'components': expected an array"};
          for (const json& c : comps) {
            if (!c.is_object()) throw LineError{"key 'components': expected objects"};
            for (const char* key : {rk::name, rk::source, rk::provenance, rk::attribution})
              need_string(c, key);
            need_bool(c, "selected");
            for (const char* key : {rk::energy_j, rk::machine_energy_j})
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
        need_string(v, rk::status);
        footer = v;
      } else if (type == "header") {
        throw LineError{"a second header"};
      } else {
        throw LineError{fmt::format("unknown line type '{}'", type)};
      }
    }
    if (reader.failed()) {
      out.error = fmt::format("{}: line {}: read error: {}", path, line_no + 1, errno_text(errno));
      return out;
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

  const json& hrun = header[rk::run];
  const std::int64_t start_unix_ns = hrun["start_unix_ns"].get<std::int64_t>();
  json report = json::object();
  report[rk::schema_version] = kReportSchemaVersion;
  report[rk::trainmeter] = {
      {rk::version, header[rk::trainmeter].value(rk::version, std::string("unknown"))},
      {rk::build, "recovered"}};
  const std::string status = footer ? footer->value(rk::status, std::string("crashed")) : "crashed";
  json run = {{rk::name, hrun[rk::name]},
              {rk::id, hrun[rk::id]},
              {rk::status, status == "completed" || status == "aborted" ? status : "crashed"},
              {rk::start_utc, hrun[rk::start_utc]},
              {rk::end_utc, iso_utc(start_unix_ns + last_end_ns)},
              {rk::duration_s, 1e-9 * double(last_end_ns)},
              {rk::rank, hrun[rk::rank]},
              {rk::world_size, hrun[rk::world_size]},
              {rk::command_line, hrun[rk::command_line]},
              {rk::tags, hrun[rk::tags]},
              {rk::cpu_time_s, nullptr},
              {rk::steps_recorded, step_count},
              {rk::steps_dropped, 0},
              {rk::steps_retained, step_count},
              {"recovered_from", path}};
  if (hrun.contains(rk::local_rank) && hrun[rk::local_rank].is_number_unsigned())
    run[rk::local_rank] = hrun[rk::local_rank];
  if (hrun.contains(rk::local_world_size) && hrun[rk::local_world_size].is_number_unsigned() &&
      hrun[rk::local_world_size].get<std::uint64_t>() >= 1)
    run[rk::local_world_size] = hrun[rk::local_world_size];
  report[rk::run] = std::move(run);
  // The header's host facts are taken key by key: a missing or wrongly typed one becomes null
  // (gpus: only the object entries), so a damaged header still yields a schema-valid report.
  json host = header[rk::host];
  for (const char* key :
       {rk::hostname, rk::os, rk::kernel, rk::cpu_model, rk::torch_version, rk::cuda_version})
    if (!host.contains(key) || !host[key].is_string()) host[key] = nullptr;
  for (const char* key : {rk::logical_cpus, rk::memory_bytes})
    if (!host.contains(key) || !host[key].is_number_integer()) host[key] = nullptr;
  json gpus = json::array();
  if (host.contains(rk::gpus) && host[rk::gpus].is_array())
    for (const json& g : host[rk::gpus])
      if (g.is_object()) gpus.push_back(g);
  host[rk::gpus] = std::move(gpus);
  report[rk::host] = std::move(host);
  report[rk::config] = header[rk::config];
  report[rk::model] = nullptr;

  json phases_json = json::object();
  for (const std::string& name : phase_order) {
    PhaseAcc& p = phases[name];
    const double duration_s = 1e-9 * p.wall_sum_ns;
    json loss = nullptr;
    if (p.loss.count() > 0)
      loss = {{rk::first, p.first_loss},
              {rk::last, p.last_loss},
              {rk::min, p.loss.min()},
              {rk::mean, p.loss.mean()}};
    const bool timed = duration_s > 0 && p.wall.count() > 0;
    phases_json[name] = {
        {rk::steps, p.steps},
        {rk::warmup_steps, p.warmup},
        {rk::samples, p.samples},
        {rk::tokens, p.tokens},
        {rk::duration_s, duration_s},
        {rk::step_time_ns, exact_stats_json(std::move(p.walls))},
        {rk::cpu_time_ns, exact_stats_json(std::move(p.cpus))},
        {rk::samples_per_s,
         timed && p.samples > 0 ? json(double(p.samples) / duration_s) : json(nullptr)},
        {rk::tokens_per_s,
         timed && p.tokens > 0 ? json(double(p.tokens) / duration_s) : json(nullptr)},
        {rk::loss, loss}};
  }
  report[rk::phases] = std::move(phases_json);

  if (samples > 0 || peak_step_tensor >= 0) {
    report[rk::memory] = {
        {rk::peak_rss_bytes, nullptr},
        {rk::peak_rss_source, nullptr},
        {rk::current_rss_bytes, last_rss >= 0 ? json(last_rss) : json(nullptr)},
        {rk::getrusage_max_rss_bytes, nullptr},
        {rk::sampled_peak_rss_bytes, peak_rss >= 0 ? json(peak_rss) : json(nullptr)},
        // The run's peak is not in the stream, but each step's CPU tensor peak is: their maximum
        // is the run's peak inside steps (a lower bound of the whole run's).
        {rk::peak_tensor_bytes,
         peak_step_tensor >= 0 ? json{{"cpu", peak_step_tensor}} : json(nullptr)},
        {rk::cuda, nullptr},
        {rk::timeline,
         {{rk::interval_ms, 0}, {rk::samples, samples}, {rk::dropped, 0}, {rk::points, points}}},
        {rk::notes,
         json::array(
             {"recovered from the stream: peak_rss_bytes (VmHWM) is not in it; "
              "sampled_peak_rss_bytes is the largest RSS sampled (not a bound of the true peak), "
              "current_rss_bytes the last sample",
              "recovered from the stream: peak_tensor_bytes.cpu is the highest of "
              "the steps' peak_tensor_bytes (peaks outside steps are not in the "
              "stream)"})}};
    if (const auto it = header[rk::config].find(rk::sample_interval_ms);
        it != header[rk::config].end() && it->is_string()) {
      try {
        report[rk::memory][rk::timeline][rk::interval_ms] = std::stoull(it->get<std::string>());
      } catch (...) {
      }
    }
  } else {
    report[rk::memory] = nullptr;
  }
  report[rk::energy] = nullptr;
  report[rk::carbon] = nullptr;
  report[rk::cost] = nullptr;
  std::string carbon_problem;
  if (last_energy) {
    // Energy as the sampler had it at its last flushed row: each component's cumulative joules
    // then, with the averages over the time they cover.
    const json& e = *last_energy;
    const double t_s = 1e-9 * double(e["t_offset_ns"].get<std::int64_t>());
    json comps = json::array();
    for (const json& c : e[rk::components]) {
      const auto num = [&](const char* key) {
        return c[key].is_number() ? std::optional<double>(c[key].get<double>()) : std::nullopt;
      };
      const auto attributed = num(rk::energy_j), machine = num(rk::machine_energy_j);
      const auto per_s = [&](std::optional<double> j) {
        return j && t_s > 0 ? json(*j / t_s) : json(nullptr);
      };
      comps.push_back(
          {{rk::name, c[rk::name]},
           {rk::source, c[rk::source]},
           {rk::provenance, c[rk::provenance]},
           {rk::machine_energy_j, machine ? json(*machine) : json(nullptr)},
           {rk::energy_j, attributed ? json(*attributed) : json(nullptr)},
           {rk::attributed_share, attributed && machine && *machine > 0
                                      ? json(std::min(1.0, *attributed / *machine))
                                      : json(nullptr)},
           {rk::average_power_w, per_s(attributed)},
           {rk::machine_average_power_w, per_s(machine)},
           {rk::attribution, c[rk::attribution]},
           {"selected", c["selected"]},
           {rk::samples, energy_rows.size()},
           {rk::notes, json::array({fmt::format("recovered from the stream: cumulative energy at "
                                                "the last flushed sampler row (t = {:.3f} s)",
                                                t_s)})}});
    }
    const json total = e[rk::total_j];
    std::uint64_t interval_ms = 1;
    if (const auto it = header[rk::config].find(rk::sample_interval_ms);
        it != header[rk::config].end() && it->is_string()) {
      try {
        interval_ms = std::max<std::uint64_t>(1, std::stoull(it->get<std::string>()));
      } catch (...) {
      }
    }
    report[rk::energy] = {
        {rk::components, std::move(comps)},
        {rk::total_j, total},
        {rk::total_kwh,
         total.is_number() ? json(total.get<double>() / kJoulesPerKwh) : json(nullptr)},
        {"estimated", e["estimated"]},
        {rk::sample_interval_ms, interval_ms},
        {rk::samples, energy_rows.size()},
        {rk::sources_tried, json::array()},
        {rk::timeline,
         {{rk::points, energy_rows.size()},
          {rk::decimations, 0},
          {rk::max_points, energy_rows.size()}}},
        {"recovered_timeline",
         {{rk::columns, {"t_offset_ns", rk::total_j}}, {rk::rows, energy_rows}}},
        {"recovered_at_s", t_s},
        {rk::step_attribution,
         "recovered from the stream: steps carry no energy_j (it is apportioned only at "
         "finish); energy covers the run up to the last flushed sampler row"}};
    // Carbon and cost from the header's configuration, as the live run would have computed
    // them, over the recovered energy and duration.
    try {
      apply_carbon(report, carbon_settings_from_config_json(header[rk::config]), start_unix_ns,
                   nullptr);
    } catch (const std::exception& ex) {
      carbon_problem = ex.what();
      report[rk::carbon] = nullptr;
      report[rk::cost] = nullptr;
    }
  }
  report[rk::steps] = std::move(steps);
  json diags = json::array();
  if (out.torn_last_line)
    diags.push_back(
        {{rk::source, "recover"},
         {rk::status, rk::dropped},
         {rk::count, 1},
         {rk::message, fmt::format("torn last line ({} bytes, the writer died mid-write) ignored",
                                   torn_bytes)}});
  if (!last_energy)
    diags.push_back({{rk::source, "recover"},
                     {rk::status, "unavailable"},
                     {rk::count, 1},
                     {rk::message,
                      "the stream has no energy rows (no energy source, or a stream from an older "
                      "trainmeter): energy, carbon and cost are unknown; phases recomputed from "
                      "the stream's steps"}});
  else
    diags.push_back(
        {{rk::source, "recover"},
         {rk::status, "skipped"},
         {rk::count, 1},
         {rk::message,
          fmt::format("recovered from the stream{}: energy, carbon and cost up to the last "
                      "flushed sampler row ({:.3f} s of {:.3f} s recovered), phases from the "
                      "steps flushed before the end",
                      footer ? " (the written report has the exact figures)" : "",
                      report[rk::energy]["recovered_at_s"].get<double>(),
                      1e-9 * double(last_end_ns))}});
  if (!carbon_problem.empty())
    diags.push_back({{rk::source, "recover"},
                     {rk::status, "error"},
                     {rk::count, 1},
                     {rk::message, "carbon and cost not recomputed: " + carbon_problem}});
  report[rk::diagnostics] = std::move(diags);
  out.steps = step_count;
  out.had_footer = footer.has_value();
  out.report = std::move(report);
  return out;
}

std::string write_recovered_report(const std::string& stream_path, const RecoverResult& result,
                                   const std::string& out_path) noexcept {
  try {
    if (!result.report) return "nothing recovered";
    AtomicFile file;
    if (!file.open(out_path)) return file.error();
    constexpr auto kReplace = json::error_handler_t::replace;
    const json& report = *result.report;
    const json* kept = report.contains(rk::steps) && !report[rk::steps].empty()
                           ? &report[rk::steps]  // recovered with keep_steps
                           : nullptr;
    // Otherwise steps[] is a second pass over the stream, one step line at a time.
    std::optional<LineReader> reader;
    std::string line;
    bool terminated = true;
    const auto next_step = [&](std::size_t i, std::string& text) {
      if (kept != nullptr) {
        text += (*kept)[i].dump(-1, ' ', false, kReplace);
        return;
      }
      if (!reader) reader.emplace(stream_path);
      while (reader->next(line, terminated)) {
        JsonLoad parsed = parse_json_text(line);
        if (!parsed.value || !parsed.value->is_object() ||
            parsed.value->value("type", "") != "step")
          continue;
        text += parse_step_line(*parsed.value).step.dump(-1, ' ', false, kReplace);
        return;
      }
      throw LineError{fmt::format("{} of {} steps read again", i, result.steps)};
    };
    stream_report_text(report, kept != nullptr ? kept->size() : result.steps, next_step,
                       [&](const std::string& text) { file.append(text); });
    if (!file.commit()) return file.error();
    return "";
  } catch (const LineError& e) {
    return stream_path + ": changed while it was recovered: " + e.what;
  } catch (const std::exception& e) {
    return std::string("cannot write the recovered report: ") + e.what();
  }
}

}  // namespace trainmeter::detail
