// `trainmeter merge`: one run report from the per-rank reports of a distributed run, offline,
// with the same function trainmeter::torch::gather() uses on rank 0.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "cli/cli.hpp"
#include "export/merge.hpp"
#include "report/json_io.hpp"
#include "trainmeter/config.hpp"
#include "trainmeter/error.hpp"

namespace trainmeter::cli {
namespace {
// A merge needs at least one report per this many ranks of the world size.
constexpr long long kMaxMissingPerGiven = 16;
}  // namespace

int cmd_merge(const std::vector<std::string>& args) {
  Args a("merge", "R0.json R1.json ... -o RUN.json [--world-size N] [--allow-mixed-ids]");
  a.option("--out", "merged report path (required)", "-o")
      .option("--world-size", "ranks the run had (default: run.world_size of the reports)")
      .option("--master-addr", "rendezvous address to record in run.master_addr")
      .option("--master-port", "rendezvous port to record in run.master_port")
      .flag("--allow-mixed-ids",
            "merge reports whose run.id differ (the lowest rank's id is kept)");
  if (!a.parse(args, 1, 100000)) return kExitOk;
  if (!a.has("--out") || a.get("--out").empty())
    throw CliError{"--out (-o) is required: where to write the merged report"};
  refuse_output_over_input(a.get("--out"), a.positional());

  // Each rank is read once as its sections and its steps' compact fields, one file at a time:
  // memory is those fields (about 80 bytes a step and rank), never a DOM of the steps.
  detail::RankFiles inputs = detail::read_rank_files(
      a.positional(), [](const std::string& path, const detail::StepVisitor& on_step) {
        return load_report(path, false, on_step);
      });
  const std::size_t given = a.positional().size();
  detail::MergeOptions options;
  options.merged_by = "merge";
  options.allow_mixed_run_ids = a.has("--allow-mixed-ids");
  if (const auto w = a.integer("--world-size")) {
    const ConfigKey& key = config_key(rk::world_size);
    if (double(*w) < key.min_value || double(*w) > key.max_value)
      throw CliError{fmt::format("--world-size {}: accepted: {} (as TRAINMETER_WORLD_SIZE)", *w,
                                 key.accepted)};
    options.world_size = static_cast<int>(*w);
  }
  if (a.has("--master-addr")) options.master_addr = a.get("--master-addr");
  if (const auto p = a.integer("--master-port")) {
    if (*p < 0 || *p > 65535)
      throw CliError{fmt::format("--master-port {}: accepted: 0 to 65535", *p)};
    options.master_port = static_cast<int>(*p);
  }

  // Every rank not given is listed as missing; a world size far above the ranks given is a typo
  // or the wrong files, not a run (1,000,000 would write a 600 MB list of missing ranks).
  long long world = options.world_size;
  if (options.world_size == 0) world = std::max(world, inputs.world_size);
  if (world > kMaxMissingPerGiven * static_cast<long long>(given))
    throw CliError{fmt::format(
        "world size {} with {} report(s) given: at least 1 rank in {} must be given (the others "
        "are listed as missing); check --world-size and the files",
        world, given, kMaxMissingPerGiven)};

  // The merged report is written as its steps are made (the bytes of dump_report()).
  const std::string out = a.get("--out");
  nlohmann::json merged;
  try {
    merged = detail::write_merged_files(std::move(inputs), options, out);
  } catch (const Error& e) {
    throw CliError{e.what()};
  }
  const auto& missing = merged[rk::run][rk::missing_ranks];
  fmt::print("{}: merged {} of {} rank(s){}\n", out, given,
             merged[rk::ranks][rk::world_size].get<int>(),
             missing.empty() ? std::string() : fmt::format("; missing: {}", missing.dump()));
  return kExitOk;
}

}  // namespace trainmeter::cli
