#include "carbon/intensity.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "platform/file.hpp"
#include "platform/text.hpp"
#include "trainmeter/error.hpp"

extern const char kCountryIntensityTsv[];
extern const std::size_t kCountryIntensityTsv_size;
extern const char kRegionIntensityTsv[];
extern const std::size_t kRegionIntensityTsv_size;

namespace trainmeter::detail {
namespace {

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split(std::string_view line, char sep) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t next = line.find(sep, pos);
    if (next == std::string_view::npos) {
      out.push_back(line.substr(pos));
      return out;
    }
    out.push_back(line.substr(pos, next - pos));
    pos = next + 1;
  }
}

// strtod needs a NUL-terminated buffer; the field is copied so a trailing "abc" is detected.
std::optional<double> parse_double(std::string_view text) {
  std::string s(trim_view(text));
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<int> parse_year(std::string_view text) {
  auto v = parse_int64(text.data(), text.data() + text.size());
  if (!v || *v < 1900 || *v > 2100) return std::nullopt;
  return static_cast<int>(*v);
}

// Calls `row(line_number, fields)` for each data line of a TSV table (comments and the header,
// recognised by its first field `header0`, skipped).
template <typename F>
void for_each_tsv_row(std::string_view tsv, std::string_view header0, F&& row) {
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < tsv.size()) {
    std::size_t end = tsv.find('\n', pos);
    if (end == std::string_view::npos) end = tsv.size();
    std::string_view line = tsv.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim_view(line).empty() || line.front() == '#') continue;
    auto fields = split(line, '\t');
    if (fields[0] == header0) continue;
    row(line_no, fields);
  }
}

bool in_range(double g) {
  return g > 0 && g <= kMaxIntensityGPerKwh;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil), so
// parsing never depends on the process's time zone the way mktime() would.
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

void civil_from_days(std::int64_t z, int& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2));
}

// Reads exactly `n` digits at `pos`.
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  pos += n;
  out = v;
  return true;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

ParsedTable<CountryIntensity> parse_country_table(std::string_view tsv) {
  ParsedTable<CountryIntensity> out;
  for_each_tsv_row(tsv, "iso2", [&](std::size_t line, const std::vector<std::string_view>& f) {
    if (f.size() != 6) {
      out.errors.push_back(fmt::format("line {}: {} fields, expected 6", line, f.size()));
      return;
    }
    CountryIntensity row;
    row.iso2 = std::string(trim_view(f[0]));
    row.iso3 = std::string(trim_view(f[1]));
    row.name = std::string(trim_view(f[2]));
    auto g = parse_double(f[3]);
    auto year = parse_year(f[4]);
    row.source = std::string(trim_view(f[5]));
    if (row.iso2.size() != 2 || row.iso3.size() != 3 || upper(row.iso2) != row.iso2 ||
        upper(row.iso3) != row.iso3 || row.name.empty() || !g || !in_range(*g) || !year ||
        row.source.empty()) {
      out.errors.push_back(fmt::format("line {}: malformed or out-of-range row", line));
      return;
    }
    row.g_per_kwh = *g;
    row.year = *year;
    out.rows.push_back(std::move(row));
  });
  return out;
}

ParsedTable<RegionIntensity> parse_region_table(std::string_view tsv) {
  ParsedTable<RegionIntensity> out;
  for_each_tsv_row(tsv, rk::region, [&](std::size_t line, const std::vector<std::string_view>& f) {
    if (f.size() != 6) {
      out.errors.push_back(fmt::format("line {}: {} fields, expected 6", line, f.size()));
      return;
    }
    RegionIntensity row;
    row.region = std::string(trim_view(f[0]));
    row.country = std::string(trim_view(f[1]));
    row.location = std::string(trim_view(f[2]));
    auto g = parse_double(f[3]);
    auto year = parse_year(f[4]);
    row.source = std::string(trim_view(f[5]));
    if (row.region.find(':') == std::string::npos || normalise_region(row.region) != row.region ||
        row.country.size() != 2 || row.location.empty() || !g || !in_range(*g) || !year ||
        row.source.empty()) {
      out.errors.push_back(fmt::format("line {}: malformed or out-of-range row", line));
      return;
    }
    row.g_per_kwh = *g;
    row.year = *year;
    out.rows.push_back(std::move(row));
  });
  return out;
}

void for_each_tsv_line(
    std::string_view tsv, std::string_view header0,
    const std::function<void(std::size_t, const std::vector<std::string_view>&)>& row) {
  for_each_tsv_row(tsv, header0, row);
}

const std::vector<CountryIntensity>& country_table() {
  // The tests check that every embedded row parses, so no error can be dropped here.
  static const std::vector<CountryIntensity> table =
      parse_country_table(std::string_view(kCountryIntensityTsv, kCountryIntensityTsv_size)).rows;
  return table;
}

const std::vector<RegionIntensity>& region_table() {
  static const std::vector<RegionIntensity> table =
      parse_region_table(std::string_view(kRegionIntensityTsv, kRegionIntensityTsv_size)).rows;
  return table;
}

std::optional<CountryIntensity> lookup_country(std::string_view code) {
  const std::string key = upper(trim_view(code));
  if (key.size() != 2 && key.size() != 3) return std::nullopt;
  for (const auto& row : country_table()) {
    if (row.iso2 == key || row.iso3 == key) return row;
  }
  return std::nullopt;
}

std::string normalise_region(std::string_view provider_region) {
  std::string out;
  for (char c : trim_view(provider_region)) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::optional<RegionIntensity> lookup_region(std::string_view provider_region) {
  const std::string key = normalise_region(provider_region);
  for (const auto& row : region_table()) {
    if (row.region == key) return row;
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_utc_timestamp(std::string_view text) {
  std::string_view s = trim_view(text);
  std::size_t pos = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(s, pos, 4, year) || !expect(s, pos, '-') || !digits(s, pos, 2, month) ||
      !expect(s, pos, '-') || !digits(s, pos, 2, day)) {
    return std::nullopt;
  }
  if (pos >= s.size() || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ')) return std::nullopt;
  ++pos;
  if (!digits(s, pos, 2, hour) || !expect(s, pos, ':') || !digits(s, pos, 2, minute)) {
    return std::nullopt;
  }
  std::int64_t frac_ns = 0;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    if (!digits(s, pos, 2, second)) return std::nullopt;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      std::int64_t scale = 100000000;
      std::size_t n = 0;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
        frac_ns += scale * (s[pos] - '0');
        scale /= 10;
        ++pos;
        ++n;
      }
      if (n == 0) return std::nullopt;
    }
  }
  std::int64_t offset_s = 0;
  if (pos < s.size()) {
    if (s[pos] == 'Z' || s[pos] == 'z') {
      ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
      const int sign = s[pos] == '-' ? -1 : 1;
      ++pos;
      int oh = 0, om = 0;
      if (!digits(s, pos, 2, oh)) return std::nullopt;
      if (pos < s.size() && s[pos] == ':') ++pos;
      if (!digits(s, pos, 2, om) || oh > 23 || om > 59) return std::nullopt;
      offset_s = sign * (oh * 3600 + om * 60);
    }
  }
  if (pos != s.size()) return std::nullopt;
  static constexpr int kDaysIn[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDaysIn[month - 1] ||
      (month == 2 && day == 29 && !leap) || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  const std::int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  // ns since the epoch fit in int64 only between 1677 and 2262 (found by tests/fuzz).
  constexpr std::int64_t kMaxSecs = std::numeric_limits<std::int64_t>::max() / 1000000000 - 1;
  if (secs > kMaxSecs || secs < -kMaxSecs) return std::nullopt;
  return secs * 1000000000 + frac_ns;
}

std::string format_utc(std::int64_t unix_ns) {
  std::int64_t secs = unix_ns / 1000000000;
  std::int64_t rem = unix_ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    --secs;
  }
  std::int64_t days = secs / 86400;
  std::int64_t sod = secs % 86400;
  if (sod < 0) {
    sod += 86400;
    --days;
  }
  int y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(days, y, m, d);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", y, m, d, sod / 3600,
                     (sod / 60) % 60, sod % 60, rem / 1000000);
}

IntensitySeries parse_intensity_series(std::string_view csv, const std::string& file) {
  IntensitySeries series;
  series.file = file;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  bool seen_content = false;
  while (pos < csv.size()) {
    std::size_t end = csv.find('\n', pos);
    if (end == std::string_view::npos) end = csv.size();
    std::string_view raw = csv.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    std::string_view line = trim_view(raw);
    if (line.empty() || line.front() == '#') continue;
    const bool first = !seen_content;
    seen_content = true;
    auto fields = split(line, ',');
    std::optional<std::int64_t> ts;
    std::optional<double> g;
    if (fields.size() == 2) {
      ts = parse_utc_timestamp(fields[0]);
      g = parse_double(fields[1]);
    }
    // A header is recognised only on the first line, and only when it starts with a letter and
    // neither field is data, so a mistyped first sample is reported rather than skipped.
    const std::string_view head = trim_view(fields[0]);
    if (first && !ts && !g && fields.size() == 2 && !head.empty() &&
        std::isalpha(static_cast<unsigned char>(head.front()))) {
      continue;
    }
    if (fields.size() != 2) {
      throw Error(fmt::format(
          "TRAINMETER_CARBON_INTENSITY_FILE={}: line {}: '{}': expected 2 comma-separated fields "
          "'timestamp_utc,g_per_kwh', found {}",
          file, line_no, line, fields.size()));
    }
    if (!ts) {
      throw Error(fmt::format(
          "TRAINMETER_CARBON_INTENSITY_FILE={}: line {}: '{}': timestamp '{}' is not ISO 8601 "
          "UTC (e.g. 2026-11-28T10:00:00Z)",
          file, line_no, line, trim_view(fields[0])));
    }
    if (!g || !in_range(*g)) {
      throw Error(fmt::format(
          "TRAINMETER_CARBON_INTENSITY_FILE={}: line {}: '{}': intensity '{}' is not a number in "
          "(0, {}] g CO2e/kWh",
          file, line_no, line, trim_view(fields[1]), kMaxIntensityGPerKwh));
    }
    if (!series.samples.empty() && *ts <= series.samples.back().unix_ns) {
      throw Error(fmt::format(
          "TRAINMETER_CARBON_INTENSITY_FILE={}: line {}: '{}': timestamp is not after the "
          "previous sample's ({}); samples must be in strictly increasing time order",
          file, line_no, line, format_utc(series.samples.back().unix_ns)));
    }
    series.samples.push_back({*ts, *g});
  }
  if (series.samples.empty()) {
    throw Error(fmt::format(
        "TRAINMETER_CARBON_INTENSITY_FILE={}: no samples; expected lines 'timestamp_utc,g_per_kwh'",
        file));
  }
  return series;
}

IntensitySeries load_intensity_series(const std::string& path) {
  int err = 0;
  auto text = read_text_file(path, std::size_t(64) << 20, &err);
  if (!text) {
    throw Error(fmt::format("TRAINMETER_CARBON_INTENSITY_FILE={}: cannot read the file: {}", path,
                            errno_text(err)));
  }
  return parse_intensity_series(*text, path);
}

SeriesIntegration integrate_series(const IntensitySeries& series,
                                   const std::vector<EnergyInterval>& intervals) {
  SeriesIntegration out;
  const auto& s = series.samples;
  if (s.empty()) return out;
  std::vector<bool> used(s.size(), false);
  double weighted = 0;
  // Index of the sample holding at time t: the last one whose timestamp is <= t (the first
  // sample when t precedes the series).
  auto holding = [&](std::int64_t t) -> std::size_t {
    auto it = std::upper_bound(s.begin(), s.end(), t, [](std::int64_t v, const IntensitySample& x) {
      return v < x.unix_ns;
    });
    return it == s.begin() ? 0 : static_cast<std::size_t>(it - s.begin()) - 1;
  };
  auto add = [&](std::size_t k, double e, std::int64_t from) {
    if (e <= 0) return;
    weighted += e * s[k].g_per_kwh;
    out.energy_j += e;
    used[k] = true;
    if (from < s.front().unix_ns) out.energy_before_series_j += e;
  };
  for (const auto& iv : intervals) {
    if (!(iv.energy_j > 0)) continue;
    if (iv.end_unix_ns <= iv.start_unix_ns) {
      add(holding(iv.start_unix_ns), iv.energy_j, iv.start_unix_ns);
      if (iv.start_unix_ns >= s.back().unix_ns) out.energy_after_last_sample_j += iv.energy_j;
      continue;
    }
    // In doubles: an interval may span more than int64 nanoseconds can (fuzz finding).
    const double duration = double(iv.end_unix_ns) - double(iv.start_unix_ns);
    // Walk the pieces of [start, end) cut at sample timestamps.
    std::int64_t t = iv.start_unix_ns;
    while (t < iv.end_unix_ns) {
      std::int64_t piece_end = iv.end_unix_ns;
      std::size_t k;
      if (t < s.front().unix_ns) {
        k = 0;
        piece_end = std::min(piece_end, s.front().unix_ns);
      } else {
        k = holding(t);
        if (k + 1 < s.size()) piece_end = std::min(piece_end, s[k + 1].unix_ns);
      }
      const double e = iv.energy_j * (double(piece_end) - double(t)) / duration;
      add(k, e, t);
      if (t >= s.back().unix_ns) out.energy_after_last_sample_j += e;
      t = piece_end;
    }
  }
  out.weighted_g_per_kwh = out.energy_j > 0 ? weighted / out.energy_j : 0;
  out.samples_used = static_cast<std::size_t>(std::count(used.begin(), used.end(), true));
  return out;
}

}  // namespace trainmeter::detail
