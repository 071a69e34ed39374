// A validator for the subset of JSON Schema (draft-07) that docs/report.schema.json uses: type,
// const, enum, required, properties, additionalProperties, items, minimum, maximum, oneOf,
// anyOf, $ref to "#/definitions/...", plus one extension, "x-nondecreasing" (lists of keys whose
// numbers must not decrease: min <= p50 <= ... <= max), which draft-07 validators ignore. The
// schema is compiled into the library, so `trainmeter validate` needs no files. The test suite
// cross-checks every report with Python's jsonschema.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// The report schema (docs/report.schema.json) as compiled in.
const nlohmann::json& report_schema();

/// Validates `doc` against `schema`; returns every violation as "<json pointer>: <what>" (empty
/// when valid). Stops after `max_errors`.
std::vector<std::string> validate_schema(const nlohmann::json& doc, const nlohmann::json& schema,
                                         std::size_t max_errors = 20);

}  // namespace trainmeter::detail
