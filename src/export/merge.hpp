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

#include <cstdint>
#include <map>
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

// --- The compact merge (docs/distributed.md, "What the gather sends") -------------------------
// A merged report is built from: the base rank's own full report (host, config, model and the
// templates of each section), one compact summary per rank (rank_summary(), a few KiB at most,
// independent of the world size), and per aligned step a fixed number of integers reduced over
// ranks by elementwise MAX and SUM (what allreduce computes). trainmeter::torch::gather() reduces
// them with allreduce in blocks; merge_reports() reduces them in memory from the rank files; both
// then call merge_compact(), so both write the same merged report for the same inputs.

/// Fields of an aligned step reduced by MAX and by SUM (encode_steps()).
constexpr int kStepMaxFields = 7;
constexpr int kStepSumFields = 8;

/// A rank's summary: everything merge_compact() needs from it except its steps. Throws Error
/// (naming `origin`) for a document that is not a per-rank report (or is already merged).
/// `host_key` identifies the machine (hostname + boot id where known; "" = the hostname).
nlohmann::json rank_summary(const nlohmann::json& report, const std::string& origin,
                            const std::string& host_key = "");

/// The aligned steps: phases in merge order and the number of aligned steps of each (the most
/// any rank retained). Every rank encodes its steps against the same plan.
struct StepPlan {
  std::vector<std::string> phases;
  std::vector<std::int64_t> counts;
  int rank_bits = 1;  // bits that hold a rank number inside a MAX key
  std::int64_t total() const;
};
StepPlan step_plan(const std::vector<nlohmann::json>& summaries, int world_size);

/// One rank's steps, indexed by phase, for encode().
class LocalSteps {
 public:
  /// `report` must outlive this object.
  LocalSteps(const nlohmann::json& report, const nlohmann::json& summary);
  /// Writes aligned steps [first, first + n) of `plan`: n x kStepMaxFields values to `max` and
  /// n x kStepSumFields to `sum`; steps this rank did not retain get the reduction identities.
  void encode(const StepPlan& plan, std::int64_t first, std::int64_t n, std::int64_t* max,
              std::int64_t* sum) const;

 private:
  int rank_ = 0;
  std::optional<std::int64_t> start_unix_ns_;
  std::map<std::string, std::vector<const nlohmann::json*>> by_phase_;
};

/// The reduction identities (what a rank without the step contributes).
void identity_steps(std::int64_t n, std::int64_t* max, std::int64_t* sum);

/// Every aligned step reduced over ranks: plan.total() x kStepMaxFields and x kStepSumFields.
struct ReducedSteps {
  std::vector<std::int64_t> max, sum;
};

/// The merged report from the base rank's full report, every present rank's summary and the
/// reduced steps. Throws Error when the summaries cannot belong to one run (two of one rank,
/// different world sizes, different run ids unless allowed, a rank outside the world).
nlohmann::json merge_compact(const nlohmann::json& base,
                             const std::vector<nlohmann::json>& summaries, const StepPlan& plan,
                             const ReducedSteps& steps, const MergeOptions& options);

/// Merges per-rank reports into one report valid against docs/report.schema.json. Ranks in
/// [0, world_size) that are not given are listed in run.missing_ranks and ranks.missing.
/// Throws Error (naming the origin) when inputs cannot belong to one run: no reports, a report
/// that is not an object or lacks run.rank/run.world_size, two reports of one rank, different
/// world sizes, or (unless allowed) different run ids.
/// The offline path: rank_summary() of each input, encode_steps() of each reduced in memory, then
/// merge_compact() with the lowest rank's report as the base.
nlohmann::json merge_reports(const std::vector<RankReport>& ranks, const MergeOptions& options);

}  // namespace trainmeter::detail
