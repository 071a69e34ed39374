#include "export/outputs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "base/stats.hpp"
#include "base/values.hpp"
#include "carbon/model.hpp"
#include "carbon/settings.hpp"
#include "core/log.hpp"
#include "export/access.hpp"
#include "export/exports.hpp"
#include "export/metrics_server.hpp"
#include "platform/file.hpp"
#include "platform/host.hpp"
#include "platform/text.hpp"
#include "report/builder.hpp"
#include "report/step_json.hpp"
#include "report/units.hpp"
#include "trainmeter/report.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;

constexpr const char* kSource = rk::stream;
constexpr const char* kMetricsSource = rk::metrics;
// After this many failed flushes in a row the stream stops writing: a full disk rarely recovers
// within a run, and each attempt costs a syscall and a diagnostic.
constexpr int kMaxConsecutiveFailures = 3;
// The progress line is redrawn at most this often.
constexpr std::int64_t kProgressIntervalNs = 500'000'000;
// samples/s on the metrics endpoint: the rate over a window at least this long.
constexpr std::int64_t kRateWindowNs = 1'000'000'000;

std::string short_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const auto t = static_cast<long long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02d}m", t / 3600, static_cast<int>((t / 60) % 60));
  if (t >= 60) return fmt::format("{}m{:02d}s", t / 60, static_cast<int>(t % 60));
  return fmt::format("{}s", t);
}

int open_stream(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    throw Error(
        fmt::format("trainmeter: invalid configuration:\n  stream ({}): cannot open '{}' "
                    "for writing: {}{}; accepted: a writable file path, or empty for no stream",
                    env_name(rk::stream), path, errno_text(errno),
                    ec ? fmt::format(" (creating its directory: {})", ec.message()) : ""));
  return fd;
}

class OutputsComponent final : public Component {
 public:
  explicit OutputsComponent(RunContext& ctx) : ctx_(ctx) {
    const Config& c = ctx.config;
    flush_interval_ns_ = std::int64_t(c.flush_interval_ms) * 1'000'000;
    progress_ = c.progress == "on" || (c.progress == "auto" && ::isatty(2) == 1);
    if (!c.stream.empty()) {
      fd_ = open_stream(c.stream);
      buffer_.reserve(1 << 16);
      header_ = make_header();
    }
    statm_.open(c.proc_root + "/self/statm");
    page_size_ = ::sysconf(_SC_PAGESIZE);
    // The carbon component validated these settings already; here they turn live energy into
    // CO2e for the progress line and the metrics endpoint.
    const CarbonSettings carbon = carbon_settings_from_config(c);
    metrics_.pue = carbon.pue;
    metrics_.intensity_g_per_kwh = carbon.intensity.g_per_kwh;
    metrics_.intensity_source = carbon.intensity.source;
    if (c.metrics_port != 0) {
      if (!metrics_server_available())
        throw Error(fmt::format(
            "trainmeter: invalid configuration:\n  metrics_port ({}): {} was asked for, but this "
            "build of trainmeter has no HTTP library (cpp-httplib, Debian's libcpp-httplib-dev, "
            "was not found when it was configured); accepted: 0 (off) in this build",
            env_name("metrics_port"), c.metrics_port));
      server_ = std::make_unique<MetricsServer>();
      const HostInfo host = read_host_info(c.proc_root);
      const std::vector<std::string> argv = read_command_line(c.proc_root);
      metrics_.run_name = c.run_name;
      metrics_.run_id = c.run_id;
      metrics_.rank = c.rank;
      metrics_.world_size = c.world_size;
      metrics_.host = host.hostname.value_or("");
      metrics_.program =
          argv.empty() ? c.run_name : std::filesystem::path(argv[0]).filename().string();
      metrics_.version = TRAINMETER_VERSION_STRING;
    }
  }
  ~OutputsComponent() override {
    if (fd_ >= 0) ::close(fd_);
  }

  const char* name() const noexcept override { return "outputs"; }

  void start(std::int64_t now_ns) noexcept override {
    last_flush_ns_ = now_ns;
    last_progress_ns_ = now_ns;
    rate_window_ns_ = now_ns;
    if (server_) {
      const Config& c = ctx_.config;
      publish_metrics(now_ns, false);
      const std::string error = server_->start(c.metrics_address, c.metrics_port);
      if (!error.empty()) {
        ctx_.diagnostics.add(kMetricsSource, diag::kUnavailable,
                             fmt::format("{} (metrics_port={}, metrics_address={}); the run goes "
                                         "on without the live endpoint",
                                         error, c.metrics_port, c.metrics_address));
        server_.reset();
      }
    }
    if (fd_ < 0) return;
    append(header_);
    flush();
  }

  void steps(const StepRecord* records, std::size_t n) noexcept override {
    own_steps_ += n;
    if (server_) count_phases(records, n);
    if (fd_ < 0) return;
    try {
      for (std::size_t i = 0; i < n; ++i) append(step_line(records[i]));
    } catch (...) {
      ctx_.diagnostics.add(kSource, diag::kDropped, "out of memory formatting step lines");
    }
    maybe_flush(now_ns());
  }

  void sample(std::int64_t now) noexcept override {
    if (fd_ >= 0) {
      try {
        append(sample_line(now));
      } catch (...) {
        ctx_.diagnostics.add(kSource, diag::kDropped, "out of memory formatting a sample line");
      }
      maybe_flush(now);
    }
    if (server_) publish_metrics(now, false);
    if (progress_ && now - last_progress_ns_ >= kProgressIntervalNs) draw_progress(now, false);
  }

  void stop(std::int64_t now) noexcept override {
    end_ns_ = now;
    if (fd_ >= 0) flush();
    if (progress_) draw_progress(now, true);
    if (server_) {
      // The final figures stay served while finish() builds the report.
      publish_metrics(now, true);
      server_->mark_finishing();
    }
  }

  void contribute(json& /*report*/) noexcept override {
    if (!server_) return;
    // Closed before the report is written, so what happened to it reaches the diagnostics.
    server_->stop();
    if (const std::uint64_t n = server_->scrapes_during_finish(); n > 0)
      ctx_.diagnostics.add_count(
          kMetricsSource, diag::kSkipped, n,
          fmt::format("scrapes during finish() were answered with the final figures; the "
                      "endpoint closed before the report was written ({} scrapes in all)",
                      server_->scrapes()));
    server_.reset();
  }

  void after_write(const json& report, const StepSource& steps) noexcept override {
    if (fd_ >= 0) {
      try {
        append(
            {{"type", "footer"},
             {rk::status, string_at(report, rk::pointer(rk::run, rk::status), "completed")},
             {rk::end_utc, string_at(report, rk::pointer(rk::run, rk::end_utc))},
             {rk::duration_s,
              json_or_null(number_at(report, rk::pointer(rk::run, rk::duration_s)))},
             {rk::steps_recorded,
              json_or_null(number_at(report, rk::pointer(rk::run, rk::steps_recorded)))},
             {rk::phases, report.value(rk::phases, json::object())},
             {"energy_total_j",
              json_or_null(number_at(report, rk::pointer(rk::energy, rk::total_j)))},
             {rk::co2e_kg, json_or_null(number_at(report, rk::pointer(rk::carbon, rk::co2e_kg)))},
             {"report", ctx_.report_path}});
      } catch (...) {
        ctx_.diagnostics.add(kSource, diag::kDropped, "out of memory formatting the footer");
      }
      flush();
      ::close(fd_);
      fd_ = -1;
    }
    for (const std::string& format : ctx_.config.exports) {
      const std::string path = export_path(ctx_.report_path, format);
      const ExportFormat* f = find_export_format(format);
      const std::string error = f != nullptr && f->needs_steps
                                    ? write_export_streamed(report, steps, format, path)
                                    : write_export(report, format, path);
      // The report is already written, so a diagnostic would not reach it: log instead.
      if (!error.empty()) log(LogLevel::kError, "export " + format + " not written: " + error);
    }
  }

 private:
  json make_header() const {
    const Config& c = ctx_.config;
    const HostInfo host = read_host_info(c.proc_root);
    json config = json::object();
    for (const ConfigKey& key : config_keys()) config[key.name] = c.get(key.name);
    return {{"type", "header"},
            {"stream_version", kStreamVersion},
            {rk::schema_version, kReportSchemaVersion},
            {rk::trainmeter, {{rk::version, TRAINMETER_VERSION_STRING}}},
            {rk::run,
             {{rk::name, c.run_name},
              {rk::id, c.run_id},
              {rk::rank, c.rank},
              {rk::world_size, c.world_size},
              {rk::local_rank, c.local_rank},
              {rk::local_world_size, c.local_world_size},
              {rk::start_utc, iso_utc(ctx_.start_unix_ns)},
              {"start_unix_ns", ctx_.start_unix_ns},
              {rk::command_line, read_command_line(c.proc_root)},
              {rk::tags, c.tags},
              {"report", ctx_.report_path}}},
            {rk::host, host_section(host)},
            {rk::config, std::move(config)}};
  }

  const std::string& phase_name(std::uint16_t id) {
    if (id >= phase_cache_.size()) phase_cache_.resize(id + 1u);
    std::string& name = phase_cache_[id];
    // Names are interned once and never change, so one lookup per phase id suffices.
    if (name.empty()) name = ctx_.phase_name ? ctx_.phase_name(id) : std::to_string(id);
    return name;
  }

  // The sampler's figures at this tick: RSS, and what the measuring components published (energy
  // per component so far, power, tensor and CUDA memory), enough for `recover` to rebuild the
  // energy, carbon, cost and memory sections up to the last flush.
  json sample_line(std::int64_t now) {
    const LiveSnapshot l = ctx_.live.read();
    json line = {{"type", "sample"}, {"t_offset_ns", now - ctx_.start_ns}};
    line["rss_bytes"] = l.rss_bytes >= 0 ? json(l.rss_bytes) : json_or_null(read_rss());
    const auto num = [](double x) { return std::isfinite(x) ? json(x) : json(nullptr); };
    if (l.energy_t_ns >= 0 && l.energy_samples != streamed_energy_samples_) {
      streamed_energy_samples_ = l.energy_samples;
      json comps = json::array();
      for (const LiveEnergyChannel& c : l.channels)
        comps.push_back({{rk::name, c.component},
                         {rk::source, c.source},
                         {rk::provenance, c.provenance},
                         {rk::attribution, c.attribution},
                         {"selected", c.selected},
                         {rk::energy_j, num(c.energy_j)},
                         {rk::machine_energy_j, num(c.machine_energy_j)},
                         {"power_w", num(c.power_w)}});
      line[rk::energy] = {{"t_offset_ns", l.energy_t_ns - ctx_.start_ns},
                          {rk::samples, l.energy_samples},
                          {rk::total_j, num(l.energy_total_j)},
                          {"power_w", num(l.power_w)},
                          {"estimated", l.energy_estimated},
                          {rk::components, std::move(comps)}};
    }
    if (l.tensor_bytes >= 0) line["tensor_bytes"] = l.tensor_bytes;
    if (l.tensor_peak_bytes >= 0) line[rk::peak_tensor_bytes] = l.tensor_peak_bytes;
    if (!l.cuda.empty()) {
      json cuda = json::array();
      for (const LiveCudaMemory& c : l.cuda)
        cuda.push_back(
            {{rk::device, c.device},
             {rk::allocated_bytes,
              c.allocated_bytes >= 0 ? json(c.allocated_bytes) : json(nullptr)},
             {rk::reserved_bytes, c.reserved_bytes >= 0 ? json(c.reserved_bytes) : json(nullptr)}});
      line[rk::cuda] = std::move(cuda);
    }
    return line;
  }

  json step_line(const StepRecord& r) {
    json line = {{"type", "step"}};
    line.update(step_json(r, ctx_.start_ns, phase_name(r.phase)));
    return line;
  }

  void append(const json& line) {
    if (disabled_) return;
    buffer_ += line.dump(-1, ' ', false, json::error_handler_t::replace);
    buffer_ += '\n';
    ++buffered_lines_;
  }

  void maybe_flush(std::int64_t now) noexcept {
    if (now - last_flush_ns_ >= flush_interval_ns_) flush();
  }

  void flush() noexcept {
    last_flush_ns_ = now_ns();
    if (disabled_ || buffer_.empty()) return;
    const std::string& path = ctx_.config.stream;
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0) {
      disable(
          fmt::format("stream file '{}' was removed (its directory vanished?); the stream "
                      "stops, {} buffered lines dropped; the report is unaffected",
                      path, buffered_lines_));
      return;
    }
    std::size_t done = 0;
    int err = write_all(fd_, buffer_.data(), buffer_.size(), &done);
    if (err == 0 && ::fdatasync(fd_) != 0 && errno != EINVAL && errno != EROFS) err = errno;
    if (err == 0) {
      failures_ = 0;
      buffer_.clear();
      buffered_lines_ = 0;
      return;
    }
    const std::string what = fmt::format("cannot write stream '{}': {}", path, errno_text(err));
    ++failures_;
    if (done > 0) {
      // Part of a line reached the file: anything appended now would continue a torn line.
      disable(what +
              fmt::format("; a partial write ended the stream, {} lines dropped", buffered_lines_));
      return;
    }
    ctx_.diagnostics.add(kSource, diag::kIoError,
                         what + fmt::format("; {} lines dropped", buffered_lines_));
    buffer_.clear();
    buffered_lines_ = 0;
    if (failures_ >= kMaxConsecutiveFailures)
      disable(fmt::format("stream stopped after {} failed writes in a row", failures_));
  }

  void disable(const std::string& why) noexcept {
    disabled_ = true;
    ctx_.diagnostics.add(kSource, diag::kIoError, why);
    buffer_.clear();
    buffer_.shrink_to_fit();
    buffered_lines_ = 0;
  }

  std::optional<std::int64_t> read_rss() noexcept {
    if (!statm_.is_open()) return std::nullopt;
    char buf[128];
    if (statm_.read(buf, sizeof buf) <= 0) return std::nullopt;
    // statm: size resident shared ... (pages)
    const char* p = buf;
    while (*p != '\0' && *p != ' ') ++p;
    const char* q = p + 1;
    while (*q != '\0' && *q != ' ') ++q;
    if (*p == '\0') return std::nullopt;
    auto pages = parse_int64(p + 1, q);
    if (!pages || page_size_ <= 0) return std::nullopt;
    return *pages * page_size_;
  }

  void count_phases(const StepRecord* records, std::size_t n) noexcept {
    try {
      for (std::size_t i = 0; i < n; ++i) {
        const StepRecord& r = records[i];
        if (r.phase >= phases_.size()) {
          phases_.resize(r.phase + 1u);
          sketches_.resize(r.phase + 1u);
        }
        LivePhase& p = phases_[r.phase];
        ++p.steps;
        p.samples += double(r.samples);
        samples_total_ += double(r.samples);
        if (std::isfinite(r.loss)) p.loss = r.loss;
        if ((r.flags & kStepWarmup) != 0) continue;
        ++p.timed_steps;
        const double wall_s = 1e-9 * double(r.wall_ns);
        p.wall_sum_s += wall_s;
        sketches_[r.phase].add(wall_s);
      }
    } catch (...) {
      ctx_.diagnostics.add(kMetricsSource, diag::kDropped, "out of memory counting steps");
    }
  }

  // Renders the exposition text on this (the collector) thread and hands it to the server.
  void publish_metrics(std::int64_t now, bool finished) noexcept {
    try {
      if (now - rate_window_ns_ >= kRateWindowNs || finished) {
        if (now > rate_window_ns_)
          metrics_.samples_per_s =
              (samples_total_ - rate_window_samples_) / (1e-9 * double(now - rate_window_ns_));
        rate_window_ns_ = now;
        rate_window_samples_ = samples_total_;
      }
      metrics_.uptime_s = ctx_.rel_s(now);
      metrics_.finished = finished;
      metrics_.live = ctx_.live.read();
      metrics_.co2e_g = co2e_g(metrics_.live);
      metrics_.phases.clear();
      for (std::size_t i = 0; i < phases_.size(); ++i) {
        if (phases_[i].steps == 0) continue;
        LivePhase p = phases_[i];
        p.name = phase_name(static_cast<std::uint16_t>(i));
        const QuantileSketch& q = sketches_[i];
        p.p50_s = q.quantile(0.5);
        p.p90_s = q.quantile(0.9);
        p.p95_s = q.quantile(0.95);
        p.p99_s = q.quantile(0.99);
        metrics_.phases.push_back(std::move(p));
      }
      server_->publish(prometheus_live_text(metrics_));
    } catch (...) {
      ctx_.diagnostics.add(
          kMetricsSource, diag::kDropped,
          "out of memory rendering the metrics text; scrapes get the previous one");
    }
  }

  // Energy so far x PUE x intensity, in grams; NaN while the energy is unknown.
  double co2e_g(const LiveSnapshot& l) const noexcept {
    if (!std::isfinite(l.energy_total_j) || !std::isfinite(metrics_.intensity_g_per_kwh))
      return kLiveUnknown;
    return 1000.0 *
           carbon_kg(l.energy_total_j / kJoulesPerKwh, metrics_.pue, metrics_.intensity_g_per_kwh);
  }

  void draw_progress(std::int64_t now, bool final_line) noexcept {
    last_progress_ns_ = now;
    try {
      const std::uint64_t steps = ctx_.steps_collected ? ctx_.steps_collected() : own_steps_;
      const double elapsed = ctx_.rel_s(now);
      const double rate = elapsed > 0 ? double(steps) / elapsed : 0.0;
      std::string line = fmt::format("[trainmeter] step {}", steps);
      const std::uint64_t total = ctx_.config.total_steps;
      if (total > 0) line += fmt::format("/{}", total);
      line += fmt::format("  {:.1f} steps/s  elapsed {}", rate, short_duration(elapsed));
      if (total > 0 && rate > 0 && steps < total && !final_line)
        line += fmt::format("  ETA {}", short_duration(double(total - steps) / rate));
      if (auto rss = read_rss()) line += fmt::format("  RSS {:.0f} MiB", double(*rss) / (1 << 20));
      const LiveSnapshot live = ctx_.live.read();
      if (std::isfinite(live.energy_total_j)) {
        // "~" marks an estimate, as the summary does.
        const char* approx = live.energy_estimated ? "~" : "";
        const double avg_w = elapsed > 0 ? live.energy_total_j / elapsed : kLiveUnknown;
        line += fmt::format("  {}{}  avg {}{}", approx, format_energy_j(live.energy_total_j),
                            approx, format_power_w(avg_w));
        const double g = co2e_g(live);
        if (std::isfinite(g)) line += fmt::format("  {}{}", approx, format_co2e_kg(g / 1000.0));
      }
      // \r + erase-to-end keeps it one line on a terminal.
      line = "\r" + line + "\x1b[K" + (final_line ? "\n" : "");
      if (::write(2, line.data(), line.size()) < 0) progress_ = false;
    } catch (...) {
    }
  }

  RunContext& ctx_;
  int fd_ = -1;
  json header_;
  std::string buffer_;
  std::uint64_t buffered_lines_ = 0;
  std::int64_t flush_interval_ns_ = 0;
  std::int64_t last_flush_ns_ = 0;
  std::int64_t last_progress_ns_ = 0;
  std::int64_t end_ns_ = 0;
  int failures_ = 0;
  bool disabled_ = false;
  bool progress_ = false;
  std::uint64_t own_steps_ = 0;
  std::vector<std::string> phase_cache_;
  std::uint64_t streamed_energy_samples_ = 0;  // energy rows already in the stream
  // the metrics endpoint (metrics_port != 0)
  std::unique_ptr<MetricsServer> server_;
  LiveMetrics metrics_;
  std::vector<LivePhase> phases_;  // by phase id
  std::vector<QuantileSketch> sketches_;
  double samples_total_ = 0, rate_window_samples_ = 0;
  std::int64_t rate_window_ns_ = 0;
  KeptOpenFile statm_;
  long page_size_ = 4096;
};

}  // namespace

std::unique_ptr<Component> make_outputs_component(RunContext& ctx) {
  return std::make_unique<OutputsComponent>(ctx);
}

}  // namespace trainmeter::detail
