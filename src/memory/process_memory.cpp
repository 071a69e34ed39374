#include "memory/process_memory.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <string>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "platform/file.hpp"
#include "platform/text.hpp"

namespace trainmeter::detail {

namespace {

constexpr const char* kSource = "memory.process";

const char* status_for_errno(int err) noexcept {
  if (err == EACCES || err == EPERM) return diag::kPermissionDenied;
  if (err == ENOENT || err == ENOTDIR) return diag::kUnavailable;
  return diag::kIoError;
}

}  // namespace

std::optional<std::int64_t> parse_statm_rss_pages(std::string_view statm) noexcept {
  // "size resident shared text lib data dt": we need the second field.
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < statm.size() && (statm[i] == ' ' || statm[i] == '\t')) ++i;
  };
  auto field = [&]() -> std::string_view {
    skip_space();
    const std::size_t b = i;
    while (i < statm.size() && statm[i] != ' ' && statm[i] != '\t' && statm[i] != '\n') ++i;
    return statm.substr(b, i - b);
  };
  const std::string_view size = field();
  const std::string_view resident = field();
  if (size.empty() || resident.empty()) return std::nullopt;
  if (!parse_int64(size.data(), size.data() + size.size())) return std::nullopt;
  auto v = parse_int64(resident.data(), resident.data() + resident.size());
  if (!v || *v < 0) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parse_status_kib_field(std::string_view status,
                                                   std::string_view key) noexcept {
  std::size_t pos = 0;
  while (pos < status.size()) {
    std::size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':')
      continue;
    std::string_view value = trim_view(line.substr(key.size() + 1));
    // The kernel always writes "kB" (meaning KiB) for these fields.
    if (value.size() < 3 || value.substr(value.size() - 2) != "kB") return std::nullopt;
    value = trim_view(value.substr(0, value.size() - 2));
    auto kib = parse_int64(value.data(), value.data() + value.size());
    if (!kib || *kib < 0 || *kib > (INT64_MAX / 1024)) return std::nullopt;
    return *kib * 1024;
  }
  return std::nullopt;
}

std::optional<std::int64_t> getrusage_max_rss_bytes() noexcept {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return std::nullopt;
  return static_cast<std::int64_t>(ru.ru_maxrss) * 1024;  // Linux: KiB
}

MemoryTimeline::MemoryTimeline(std::size_t capacity) : capacity_(capacity) {
  points_.reserve(std::min<std::size_t>(capacity_, 4096));
}

void MemoryTimeline::add(std::int64_t t_offset_ns, std::int64_t rss_bytes) noexcept {
  const std::uint64_t index = offered_++;
  if (capacity_ == 0) return;
  if (index % stride_ != 0) return;
  if (points_.size() >= capacity_) {
    // Halve the resolution instead of stopping: a timeline that ends early hides the part of the
    // run where memory usually peaks (the end of a long run), a coarser one does not.
    stride_ *= 2;
    std::size_t kept = 0;
    for (const Point& p : points_)
      if (p.sample_index % stride_ == 0) points_[kept++] = p;
    points_.resize(kept);
    if (index % stride_ != 0 || points_.size() >= capacity_) return;
  }
  try {
    points_.push_back(Point{t_offset_ns, rss_bytes, index});
  } catch (...) {
    // Out of memory while growing: the point is counted as dropped (offered_ > size).
  }
}

namespace {

class ProcessMemoryComponent final : public Component {
 public:
  explicit ProcessMemoryComponent(RunContext& ctx)
      : ctx_(ctx), timeline_(static_cast<std::size_t>(ctx.config.max_retained_samples)) {
    const std::string root = ctx.config.proc_root.empty() ? "/proc" : ctx.config.proc_root;
    statm_.open(root + "/self/statm");
    status_.open(root + "/self/status");
    const long page = sysconf(_SC_PAGESIZE);
    page_bytes_ = page > 0 ? page : 4096;
  }

  const char* name() const noexcept override { return kSource; }

  void start(std::int64_t now_ns) noexcept override {
    if (!statm_.is_open())
      ctx_.diagnostics.add(kSource, status_for_errno(statm_.open_errno()),
                           fmt::format("cannot open {}: {}; RSS not sampled", statm_.path(),
                                       errno_text(statm_.open_errno())));
    if (!status_.is_open())
      ctx_.diagnostics.add(kSource, status_for_errno(status_.open_errno()),
                           fmt::format("cannot open {}: {}; VmHWM not read", status_.path(),
                                       errno_text(status_.open_errno())));
    sample(now_ns);
  }

  void sample(std::int64_t now_ns) noexcept override {
    const auto rss = read_rss();
    if (!rss) return;
    last_rss_ = rss;
    sampled_peak_ = std::max(sampled_peak_.value_or(0), *rss);
    timeline_.add(now_ns - ctx_.start_ns, *rss);
    ctx_.live.update([&](LiveSnapshot& s) {
      s.memory_t_ns = now_ns;
      s.rss_bytes = *rss;
      s.rss_peak_sampled_bytes = *sampled_peak_;
    });
  }

  void stop(std::int64_t now_ns) noexcept override {
    sample(now_ns);
    current_rss_ = last_rss_;
    if (status_.is_open()) {
      const long n = status_.read(status_buf_.data(), status_buf_.size());
      if (n < 0) {
        const int err = static_cast<int>(-n);
        ctx_.diagnostics.add(kSource, status_for_errno(err),
                             fmt::format("cannot read {}: {}", status_.path(), errno_text(err)));
      } else {
        const std::string_view text(status_buf_.data(), static_cast<std::size_t>(n));
        vm_hwm_ = parse_status_kib_field(text, "VmHWM");
        if (!vm_hwm_)
          ctx_.diagnostics.add(kSource, diag::kUnavailable,
                               fmt::format("no valid VmHWM line in {}", status_.path()));
        if (!current_rss_) current_rss_ = parse_status_kib_field(text, "VmRSS");
      }
    }
    rusage_max_ = getrusage_max_rss_bytes();
    if (!rusage_max_)
      ctx_.diagnostics.add(kSource, diag::kUnavailable,
                           fmt::format("getrusage failed: {}", errno_text(errno)));
  }

  void contribute(nlohmann::json& report) noexcept override {
    try {
      nlohmann::json& m = report[rk::memory];
      if (!m.is_object()) m = nlohmann::json::object();
      nlohmann::json notes = nlohmann::json::array();
      if (vm_hwm_) {
        m[rk::peak_rss_bytes] = *vm_hwm_;
        m[rk::peak_rss_source] = "VmHWM";
      } else if (rusage_max_) {
        m[rk::peak_rss_bytes] = *rusage_max_;
        m[rk::peak_rss_source] = "getrusage";
        notes.push_back("VmHWM unavailable: peak RSS is getrusage(RUSAGE_SELF).ru_maxrss");
      } else {
        m[rk::peak_rss_bytes] = nullptr;
        m[rk::peak_rss_source] = nullptr;
      }
      m[rk::current_rss_bytes] = json_or_null(current_rss_);
      m[rk::getrusage_max_rss_bytes] = json_or_null(rusage_max_);
      m[rk::sampled_peak_rss_bytes] = json_or_null(sampled_peak_);
      if (!m.contains(rk::peak_tensor_bytes)) m[rk::peak_tensor_bytes] = nullptr;
      if (!m.contains(rk::cuda)) m[rk::cuda] = nullptr;

      nlohmann::json points = nlohmann::json::array();
      for (const auto& p : timeline_.points())
        points.push_back(nlohmann::json::array({p.t_offset_ns, p.rss_bytes}));
      m[rk::timeline] = {
          {rk::interval_ms,
           static_cast<std::uint64_t>(ctx_.config.sample_interval_ms) * timeline_.stride()},
          {rk::samples, timeline_.offered()},
          {rk::dropped, timeline_.dropped()},
          {rk::points, std::move(points)},
      };
      notes.push_back(
          "peak_rss_bytes is the kernel's high-water mark of this address space (VmHWM); "
          "getrusage_max_rss_bytes also covers the image before the last execve, so it can be "
          "larger; sampled_peak_rss_bytes is the largest RSS seen at the sampling interval "
          "(exact statm counters, so it can exceed VmHWM, which the kernel records from "
          "approximate per-CPU counters, by a few hundred KiB; see docs/memory.md)");
      if (timeline_.stride() > 1)
        notes.push_back(fmt::format(
            "timeline thinned to every {}th sample to stay within max_retained_samples = {}",
            timeline_.stride(), ctx_.config.max_retained_samples));
      nlohmann::json& existing = m[rk::notes];
      if (!existing.is_array()) existing = nlohmann::json::array();
      for (auto& n : notes) existing.push_back(std::move(n));
    } catch (...) {
      ctx_.diagnostics.add(kSource, diag::kError, "could not build the memory section");
    }
  }

 private:
  std::optional<std::int64_t> read_rss() noexcept {
    if (!statm_.is_open()) return std::nullopt;
    char buf[256];
    const long n = statm_.read(buf, sizeof buf);
    if (n < 0) {
      const int err = static_cast<int>(-n);
      ctx_.diagnostics.add(kSource, status_for_errno(err),
                           fmt::format("cannot read {}: {}", statm_.path(), errno_text(err)));
      return std::nullopt;
    }
    const auto pages = parse_statm_rss_pages(std::string_view(buf, static_cast<std::size_t>(n)));
    if (!pages) {
      ctx_.diagnostics.add(kSource, diag::kInvalidReading,
                           fmt::format("malformed {}: no resident field", statm_.path()));
      return std::nullopt;
    }
    return *pages * page_bytes_;
  }

  RunContext& ctx_;
  KeptOpenFile statm_;
  KeptOpenFile status_;
  std::int64_t page_bytes_ = 4096;
  MemoryTimeline timeline_;
  std::array<char, 16384> status_buf_{};
  std::optional<std::int64_t> last_rss_;
  std::optional<std::int64_t> sampled_peak_;
  std::optional<std::int64_t> current_rss_;
  std::optional<std::int64_t> vm_hwm_;
  std::optional<std::int64_t> rusage_max_;
};

}  // namespace

std::unique_ptr<Component> make_process_memory_component(RunContext& ctx) {
  return std::make_unique<ProcessMemoryComponent>(ctx);
}

}  // namespace trainmeter::detail
