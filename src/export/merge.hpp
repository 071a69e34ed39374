// One run report from the per-rank reports of a distributed run. Used offline by `trainmeter
// merge` and online by trainmeter::torch::gather() on rank 0, so both write the same document.
//
// What "merged" means (docs/distributed.md, "The merged report"):
// - Steps are aligned by phase and ordinal: the k-th step of phase p on every rank is one step of
//   the run (data-parallel ranks run the same step sequence). The run's step time is the slowest
//   rank's, since a synchronous collective finishes when the last rank arrives; each merged step
//   also carries the spread (slowest - fastest) and which rank was slowest.
// - Phases are recomputed from the merged steps (samples and tokens summed across ranks); every
//   rank's own phase statistics are kept in ranks.per_rank[].
// - Energy: a process's attributed share (energy_j) is summed over ranks; machine-level counters
//   (RAPL package/DRAM, NVML board energy) read by several ranks on one host are counted once per
//   host and source (machine_total_j).
// - Peaks (memory) are kept per rank; the merged memory section holds the largest of each.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// One rank's report and where it came from (file path or "gather:rank<R>").
struct RankReport {
  std::string origin;
  nlohmann::json report;
};

struct MergeOptions {
  /// "merge" (offline CLI) or "gather" (trainmeter::torch::gather); written to ranks.merged_by.
  std::string merged_by = "merge";
  /// World size when no report carries one that can be trusted (0: from the reports).
  int world_size = 0;
  /// Accept reports whose run.id differs (the merged report uses the lowest rank's id).
  bool allow_mixed_run_ids = false;
  /// Rendezvous address of the run (MASTER_ADDR / MASTER_PORT), when known.
  std::optional<std::string> master_addr;
  std::optional<int> master_port;
  /// Reasons for ranks known to be missing (e.g. "timed out after 30000 ms"), by rank.
  std::vector<std::pair<int, std::string>> missing_reasons;
  /// Extra facts written to ranks.gather (payload sizes, timings); null when merged offline.
  nlohmann::json gather = nullptr;
};

/// Merges per-rank reports into one report valid against docs/report.schema.json. Ranks in
/// [0, world_size) that are not given are listed in run.missing_ranks and ranks.missing.
/// Throws Error (naming the origin) when inputs cannot belong to one run: no reports, a report
/// that is not an object or lacks run.rank/run.world_size, two reports of one rank, different
/// world sizes, or (unless allowed) different run ids.
nlohmann::json merge_reports(const std::vector<RankReport>& ranks, const MergeOptions& options);

}  // namespace trainmeter::detail
