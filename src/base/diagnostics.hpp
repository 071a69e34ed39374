// Counted problems found after start(). Thread-safe; never throws.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/report_keys.hpp"

namespace trainmeter::detail {

/// Status words used in diagnostics (report key diagnostics[].status). Never rename: dashboards
/// match on them.
namespace diag {
inline constexpr const char* kUnavailable = "unavailable";  // source absent
inline constexpr const char* kPermissionDenied = "permission_denied";
inline constexpr const char* kUnsupported = "unsupported";
inline constexpr const char* kReadsZero = "reads_zero";            // counter stuck at 0
inline constexpr const char* kInvalidReading = "invalid_reading";  // backwards, implausible jump
inline constexpr const char* kIoError = "io_error";                // read/write failed
inline constexpr const char* kDropped = rk::dropped;               // steps or samples lost
inline constexpr const char* kSkipped = "skipped";                 // deliberately stepped aside
inline constexpr const char* kStale = "stale";                     // input data for other dates
inline constexpr const char* kError = "error";                     // anything else
}  // namespace diag

class Diagnostics {
 public:
  /// Records one occurrence. Entries with the same (source, status) are merged: the count grows,
  /// the first message is kept and the last one remembered.
  void add(const std::string& source, const std::string& status,
           const std::string& message) noexcept;
  /// Adds `count` occurrences at once (e.g. dropped steps).
  void add_count(const std::string& source, const std::string& status, std::uint64_t count,
                 const std::string& message) noexcept;
  /// Number of occurrences recorded for (source, status); 0 if none.
  std::uint64_t count(const std::string& source, const std::string& status) const noexcept;
  /// [{source, status, count, message, last_message}]
  nlohmann::json to_json() const;

 private:
  struct Entry {
    std::string source, status, message, last_message;
    std::uint64_t count = 0;
  };
  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

}  // namespace trainmeter::detail
