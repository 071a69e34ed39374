#include <fmt/format.h>

#include "cli/cli.hpp"
#include "export/access.hpp"
#include "export/recover.hpp"
#include "report/json_io.hpp"
#include "report/schema.hpp"

namespace trainmeter::cli {

int cmd_recover(const std::vector<std::string>& args) {
  Args a("recover", "STREAM.jsonl [-o REPORT.json]");
  a.option("--out", "report to write (default: the stream's path with .recovered.json)", "-o");
  if (!a.parse(args, 1, 1)) return kExitOk;
  const std::string& stream = a.positional()[0];
  detail::RecoverResult r = detail::recover_stream(stream);
  if (!r.report) throw CliError{r.error};
  const auto errors = detail::validate_schema(*r.report, detail::report_schema(), 1);
  if (!errors.empty())
    throw CliError{
        fmt::format("{}: the recovered report does not validate: {}", stream, errors[0])};
  std::string out = a.get("--out");
  if (out.empty()) {
    const std::string ext = ".jsonl";
    out = stream.size() > ext.size() &&
                  stream.compare(stream.size() - ext.size(), ext.size(), ext) == 0
              ? stream.substr(0, stream.size() - ext.size()) + ".recovered.json"
              : stream + ".recovered.json";
  }
  const std::string error = detail::write_file_atomic(out, detail::dump_report(*r.report));
  if (!error.empty()) throw CliError{error};
  fmt::print("recovered {} step{} from {} into {} (status {}{})\n", r.steps,
             r.steps == 1 ? "" : "s", stream, out, detail::string_at(*r.report, "/run/status"),
             r.torn_last_line ? "; torn last line dropped" : "");
  return kExitOk;
}

}  // namespace trainmeter::cli
