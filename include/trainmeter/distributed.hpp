// trainmeter::torch distributed runs: one merged run report gathered over the program's own
// libtorch c10d process group (Gloo on CPU, NCCL on GPU), no transport of trainmeter's own.
//
// Link trainmeter::torch. This header includes libtorch's c10d ProcessGroup header; include it
// only in translation units that already use c10d.
//
//   auto config = trainmeter::torch::distributed_config(trainmeter::Config::from_env(), *pg);
//   trainmeter::Session session(config);      // writes runs/<name>.rank<R>.json at finish
//   ... training with pg->allreduce(...) ...
//   auto result = trainmeter::torch::gather(session, *pg);  // rank 0 writes runs/<name>.json
//
// See docs/distributed.md for what the merged report holds and what the gather costs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "trainmeter/config.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

/// `config` with rank and world_size taken from the process group, and one run_id shared by every
/// rank: config.run_id if rank 0 has one, else TORCHELASTIC_RUN_ID, else an id rank 0 generates;
/// rank 0's choice is broadcast to all. A collective: every rank must call it, before creating its
/// Session. Throws Error when the broadcast fails or exceeds `timeout` (this is setup, before any
/// Session records).
TRAINMETER_EXPORT Config
distributed_config(Config config, c10d::ProcessGroup& group,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

struct GatherOptions {
  /// Bound on the whole gather on every rank, from the moment gather() is called (after the local
  /// finish()). The root waits at most half of it for the ranks' summaries (a rank not heard from
  /// by then is missing), and the rest for the per-step reduction; other ranks give up after it.
  /// Ranks that finish training much later than the root need a timeout of twice that lag.
  std::chrono::milliseconds timeout = std::chrono::seconds(120);
  /// Merged report path on the root; "" = the session's report path without its ".rank<R>" part
  /// ("runs/<name>.json").
  std::string output;
  /// Rank that receives every summary and writes the merged report.
  int root = 0;
  /// Device of the tensors exchanged: CPU for Gloo; a CUDA device for NCCL process groups (NCCL
  /// moves CUDA tensors only).
  c10::Device device = c10::Device(c10::kCPU);
  /// Tags of the point-to-point messages (summaries use `tag`, the step plan `tag + 1`, step
  /// blocks sent to the root when a rank is missing `tag + 2` and `tag + 3`); change them only if
  /// the program's own send/recv use these values.
  int tag = 0x746d0;
};

/// What gather() did on this rank.
struct GatherResult {
  int rank = -1;
  int world_size = 0;
  /// This rank's summary and steps reached the root (true on the root itself when the session
  /// wrote a report).
  bool sent = false;
  /// Root only: the merged report was written to merged_path.
  bool merged_written = false;
  std::string merged_path;
  /// Root only: ranks whose summary did not arrive (died, timed out, disabled session).
  std::vector<int> missing_ranks;
  /// Bytes of the tensors this rank handed to the process group: its fixed-size summary (not on
  /// the root) plus its per-step blocks. Independent of the world size.
  std::uint64_t payload_bytes = 0;
  /// Root only: bytes of the summaries (and, with a rank missing, step blocks) received
  /// point-to-point.
  std::uint64_t received_bytes = 0;
  /// Wall time spent in gather() after finish(), in nanoseconds.
  std::int64_t wall_ns = 0;
  /// "" when every step succeeded, else what failed (also in the merged report's diagnostics).
  std::string error;
};

/// Finishes `session` (finish() is idempotent: calling it first is fine; each rank keeps its own
/// full report) and builds the merged run report on `options.root` from compact data: each rank
/// sends the root a fixed-size summary (a few KiB: phase statistics, peaks, energy per component,
/// host key), the root answers with the step plan, and the per-step fields (slowest rank, spread,
/// samples, energy) are reduced by allreduce MAX/SUM in blocks of fixed-size tensors; when a rank
/// is missing the others send their blocks to the root instead. The root merges with the function
/// `trainmeter merge` uses and writes the merged report, listing missing ranks with the reason.
/// A collective: every rank should call it once, from one thread, with the same options.
///
/// Never throws and never waits longer than options.timeout (plus the time to merge and write):
/// failures of the process group, a dead or late rank, a disabled session become
/// GatherResult::error and, on the root, diagnostics of the merged report.
TRAINMETER_EXPORT GatherResult gather(Session& session, c10d::ProcessGroup& group,
                                      const GatherOptions& options = GatherOptions()) noexcept;

}  // namespace torch
TRAINMETER_END_NAMESPACE
