// JSONL stream recovery (`trainmeter recover`): any bytes in the stream file either give an
// error naming a line or a report that the schema accepts.
#include <nlohmann/json.hpp>

#include "export/recover.hpp"
#include "fuzz_support.hpp"
#include "report/schema.hpp"

using namespace trainmeter;

extern "C" int TM_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  const std::string path = fuzz::write_scratch(
      "stream.jsonl", std::string_view(reinterpret_cast<const char*>(data), size));
  const detail::RecoverResult r = detail::recover_stream(path);
  if (!r.report) {
    fuzz::check(!r.error.empty(), "no report and no error");
    return 0;
  }
  const std::vector<std::string> errors =
      detail::validate_schema(*r.report, detail::report_schema());
  fuzz::check(errors.empty(), "recovered report violates the schema",
              errors.empty() ? "" : errors[0]);
  return 0;
}
