#include "platform/text.hpp"

#include <cstdio>
#include <ctime>

namespace trainmeter::detail {

std::string iso_utc(std::int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1000000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  const std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>((unix_ns / 1000000) % 1000));
  return buf;
}

}  // namespace trainmeter::detail
