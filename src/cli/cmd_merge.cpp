// `trainmeter merge`: one run report from the per-rank reports of a distributed run, offline,
// with the same function trainmeter::torch::gather() uses on rank 0.
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.hpp"
#include "export/merge.hpp"
#include "report/json_io.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::cli {

int cmd_merge(const std::vector<std::string>& args) {
  Args a("merge", "R0.json R1.json ... -o RUN.json [--world-size N] [--allow-mixed-ids]");
  a.option("--out", "merged report path (required)", "-o")
      .option("--world-size", "ranks the run had (default: run.world_size of the reports)")
      .option("--master-addr", "rendezvous address to record in run.master_addr")
      .option("--master-port", "rendezvous port to record in run.master_port")
      .flag("--allow-mixed-ids",
            "merge reports whose run.id differ (the lowest rank's id is kept)");
  if (!a.parse(args, 1, 100000)) return kExitOk;
  if (!a.has("--out")) throw CliError{"--out (-o) is required: where to write the merged report"};

  std::vector<detail::RankReport> inputs;
  for (const std::string& path : a.positional()) inputs.push_back({path, load_report(path)});
  detail::MergeOptions options;
  options.merged_by = "merge";
  options.allow_mixed_run_ids = a.has("--allow-mixed-ids");
  if (const auto w = a.integer("--world-size")) {
    if (*w < 1 || *w > 1000000)
      throw CliError{fmt::format("--world-size {}: accepted: an integer from 1 to 1000000", *w)};
    options.world_size = static_cast<int>(*w);
  }
  if (a.has("--master-addr")) options.master_addr = a.get("--master-addr");
  if (const auto p = a.integer("--master-port")) {
    if (*p < 0 || *p > 65535)
      throw CliError{fmt::format("--master-port {}: accepted: 0 to 65535", *p)};
    options.master_port = static_cast<int>(*p);
  }

  nlohmann::json merged;
  try {
    merged = detail::merge_reports(inputs, options);
  } catch (const Error& e) {
    throw CliError{e.what()};
  }
  const std::string out = a.get("--out");
  const std::string error = detail::write_file_atomic(out, detail::dump_report(merged));
  if (!error.empty()) throw CliError{fmt::format("cannot write {}: {}", out, error)};
  const auto& missing = merged["run"]["missing_ranks"];
  fmt::print("{}: merged {} of {} rank(s){}\n", out, inputs.size(),
             merged["ranks"]["world_size"].get<int>(),
             missing.empty() ? std::string() : fmt::format("; missing: {}", missing.dump()));
  return kExitOk;
}

}  // namespace trainmeter::cli
