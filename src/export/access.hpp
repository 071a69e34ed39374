// Tolerant accessors into a report document for the exporters: a missing key, null or a value of
// the wrong type reads as "absent" instead of throwing, so an export of a partial report (an
// older schema, a recovered stream) still renders what is there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// The value at a JSON pointer ("/energy/total_j"), or nullptr when absent.
const nlohmann::json* json_at(const nlohmann::json& doc, std::string_view pointer) noexcept;
/// A finite number at `pointer`, else nullopt.
std::optional<double> number_at(const nlohmann::json& doc, std::string_view pointer) noexcept;
/// A string at `pointer`, else `fallback`.
std::string string_at(const nlohmann::json& doc, std::string_view pointer,
                      const std::string& fallback = "");

/// memory.peak_tensor_bytes as {device: bytes} (the schema's form; a plain number, as older
/// reports wrote it, reads as {"cpu": n}). Empty when not measured.
std::vector<std::pair<std::string, double>> tensor_peaks(const nlohmann::json& report);
/// Sum of the per-device tensor peaks (an upper bound of bytes held at once), nullopt when none.
std::optional<double> tensor_peak_sum(const nlohmann::json& report);

/// Non-warm-up steps' wall times (ns) of `phase` from report["steps"], in index order. Empty when
/// the steps are not retained (a report whose steps live in a stream).
std::vector<double> retained_step_times(const nlohmann::json& report, const std::string& phase);

/// The phase an export or comparison describes by default: "train" when present, else the phase
/// with most steps; "" when there are none.
std::string main_phase(const nlohmann::json& report);

/// Report path with a trailing ".json" replaced by `suffix` (appended when there is none).
std::string beside_report(const std::string& report_path, const std::string& suffix);

}  // namespace trainmeter::detail
