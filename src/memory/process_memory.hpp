// Process memory: current and peak resident set size, sampled on the collector thread, and a
// bounded (time, RSS) timeline. Torch-free; part of the core library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "base/component.hpp"

namespace trainmeter::detail {

/// RSS in pages: the second field of /proc/<pid>/statm. nullopt when the text is malformed.
std::optional<std::int64_t> parse_statm_rss_pages(std::string_view statm) noexcept;

/// A "<key>:   <N> kB" line of /proc/<pid>/status (e.g. key "VmHWM"), in bytes. nullopt when the
/// key is absent or its value malformed.
std::optional<std::int64_t> parse_status_kib_field(std::string_view status,
                                                   std::string_view key) noexcept;

/// getrusage(RUSAGE_SELF).ru_maxrss in bytes (Linux reports KiB); nullopt on failure.
std::optional<std::int64_t> getrusage_max_rss_bytes() noexcept;

/// A bounded series of (t_offset_ns, rss_bytes) points.
///
/// When `capacity` points are held, every second point is discarded and from then on only every
/// second offered sample is kept (the stride doubles), so the retained points always cover the
/// whole run at a uniform, coarser interval, and memory stays bounded. Samples not kept are
/// counted in dropped(). Not thread-safe (used on the collector thread only).
class MemoryTimeline {
 public:
  struct Point {
    std::int64_t t_offset_ns;
    std::int64_t rss_bytes;
    std::uint64_t sample_index;  // position in the sequence of offered samples
  };

  explicit MemoryTimeline(std::size_t capacity);

  /// Offers the next sample. Allocates only while growing towards `capacity`.
  void add(std::int64_t t_offset_ns, std::int64_t rss_bytes) noexcept;

  const std::vector<Point>& points() const noexcept { return points_; }
  /// Offered samples that are not retained.
  std::uint64_t dropped() const noexcept { return offered_ - points_.size(); }
  std::uint64_t offered() const noexcept { return offered_; }
  /// 1, 2, 4...: every stride-th offered sample is retained.
  std::uint64_t stride() const noexcept { return stride_; }

 private:
  std::size_t capacity_;
  std::uint64_t stride_ = 1;
  std::uint64_t offered_ = 0;
  std::vector<Point> points_;
};

/// The process memory component ("memory.process"). Opens <proc_root>/self/statm and
/// <proc_root>/self/status once; samples RSS at every tick; at stop reads the kernel's peak
/// (VmHWM) and getrusage's ru_maxrss. Fills report["memory"] (created as an object; keys other
/// components add are kept).
std::unique_ptr<Component> make_process_memory_component(RunContext& ctx);

}  // namespace trainmeter::detail
