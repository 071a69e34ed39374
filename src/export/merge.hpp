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
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "report/json_io.hpp"

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
// them with allreduce in blocks; merge_reports() (documents in memory) and write_merged_files()
// (`trainmeter merge`, from the rank files) reduce them in memory; all then call merge_compact(),
// so all write the same merged report for the same inputs.

/// Fields of an aligned step reduced by MAX and by SUM (LocalSteps::encode()).
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

/// One rank's steps, indexed by phase, for encode(): of each step only the fields encode() reads
/// (about 80 bytes a step, not the step's JSON).
class LocalSteps {
 public:
  /// No steps yet: give them with add() and the rank with bind().
  LocalSteps() = default;
  /// The steps of `report` for the rank of `summary` (rank_summary() of it).
  LocalSteps(const nlohmann::json& report, const nlohmann::json& summary);
  /// One element of a report's steps[], in order (an element that is not a step is counted only).
  void add(const nlohmann::json& element);
  /// The rank and start time encode() uses, from rank_summary() of the same report.
  void bind(const nlohmann::json& summary);
  /// Elements of steps[] given to add(), steps or not.
  std::size_t elements() const { return elements_; }
  /// Retained steps per phase, in order of first appearance.
  std::vector<std::pair<std::string, std::int64_t>> counts() const;
  /// Writes aligned steps [first, first + n) of `plan`: n x kStepMaxFields values to `max` and
  /// n x kStepSumFields to `sum`; steps this rank did not retain get the reduction identities.
  void encode(const StepPlan& plan, std::int64_t first, std::int64_t n, std::int64_t* max,
              std::int64_t* sum) const;

 private:
  struct Step {
    std::int64_t wall_ns, cpu_ns, peak_tensor_bytes, start_offset_ns, index, samples, tokens;
    std::int64_t loss_micro, energy_micro_j;
    bool warmup, has_start_offset, has_loss, energy_seen, energy_known;
  };
  int rank_ = 0;
  std::optional<std::int64_t> start_unix_ns_;
  std::size_t elements_ = 0;
  std::vector<std::string> order_;  // phases in order of first appearance
  std::map<std::string, std::vector<Step>> by_phase_;
};

/// rank_summary() of a report whose steps[] were not kept (load_report_sections(), steps given
/// to `steps` as they were read): the same summary as rank_summary() of the whole report.
nlohmann::json rank_summary(const nlohmann::json& sections, const LocalSteps& steps,
                            const std::string& origin, const std::string& host_key = "");

/// The reduction identities (what a rank without the step contributes).
void identity_steps(std::int64_t n, std::int64_t* max, std::int64_t* sum);

/// Every aligned step reduced over ranks: plan.total() x kStepMaxFields and x kStepSumFields.
struct ReducedSteps {
  std::vector<std::int64_t> max, sum;
};

/// The merged report from the base rank's full report, every present rank's summary and the
/// reduced steps. Throws Error when the summaries cannot belong to one run (two of one rank,
/// different world sizes, different run ids unless allowed, a rank outside the world).
/// With `with_steps` false, steps[] stays empty: MergedSteps makes its elements one at a time.
nlohmann::json merge_compact(const nlohmann::json& base,
                             const std::vector<nlohmann::json>& summaries, const StepPlan& plan,
                             const ReducedSteps& steps, const MergeOptions& options,
                             bool with_steps = true);

/// The merged report's steps[], made one element at a time from the reduced fields (what
/// merge_compact() puts in steps[]), so that a writer need not hold them all. `plan` and
/// `reduced` must outlive this object.
class MergedSteps {
 public:
  MergedSteps(const StepPlan& plan, const ReducedSteps& reduced,
              const std::vector<nlohmann::json>& summaries);
  std::size_t size() const { return aligned_.size(); }
  /// Element `i` of the merged steps[].
  nlohmann::json at(std::size_t i) const;

 private:
  friend nlohmann::json merge_compact(const nlohmann::json&, const std::vector<nlohmann::json>&,
                                      const StepPlan&, const ReducedSteps&, const MergeOptions&,
                                      bool);
  struct Aligned {
    std::int64_t t = 0;  // plan index
    std::size_t phase_order = 0;
    std::int64_t sort_index = 0;
  };
  struct Step {
    const std::string* phase;
    std::int64_t wall_max, wall_min, offset, cpu_ns, peak_tensor_bytes, ranks;
    std::int64_t loss_count, loss_micro, energy_seen, energy_known, energy_micro_j;
    std::uint64_t samples, tokens;
    int slowest;
    bool multi, warmup;
  };
  Step decode(std::size_t i) const;

  const StepPlan* plan_;
  const ReducedSteps* reduced_;
  std::optional<std::int64_t> run_start_ns_;
  std::vector<Aligned> aligned_;
};

/// The per-rank files of `trainmeter merge`, read one at a time: the lowest rank's sections (the
/// merge's base), every rank's summary and compact steps (LocalSteps), never a DOM of the steps.
struct RankFiles {
  std::vector<nlohmann::json> summaries;
  std::vector<LocalSteps> steps;
  nlohmann::json base;
  /// The largest run.world_size of the files (0 when none has one).
  long long world_size = 0;
  /// "; <origin>: not a trainmeter report ..." per file rank_summary() refused (merge throws).
  std::string problems;
};
/// Loads one report: its sections, steps[] empty, each of its elements given to `on_step` as it
/// is read. Throws (the caller's own exception) when the file cannot be read.
using RankFileLoader =
    std::function<nlohmann::json(const std::string& path, const StepVisitor& on_step)>;
RankFiles read_rank_files(const std::vector<std::string>& paths, const RankFileLoader& load);

/// merge_reports() of the files read by read_rank_files(), written to `out_path` (temp file and
/// rename) with steps[] streamed: the bytes dump_report(merge_reports(...)) writes. Returns the
/// merged report without its steps. Throws Error as merge_reports() does, or for a write error.
/// Memory: the compact steps of every rank (freed once reduced) and the reduced fields (120 bytes
/// per aligned step).
nlohmann::json write_merged_files(RankFiles files, const MergeOptions& options,
                                  const std::string& out_path);

/// Merges per-rank reports into one report valid against docs/report.schema.json. Ranks in
/// [0, world_size) that are not given are listed in run.missing_ranks and ranks.missing.
/// Throws Error (naming the origin) when inputs cannot belong to one run: no reports, a report
/// that is not an object or lacks run.rank/run.world_size, two reports of one rank, different
/// world sizes, or (unless allowed) different run ids.
/// The offline path: rank_summary() of each input, LocalSteps::encode() of each reduced, then
/// merge_compact() with the lowest rank's report as the base.
nlohmann::json merge_reports(const std::vector<RankReport>& ranks, const MergeOptions& options);

}  // namespace trainmeter::detail
