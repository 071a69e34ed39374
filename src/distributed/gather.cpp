// trainmeter::torch::gather and distributed_config: a compact merged report built over the
// program's own c10d process group (per-rank summaries to the root, per-step fields by allreduce),
// merged there with export/merge's merge_compact().
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>

#include <fmt/format.h>
#include <torch/torch.h>

#include "base/report_keys.hpp"
#include "core/log.hpp"
#include "core/run_id.hpp"
#include "core/session_impl.hpp"
#include "export/merge.hpp"
#include "platform/file.hpp"
#include "report/json_io.hpp"
#include "trainmeter/distributed.hpp"

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// A run id travels as a fixed-size byte tensor so one broadcast carries it.
constexpr std::int64_t kRunIdBytes = 128;

std::chrono::milliseconds remaining(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  // 0 ms means "the process group's default timeout" to c10d: never pass it.
  return std::max(left, std::chrono::milliseconds(1));
}

// Waits for `work` until the deadline. "" on success, else why not. An unfinished operation is
// aborted so the process group no longer writes into our tensors.
std::string wait_for(const c10::intrusive_ptr<c10d::Work>& work, Clock::time_point deadline) {
  try {
    if (Clock::now() >= deadline && !work->isCompleted()) {
      work->abort();
      return "timed out";
    }
    if (!work->wait(remaining(deadline))) return "aborted";
    return "";
  } catch (const std::exception& e) {
    try {
      if (!work->isCompleted()) work->abort();
    } catch (...) {
    }
    std::string what = e.what();
    const auto nl = what.find('\n');  // c10 appends a backtrace
    if (nl != std::string::npos) what.resize(nl);
    return what.empty() ? "failed" : what;
  } catch (...) {
    return "failed";
  }
}

at::Tensor to_device(at::Tensor t, const c10::Device& device) {
  return device.is_cpu() ? t : t.to(device);
}

// The merged report's default path: the rank's own path without the ".rank<R>" that
// resolve_output() added (or "{rank}" replaced by "merged").
std::string merged_path_for(const std::string& rank_path, const Config& config, int rank) {
  if (config.output.find("{rank}") != std::string::npos) {
    std::string out = config.output;
    out.replace(out.find("{rank}"), 6, rk::merged);
    return out;
  }
  const std::string tag = ".rank" + std::to_string(rank);
  std::string out = rank_path;
  const auto pos = out.rfind(tag);
  if (pos != std::string::npos) out.erase(pos, tag.size());
  if (out == rank_path) {
    const auto dot = out.rfind(".json");
    if (dot != std::string::npos && dot + 5 == out.size())
      out.insert(dot, ".merged");
    else
      out += ".merged";
  }
  return out;
}

std::optional<int> env_port() {
  const char* p = std::getenv("MASTER_PORT");
  if (p == nullptr || *p == '\0') return std::nullopt;
  char* end = nullptr;
  const long v = std::strtol(p, &end, 10);
  if (*end != '\0' || v < 0 || v > 65535) return std::nullopt;
  return static_cast<int>(v);
}

}  // namespace

Config distributed_config(Config config, c10d::ProcessGroup& group,
                          std::chrono::milliseconds timeout) {
  const int rank = group.getRank();
  config.rank = rank;
  config.world_size = group.getSize();
  at::Tensor id = at::zeros({kRunIdBytes}, at::kByte);
  if (rank == 0) {
    std::string chosen = config.run_id;
    const char* elastic = std::getenv("TORCHELASTIC_RUN_ID");
    if (chosen.empty() && elastic != nullptr && *elastic != '\0') chosen = elastic;
    if (chosen.empty())
      chosen = detail::generate_run_id(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                           std::chrono::system_clock::now().time_since_epoch())
                                           .count());
    if (static_cast<std::int64_t>(chosen.size()) >= kRunIdBytes)
      throw Error(
          fmt::format("trainmeter: invalid configuration:\n  run_id: '{}' is {} bytes; "
                      "accepted: at most {} bytes in a distributed run",
                      chosen, chosen.size(), kRunIdBytes - 1));
    std::memcpy(id.data_ptr<std::uint8_t>(), chosen.data(), chosen.size());
  }
  std::vector<at::Tensor> tensors{id};
  c10d::BroadcastOptions opts;
  opts.rootRank = 0;
  opts.timeout = timeout;
  try {
    auto work = group.broadcast(tensors, opts);
    const std::string error = wait_for(work, Clock::now() + timeout);
    if (!error.empty())
      throw Error(
          fmt::format("trainmeter: could not agree on a run id over the process group "
                      "(rank {} of {}): {}",
                      rank, config.world_size, error));
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(fmt::format("trainmeter: could not agree on a run id over the process group: {}",
                            e.what()));
  }
  const at::Tensor received = tensors[0].to(at::kCPU).contiguous();
  const char* bytes = reinterpret_cast<const char*>(received.data_ptr<std::uint8_t>());
  config.run_id.assign(bytes, strnlen(bytes, kRunIdBytes));
  return config;
}

namespace {

// A rank's summary travels as a fixed-size byte tensor (JSON text, zero-padded), the step plan
// too; per-step fields go in blocks of kBlockSteps aligned steps (docs/distributed.md).
constexpr std::int64_t kSummaryBytes = 4096;
constexpr std::int64_t kPlanBytes = 1024;
constexpr std::int64_t kBlockSteps = 4096;
constexpr const char* kModeAllreduce = "allreduce";
constexpr const char* kModePointToPoint = "point-to-point";

// `doc` as JSON text in a zero-padded tensor of `size` bytes; "" when it does not fit.
std::optional<at::Tensor> text_tensor(const std::string& text, std::int64_t size) {
  if (static_cast<std::int64_t>(text.size()) >= size) return std::nullopt;
  at::Tensor t = at::zeros({size}, at::kByte);
  std::memcpy(t.data_ptr<std::uint8_t>(), text.data(), text.size());
  return t;
}

std::string tensor_text(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kCPU).contiguous();
  const char* bytes = reinterpret_cast<const char*>(c.data_ptr<std::uint8_t>());
  return std::string(bytes, strnlen(bytes, static_cast<std::size_t>(c.numel())));
}

// The summary as it travels: what does not fit is dropped, largest first, and says so.
std::string summary_text(json summary) {
  std::string text = summary.dump();
  for (const char* drop : {rk::diagnostics, rk::memory, rk::phases}) {
    if (static_cast<std::int64_t>(text.size()) < kSummaryBytes) break;
    summary[drop] = drop == std::string(rk::diagnostics) ? json::array() : json(nullptr);
    summary["summary_truncated"] = true;
    text = summary.dump();
  }
  return text;
}

std::int64_t elapsed_ns(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
}

}  // namespace

GatherResult gather(Session& session, c10d::ProcessGroup& group,
                    const GatherOptions& options) noexcept {
  GatherResult result;
  const Report report = session.finish();
  const auto t0 = Clock::now();
  const auto deadline = t0 + options.timeout;
  // The root hears from the ranks for the first half of the timeout, so the ones that reported
  // still have the second half to receive the plan and reduce the steps.
  const auto summaries_deadline = t0 + options.timeout / 2;
  try {
    result.rank = group.getRank();
    result.world_size = group.getSize();
    const int root = options.root;
    const int world = result.world_size;
    const int rank = result.rank;
    if (root < 0 || root >= world) {
      result.error = fmt::format("root {} is not a rank of this group (size {})", root, world);
      return result;
    }
    // This rank's own report: a large one keeps its steps on disk only (json_steps_omitted).
    std::string from_file;
    if (report.json_steps_omitted && !report.path.empty()) {
      if (auto text = detail::read_text_file(report.path, std::size_t(2) << 30))
        from_file = std::move(*text);
    }
    const std::string& own_text = from_file.empty() ? report.json : from_file;
    std::optional<json> own;
    std::string own_problem = own_text.empty() ? "the session is disabled" : "";
    if (!own_text.empty()) {
      auto parsed = detail::parse_json_text(own_text);
      if (parsed.value)
        own = std::move(*parsed.value);
      else
        own_problem = "own report unreadable: " + parsed.error;
    }
    const std::string origin =
        rank == root && !report.path.empty() ? report.path : fmt::format("gather:rank{}", rank);
    json own_summary;
    if (own) {
      try {
        // The host key (hostname + boot id) comes from the report's host section.
        own_summary = detail::rank_summary(*own, origin);
      } catch (const std::exception& e) {
        own_problem = e.what();
        own.reset();
      }
    }
    // An empty summary tells the root there is nothing, without making it wait.
    const std::string own_summary_text = own ? summary_text(own_summary) : std::string();
    std::optional<detail::LocalSteps> local;
    if (own) local.emplace(*own, own_summary);

    auto encode_block = [&](const detail::StepPlan& plan, std::int64_t first, std::int64_t n,
                            at::Tensor& mx, at::Tensor& sm) {
      mx = at::empty({n * detail::kStepMaxFields}, at::kLong);
      sm = at::empty({n * detail::kStepSumFields}, at::kLong);
      if (local)
        local->encode(plan, first, n, mx.data_ptr<std::int64_t>(), sm.data_ptr<std::int64_t>());
      else
        detail::identity_steps(n, mx.data_ptr<std::int64_t>(), sm.data_ptr<std::int64_t>());
      result.payload_bytes += static_cast<std::uint64_t>((mx.numel() + sm.numel()) * 8);
    };
    auto parse_plan = [](const json& p) {
      detail::StepPlan plan;
      plan.phases = p.at(rk::phases).get<std::vector<std::string>>();
      plan.counts = p.at("counts").get<std::vector<std::int64_t>>();
      plan.rank_bits = p.at("rank_bits").get<int>();
      if (plan.phases.size() != plan.counts.size()) throw Error("malformed step plan");
      return plan;
    };
    auto allreduce = [&](at::Tensor& t, c10d::ReduceOp op) {
      std::vector<at::Tensor> v{to_device(t, options.device)};
      c10d::AllreduceOptions o;
      o.reduceOp = op;
      o.timeout = remaining(deadline);
      const std::string error = wait_for(group.allreduce(v, o), deadline);
      if (error.empty()) t = v[0].to(at::kCPU).contiguous();
      return error;
    };
    auto allreduce_block = [&](at::Tensor& mx, at::Tensor& sm) {
      std::string error = allreduce(mx, c10d::ReduceOp::MAX);
      return error.empty() ? allreduce(sm, c10d::ReduceOp::SUM) : error;
    };

    if (rank != root) {
      // 1. The summary to the root.
      at::Tensor summary_t = at::zeros({kSummaryBytes}, at::kByte);
      if (auto t = text_tensor(own_summary_text, kSummaryBytes)) summary_t = *t;
      std::vector<at::Tensor> s{to_device(summary_t, options.device)};
      std::string error = wait_for(group.send(s, root, options.tag), deadline);
      result.payload_bytes += kSummaryBytes;
      // 2. The plan back, 3. the steps, by allreduce (everyone reported) or to the root alone.
      if (error.empty()) {
        std::vector<at::Tensor> p{to_device(at::zeros({kPlanBytes}, at::kByte), options.device)};
        error = wait_for(group.recv(p, root, options.tag + 1), deadline);
        if (error.empty()) {
          auto parsed = detail::parse_json_text(tensor_text(p[0]));
          if (!parsed.value || !parsed.value->is_object())
            error = "the root sent an unreadable step plan";
          else if (parsed.value->value(rk::mode, "") == "none")
            ;  // the root merges without steps
          else {
            const detail::StepPlan plan = parse_plan(*parsed.value);
            const bool collective = parsed.value->value(rk::mode, "") == kModeAllreduce;
            const std::int64_t total = plan.total();
            for (std::int64_t first = 0; first < total && error.empty(); first += kBlockSteps) {
              at::Tensor mx, sm;
              encode_block(plan, first, std::min(kBlockSteps, total - first), mx, sm);
              if (collective) {
                error = allreduce_block(mx, sm);
              } else {
                std::vector<at::Tensor> a{to_device(mx, options.device)};
                std::vector<at::Tensor> b{to_device(sm, options.device)};
                error = wait_for(group.send(a, root, options.tag + 2), deadline);
                if (error.empty()) error = wait_for(group.send(b, root, options.tag + 3), deadline);
              }
            }
          }
        }
      }
      result.sent = error.empty() && own.has_value();
      if (!error.empty())
        result.error = fmt::format("sending the summary to rank {} failed: {}", root, error);
      else if (!own)
        result.error = own_problem + ": no report to send";
      result.wall_ns = elapsed_ns(t0);
      if (!result.error.empty()) detail::log(LogLevel::kWarning, "gather: " + result.error);
      return result;
    }

    // Root. 1. Every rank's summary: all receives posted at once, so one slow rank does not delay
    // hearing from the others.
    std::vector<json> summaries;
    std::vector<std::pair<int, std::string>> missing;
    json payload_sizes = json(std::vector<json>(static_cast<std::size_t>(world), nullptr));
    if (own) {
      summaries.push_back(own_summary);
      payload_sizes[static_cast<std::size_t>(root)] = own_summary_text.size();
      result.sent = true;
    } else {
      missing.emplace_back(root, own_problem);
    }
    std::vector<std::vector<at::Tensor>> recv_t(static_cast<std::size_t>(world));
    std::vector<c10::intrusive_ptr<c10d::Work>> work(static_cast<std::size_t>(world));
    std::vector<std::string> failure(static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) {
      if (r == root) continue;
      recv_t[r] = {to_device(at::zeros({kSummaryBytes}, at::kByte), options.device)};
      try {
        work[r] = group.recv(recv_t[r], r, options.tag);
      } catch (const std::exception& e) {
        failure[r] = e.what();
      }
    }
    std::vector<int> reported;
    for (int r = 0; r < world; ++r) {
      if (r == root) continue;
      if (failure[r].empty() && work[r]) failure[r] = wait_for(work[r], summaries_deadline);
      if (!failure[r].empty()) {
        missing.emplace_back(r, fmt::format("no report received: {}", failure[r]));
        continue;
      }
      result.received_bytes += kSummaryBytes;
      const std::string text = tensor_text(recv_t[r][0]);
      recv_t[r].clear();
      if (text.empty()) {
        missing.emplace_back(r, "its session is disabled");
        reported.push_back(r);  // it still waits for the plan
        continue;
      }
      auto parsed = detail::parse_json_text(text);
      if (!parsed.value || !parsed.value->is_object()) {
        missing.emplace_back(r, "summary received but not JSON: " +
                                    (parsed.value ? std::string("not an object") : parsed.error));
        reported.push_back(r);
        continue;
      }
      payload_sizes[static_cast<std::size_t>(r)] = text.size();
      summaries.push_back(std::move(*parsed.value));
      reported.push_back(r);
    }
    for (const auto& [r, why] : missing) result.missing_ranks.push_back(r);
    std::sort(result.missing_ranks.begin(), result.missing_ranks.end());
    const bool everyone = static_cast<int>(reported.size()) == world - 1;

    // 2. The step plan to every rank that reported; 3. the steps reduced.
    detail::StepPlan plan = detail::step_plan(summaries, world);
    const char* mode = everyone ? kModeAllreduce : kModePointToPoint;
    json plan_json = {{rk::mode, mode},
                      {rk::phases, plan.phases},
                      {"counts", plan.counts},
                      {"rank_bits", plan.rank_bits}};
    std::string step_error;
    auto plan_t = text_tensor(plan_json.dump(), kPlanBytes);
    if (!plan_t) {
      step_error =
          fmt::format("the step plan ({} phases) exceeds {} bytes", plan.phases.size(), kPlanBytes);
      plan = detail::StepPlan{};
      plan_t = text_tensor(json({{rk::mode, "none"}}).dump(), kPlanBytes);
    }
    std::vector<c10::intrusive_ptr<c10d::Work>> plan_work;
    std::vector<std::vector<at::Tensor>> plan_bufs(reported.size());
    for (std::size_t i = 0; i < reported.size(); ++i) {
      plan_bufs[i] = {to_device(*plan_t, options.device)};
      plan_work.push_back(group.send(plan_bufs[i], reported[i], options.tag + 1));
    }
    for (auto& w : plan_work) {
      const std::string e = wait_for(w, deadline);
      if (!e.empty() && step_error.empty()) step_error = "sending the step plan failed: " + e;
    }
    const std::int64_t total = plan.total();
    detail::ReducedSteps reduced;
    reduced.max.resize(static_cast<std::size_t>(total * detail::kStepMaxFields));
    reduced.sum.resize(static_cast<std::size_t>(total * detail::kStepSumFields));
    std::int64_t blocks = 0;
    for (std::int64_t first = 0; first < total && step_error.empty(); first += kBlockSteps) {
      at::Tensor mx, sm;
      encode_block(plan, first, std::min(kBlockSteps, total - first), mx, sm);
      if (everyone) {
        step_error = allreduce_block(mx, sm);
      } else {
        // Someone is missing, so a collective would fail: the others send their blocks here.
        auto* m = mx.data_ptr<std::int64_t>();
        auto* s = sm.data_ptr<std::int64_t>();
        for (int r : reported) {
          std::vector<at::Tensor> a{to_device(at::empty_like(mx), options.device)};
          std::vector<at::Tensor> b{to_device(at::empty_like(sm), options.device)};
          std::string e = wait_for(group.recv(a, r, options.tag + 2), deadline);
          if (e.empty()) e = wait_for(group.recv(b, r, options.tag + 3), deadline);
          if (!e.empty()) {
            step_error = fmt::format("receiving rank {}'s steps failed: {}", r, e);
            break;
          }
          result.received_bytes += static_cast<std::uint64_t>((mx.numel() + sm.numel()) * 8);
          const at::Tensor ca = a[0].to(at::kCPU).contiguous(), cb = b[0].to(at::kCPU).contiguous();
          const auto* pa = ca.data_ptr<std::int64_t>();
          const auto* pb = cb.data_ptr<std::int64_t>();
          for (std::int64_t j = 0; j < mx.numel(); ++j) m[j] = std::max(m[j], pa[j]);
          for (std::int64_t j = 0; j < sm.numel(); ++j) s[j] += pb[j];
        }
      }
      if (!step_error.empty()) break;
      std::memcpy(&reduced.max[static_cast<std::size_t>(first * detail::kStepMaxFields)],
                  mx.data_ptr<std::int64_t>(), static_cast<std::size_t>(mx.numel()) * 8);
      std::memcpy(&reduced.sum[static_cast<std::size_t>(first * detail::kStepSumFields)],
                  sm.data_ptr<std::int64_t>(), static_cast<std::size_t>(sm.numel()) * 8);
      ++blocks;
    }
    if (!step_error.empty()) {
      // Without every block the steps are unknown: merge the summaries alone.
      plan = detail::StepPlan{};
      reduced = detail::ReducedSteps{};
    }
    if (summaries.empty() || !own) {
      result.error = summaries.empty() ? "no report to merge (every rank missing)"
                                       : "the root has no report of its own to merge into";
      result.wall_ns = elapsed_ns(t0);
      detail::log(LogLevel::kWarning, "gather: " + result.error);
      return result;
    }

    detail::MergeOptions merge;
    merge.merged_by = rk::gather;
    merge.world_size = world;
    merge.missing_reasons = missing;
    merge.allow_mixed_run_ids = true;  // ranks of one group are one run, whatever their ids say
    if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0')
      merge.master_addr = addr;
    merge.master_port = env_port();
    merge.gather = {{rk::timeout_ms, options.timeout.count()},
                    {rk::payload_bytes, payload_sizes},
                    {rk::wall_ns, elapsed_ns(t0)},
                    {rk::backend, group.getBackendName()},
                    {rk::mode, mode},
                    {rk::summary_bytes, kSummaryBytes},
                    {rk::block_steps, kBlockSteps},
                    {rk::step_blocks, blocks}};
    json merged = detail::merge_compact(*own, summaries, plan, reduced, merge);
    if (!step_error.empty())
      merged[rk::diagnostics].push_back(
          {{rk::source, rk::gather},
           {rk::status, detail::diag::kError},
           {rk::count, 1},
           {rk::message, "per-step figures not merged: " + step_error},
           {rk::last_message, nullptr}});
    // Different ids mean the ranks were not started with distributed_config() or torchrun.
    std::string ids;
    for (const json& p : merged[rk::ranks][rk::per_rank])
      if (p[rk::run_id] != merged[rk::run][rk::id])
        ids += fmt::format(" rank {}: '{}';", p[rk::rank].get<int>(),
                           p[rk::run_id].get<std::string>());
    if (!ids.empty())
      merged[rk::diagnostics].push_back(
          {{rk::source, rk::gather},
           {rk::status, detail::diag::kError},
           {rk::count, 1},
           {rk::message, "ranks wrote reports with other run ids than rank " +
                             std::to_string(root) +
                             "'s (use trainmeter::torch::distributed_config):" + ids},
           {rk::last_message, nullptr}});
    const std::string& rank_path =
        session.impl() != nullptr ? session.impl()->context().report_path : report.path;
    result.merged_path = options.output.empty() ? merged_path_for(rank_path, session.config(), root)
                                                : options.output;
    const std::string error =
        detail::write_file_atomic(result.merged_path, detail::dump_report(merged));
    result.merged_written = error.empty();
    if (!error.empty()) result.error = "merged report not written: " + error;
    if (!step_error.empty() && result.error.empty()) result.error = step_error;
    if (!result.missing_ranks.empty() && result.error.empty())
      result.error = fmt::format("{} of {} rank(s) missing", result.missing_ranks.size(), world);
  } catch (const std::exception& e) {
    result.error = std::string("gather failed: ") + e.what();
  } catch (...) {
    result.error = "gather failed";
  }
  result.wall_ns = elapsed_ns(t0);
  if (!result.error.empty()) detail::log(LogLevel::kWarning, "gather: " + result.error);
  return result;
}

}  // namespace torch
TRAINMETER_END_NAMESPACE
