// Report JSON as `trainmeter summary`, `validate`, `compare` and `export` read it: parse, check
// against the compiled-in schema, and render the summary of anything the schema accepts (which
// must never throw). Serialisation must round-trip.
#include <nlohmann/json.hpp>

#include "fuzz_support.hpp"
#include "report/json_io.hpp"
#include "report/schema.hpp"
#include "report/summary.hpp"

using namespace trainmeter;

extern "C" int TM_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const detail::JsonLoad load = detail::parse_json_text(text);
  if (!load.value) {
    fuzz::check(!load.error.empty(), "parse failure without an error message");
    return 0;
  }
  const nlohmann::json& doc = *load.value;
  const std::vector<std::string> errors = detail::validate_schema(doc, detail::report_schema());
  if (errors.empty()) {
    // A schema-valid report: the summary renders without throwing (an exception escaping here
    // aborts, and libFuzzer keeps the input).
    const std::string summary = detail::render_summary(doc);
    fuzz::check(!summary.empty(), "empty summary of a valid report");
  }
  // What we write we can read back, identically (dump_report replaces invalid UTF-8, so compare
  // the re-dumped text, not the documents).
  const std::string dumped = detail::dump_report(doc);
  const detail::JsonLoad again = detail::parse_json_text(dumped);
  fuzz::check(again.value.has_value(), "dump_report output does not parse", again.error);
  fuzz::check(detail::dump_report(*again.value) == dumped, "dump_report is not a fixed point");
  return 0;
}
