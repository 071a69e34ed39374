// A strict RFC 4180 CSV reader, used to check an existing emissions.csv before appending to it.
#pragma once

#include <string>
#include <vector>

namespace trainmeter::detail {

struct CsvTable {
  std::vector<std::vector<std::string>> rows;  ///< header first
  std::string error;  ///< "<name>: line L, column C: <what>" when the text is malformed
};

/// Parses CSV text (fields separated by ',', records by "\n" or "\r\n", fields with ',', '"' or
/// newlines quoted with doubled quotes inside). Rejects an unterminated quote, text after a
/// closing quote, rows whose field count differs from the header's, and more than `max_rows`.
CsvTable parse_csv(const std::string& text, const std::string& name,
                   std::size_t max_rows = 10000000);

/// One field quoted when needed (RFC 4180).
std::string csv_field(const std::string& value);

}  // namespace trainmeter::detail
