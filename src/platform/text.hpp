// Small text helpers every layer uses: trimming and UTC timestamps. One copy of each.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace trainmeter::detail {

/// Whitespace as the files we read use it: space, tab, CR, LF.
inline constexpr std::string_view kSpace = " \t\r\n";

/// `s` without leading and trailing characters from `chars`; a view into `s`.
inline std::string_view trim_view(std::string_view s, std::string_view chars = kSpace) noexcept {
  const auto b = s.find_first_not_of(chars);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(chars) - b + 1);
}

/// The same, as its own string.
inline std::string trim(std::string_view s, std::string_view chars = kSpace) {
  return std::string(trim_view(s, chars));
}

/// "2026-12-01T23:36:10.123Z": a Unix time in ns as ISO 8601 UTC with milliseconds.
std::string iso_utc(std::int64_t unix_ns);

}  // namespace trainmeter::detail
