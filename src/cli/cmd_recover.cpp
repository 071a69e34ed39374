#include <fmt/format.h>

#include "base/report_keys.hpp"
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
  if (a.has("--out") && a.get("--out").empty())
    throw CliError{"--out (-o) needs a file path; omit it for the default beside the stream"};
  // Steps are not kept in memory: they are copied from the stream in a second pass while the
  // report is written (bounded memory for streams of any length).
  detail::RecoverResult r =
      detail::recover_stream(stream, std::size_t(64) << 30, /*keep_steps=*/false);
  if (!r.report) {
    // A finished report given instead of its stream: say so rather than quote the JSON Lines
    // parser's complaint about a multi-line document.
    const auto whole = detail::load_json_file(stream);
    if (whole.value && whole.value->is_object() && whole.value->contains(rk::schema_version))
      throw CliError{fmt::format(
          "{} is a report, not a stream: recover rebuilds a report from the JSON Lines stream "
          "(TRAINMETER_STREAM) of a run that died; this report needs no recovery",
          stream)};
    throw CliError{r.error};
  }
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
  refuse_output_over_input(out, {stream});
  const std::string error = detail::write_recovered_report(stream, r, out);
  if (!error.empty()) throw CliError{error};
  fmt::print("recovered {} step{} from {} into {} (status {}{})\n", r.steps,
             r.steps == 1 ? "" : "s", stream, out,
             detail::string_at(*r.report, rk::pointer(rk::run, rk::status)),
             r.torn_last_line ? "; torn last line dropped" : "");
  return kExitOk;
}

}  // namespace trainmeter::cli
