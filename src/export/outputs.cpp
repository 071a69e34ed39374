#include "export/outputs.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <ctime>
#include <filesystem>

#include <fmt/format.h>

#include "core/log.hpp"
#include "export/access.hpp"
#include "export/exports.hpp"
#include "platform/file.hpp"
#include "platform/host.hpp"
#include "report/step_json.hpp"
#include "trainmeter/report.hpp"

namespace trainmeter::detail {

namespace {

using nlohmann::json;

constexpr const char* kSource = "stream";
// After this many failed flushes in a row the stream stops writing: a full disk rarely recovers
// within a run, and each attempt costs a syscall and a diagnostic.
constexpr int kMaxConsecutiveFailures = 3;
// The progress line is redrawn at most this often.
constexpr std::int64_t kProgressIntervalNs = 500'000'000;

std::string iso_utc(std::int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, static_cast<int>((unix_ns / 1000000) % 1000));
}

template <class T>
json opt(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

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
                    env_name("stream"), path, errno_text(errno),
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
  }
  ~OutputsComponent() override {
    if (fd_ >= 0) ::close(fd_);
  }

  const char* name() const noexcept override { return "outputs"; }

  void start(std::int64_t now_ns) noexcept override {
    last_flush_ns_ = now_ns;
    last_progress_ns_ = now_ns;
    if (fd_ < 0) return;
    append(header_);
    flush();
  }

  void steps(const StepRecord* records, std::size_t n) noexcept override {
    own_steps_ += n;
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
        append({{"type", "sample"},
                {"t_offset_ns", now - ctx_.start_ns},
                {"rss_bytes", opt(read_rss())}});
      } catch (...) {
        ctx_.diagnostics.add(kSource, diag::kDropped, "out of memory formatting a sample line");
      }
      maybe_flush(now);
    }
    if (progress_ && now - last_progress_ns_ >= kProgressIntervalNs) draw_progress(now, false);
  }

  void stop(std::int64_t now) noexcept override {
    end_ns_ = now;
    if (fd_ >= 0) flush();
    if (progress_) draw_progress(now, true);
  }

  void after_write(const json& report) noexcept override {
    if (fd_ >= 0) {
      try {
        append({{"type", "footer"},
                {"status", string_at(report, "/run/status", "completed")},
                {"end_utc", string_at(report, "/run/end_utc")},
                {"duration_s", opt(number_at(report, "/run/duration_s"))},
                {"steps_recorded", opt(number_at(report, "/run/steps_recorded"))},
                {"phases", report.value("phases", json::object())},
                {"energy_total_j", opt(number_at(report, "/energy/total_j"))},
                {"co2e_kg", opt(number_at(report, "/carbon/co2e_kg"))},
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
      const std::string error = write_export(report, format, path);
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
            {"schema_version", kReportSchemaVersion},
            {"trainmeter", {{"version", TRAINMETER_VERSION_STRING}}},
            {"run",
             {{"name", c.run_name},
              {"id", c.run_id},
              {"rank", c.rank},
              {"world_size", c.world_size},
              {"local_rank", c.local_rank},
              {"local_world_size", c.local_world_size},
              {"start_utc", iso_utc(ctx_.start_unix_ns)},
              {"start_unix_ns", ctx_.start_unix_ns},
              {"command_line", read_command_line(c.proc_root)},
              {"tags", c.tags},
              {"report", ctx_.report_path}}},
            {"host",
             {{"hostname", opt(host.hostname)},
              {"os", opt(host.os)},
              {"kernel", opt(host.kernel)},
              {"cpu_model", opt(host.cpu_model)},
              {"logical_cpus", opt(host.logical_cpus)},
              {"memory_bytes", opt(host.memory_bytes)},
              {"gpus", json::array()},
              {"torch_version", nullptr},
              {"cuda_version", nullptr}}},
            {"config", std::move(config)}};
  }

  const std::string& phase_name(std::uint16_t id) {
    if (id >= phase_cache_.size()) phase_cache_.resize(id + 1u);
    std::string& name = phase_cache_[id];
    // Names are interned once and never change, so one lookup per phase id suffices.
    if (name.empty()) name = ctx_.phase_name ? ctx_.phase_name(id) : std::to_string(id);
    return name;
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
    int err = 0;
    while (done < buffer_.size()) {
      const ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        err = errno;
        break;
      }
      done += static_cast<std::size_t>(n);
    }
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
  KeptOpenFile statm_;
  long page_size_ = 4096;
};

}  // namespace

std::unique_ptr<Component> make_outputs_component(RunContext& ctx) {
  return std::make_unique<OutputsComponent>(ctx);
}

}  // namespace trainmeter::detail
