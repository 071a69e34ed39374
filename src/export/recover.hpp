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
///
/// The stream is read one line at a time. With `keep_steps` false the report's steps[] is left
/// empty (RecoverResult::steps still counts them) and write_recovered_report() writes them from a
/// second pass over the stream: memory is then bounded by the report's sections plus 16 bytes a
/// step (the exact percentiles' wall and CPU times), whatever the stream's length.
RecoverResult recover_stream(const std::string& path, std::size_t max_bytes = std::size_t(4) << 30,
                             bool keep_steps = true);

/// Writes `result` (from recover_stream(stream_path, ..., false) or with its steps) to
/// `out_path` through a temporary file and rename: the bytes dump_report() writes for the same
/// report with its steps. Returns "" or a one-line error.
std::string write_recovered_report(const std::string& stream_path, const RecoverResult& result,
                                   const std::string& out_path) noexcept;

}  // namespace trainmeter::detail
