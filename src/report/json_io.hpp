// Reading and writing JSON files: atomic writes (temp file + rename) and reads whose errors name
// the file, line and column.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// Serialises a report: top-level keys one per line, pretty-printed, except "steps", written one
/// step object per line (readable and ~3x smaller than pretty-printing every step). Invalid UTF-8
/// in strings is replaced (U+FFFD), non-finite numbers become null.
std::string dump_report(const nlohmann::json& report);

/// Writes `text` to `path` via a temporary file in the same directory, fsync and rename(), so a
/// reader sees the old file or the new one, never half of one. Returns "" or an error message.
std::string write_file_atomic(const std::string& path, const std::string& text) noexcept;

struct JsonLoad {
  std::optional<nlohmann::json> value;
  std::string error;  ///< "<path>: line L, column C: <what>" when value is empty
};
/// Reads and parses a JSON file (at most `max_bytes`).
JsonLoad load_json_file(const std::string& path, std::size_t max_bytes = std::size_t(2) << 30);
/// Parses text; errors are "line L, column C: <what>".
JsonLoad parse_json_text(const std::string& text);

}  // namespace trainmeter::detail
