// Rebuilding a report from the JSON Lines stream of a run whose writer died (see outputs.hpp for
// the line format).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

struct RecoverResult {
  std::optional<nlohmann::json> report;  ///< schema-valid report, run.status "crashed"
  std::string error;                     ///< one line "<path>: line N: <what>" when report is empty
  std::uint64_t steps = 0;               ///< step lines recovered
  bool torn_last_line = false;
  bool had_footer = false;  ///< the writer finished (status then comes from the footer)
};

/// Reads `path` and rebuilds the report: run, host and config from the header; phases and their
/// statistics recomputed from the step lines with the live report's definitions (exact
/// percentiles, warm-up excluded); memory timeline from the sample lines. A final line without
/// its newline (the writer was killed mid-write) is dropped and counted in diagnostics; any other
/// malformed, wrongly typed or out-of-range line is an error naming the line.
RecoverResult recover_stream(const std::string& path, std::size_t max_bytes = std::size_t(4) << 30);

}  // namespace trainmeter::detail
