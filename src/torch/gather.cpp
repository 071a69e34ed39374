// trainmeter::torch::gather and distributed_config: per-rank reports sent to one rank over the
// program's own c10d process group, merged there with export/merge.
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>

#include <fmt/format.h>
#include <torch/torch.h>

#include "core/log.hpp"
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
// A payload larger than this is treated as corrupt rather than allocated (a report with the default
// 100,000 retained steps is ~30 MB).
constexpr std::int64_t kMaxPayloadBytes = std::int64_t(4) << 30;

std::string new_run_id() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  std::random_device rd;
  return fmt::format("{}-{:08x}", stamp, rd());
}

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
    out.replace(out.find("{rank}"), 6, "merged");
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
    if (chosen.empty()) chosen = new_run_id();
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

GatherResult gather(Session& session, c10d::ProcessGroup& group,
                    const GatherOptions& options) noexcept {
  GatherResult result;
  const Report report = session.finish();
  const auto t0 = Clock::now();
  const auto deadline = t0 + options.timeout;
  try {
    result.rank = group.getRank();
    result.world_size = group.getSize();
    const int root = options.root;
    const int world = result.world_size;
    if (root < 0 || root >= world) {
      result.error = fmt::format("root {} is not a rank of this group (size {})", root, world);
      return result;
    }
    // A large report keeps its steps on disk only (Report::json_steps_omitted): send the file.
    std::string from_file;
    if (report.json_steps_omitted && !report.path.empty()) {
      if (auto text = detail::read_text_file(report.path, std::size_t(2) << 30))
        from_file = std::move(*text);
    }
    const std::string& payload = from_file.empty() ? report.json : from_file;
    result.payload_bytes = payload.size();

    if (result.rank != root) {
      // Non-root: size, then the report itself. A size of 0 tells the root there is nothing (the
      // session was disabled) without making it wait for the timeout.
      std::vector<at::Tensor> size{to_device(
          at::full({1}, static_cast<std::int64_t>(payload.size()), at::kLong), options.device)};
      std::string error = wait_for(group.send(size, root, options.tag), deadline);
      if (error.empty() && !payload.empty()) {
        at::Tensor bytes = at::empty({static_cast<std::int64_t>(payload.size())}, at::kByte);
        std::memcpy(bytes.data_ptr<std::uint8_t>(), payload.data(), payload.size());
        std::vector<at::Tensor> data{to_device(bytes, options.device)};
        error = wait_for(group.send(data, root, options.tag + 1), deadline);
      }
      result.sent = error.empty() && !payload.empty();
      if (!error.empty())
        result.error = fmt::format("sending the report to rank {} failed: {}", root, error);
      else if (payload.empty())
        result.error = "the session is disabled: no report to send";
      result.wall_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
      if (!result.error.empty()) detail::log(LogLevel::kWarning, "gather: " + result.error);
      return result;
    }

    // Root: post every size receive at once so one slow rank does not delay hearing from others.
    std::vector<detail::RankReport> inputs;
    std::vector<std::pair<int, std::string>> missing;
    json payload_sizes = json(std::vector<json>(static_cast<std::size_t>(world), nullptr));
    if (!payload.empty()) {
      auto parsed = detail::parse_json_text(payload);
      if (parsed.value) {
        inputs.push_back({report.path.empty() ? fmt::format("gather:rank{}", root) : report.path,
                          std::move(*parsed.value)});
        payload_sizes[static_cast<std::size_t>(root)] = payload.size();
        result.sent = true;
      } else {
        missing.emplace_back(root, "own report unreadable: " + parsed.error);
      }
    } else {
      missing.emplace_back(root, "the session is disabled");
    }
    std::vector<std::vector<at::Tensor>> sizes(static_cast<std::size_t>(world));
    std::vector<c10::intrusive_ptr<c10d::Work>> size_work(static_cast<std::size_t>(world));
    std::vector<std::string> failure(static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) {
      if (r == root) continue;
      sizes[r] = {to_device(at::full({1}, std::int64_t(-1), at::kLong), options.device)};
      try {
        size_work[r] = group.recv(sizes[r], r, options.tag);
      } catch (const std::exception& e) {
        failure[r] = e.what();
      }
    }
    std::vector<std::int64_t> length(static_cast<std::size_t>(world), -1);
    for (int r = 0; r < world; ++r) {
      if (r == root || !size_work[r]) continue;
      failure[r] = wait_for(size_work[r], deadline);
      if (failure[r].empty()) length[r] = sizes[r][0].to(at::kCPU).item<std::int64_t>();
    }
    std::vector<std::vector<at::Tensor>> data(static_cast<std::size_t>(world));
    std::vector<c10::intrusive_ptr<c10d::Work>> data_work(static_cast<std::size_t>(world));
    for (int r = 0; r < world; ++r) {
      if (r == root || !failure[r].empty()) continue;
      if (length[r] <= 0 || length[r] > kMaxPayloadBytes) {
        failure[r] = length[r] == 0
                         ? "its session is disabled"
                         : fmt::format("announced an implausible report size {}", length[r]);
        continue;
      }
      data[r] = {to_device(at::empty({length[r]}, at::kByte), options.device)};
      try {
        data_work[r] = group.recv(data[r], r, options.tag + 1);
      } catch (const std::exception& e) {
        failure[r] = e.what();
      }
    }
    for (int r = 0; r < world; ++r) {
      if (r == root) continue;
      if (failure[r].empty() && data_work[r]) failure[r] = wait_for(data_work[r], deadline);
      if (!failure[r].empty()) {
        missing.emplace_back(r, fmt::format("no report received: {}", failure[r]));
        continue;
      }
      const at::Tensor bytes = data[r][0].to(at::kCPU).contiguous();
      std::string text(reinterpret_cast<const char*>(bytes.data_ptr<std::uint8_t>()),
                       static_cast<std::size_t>(length[r]));
      result.received_bytes += text.size();
      payload_sizes[static_cast<std::size_t>(r)] = text.size();
      auto parsed = detail::parse_json_text(text);
      if (!parsed.value) {
        missing.emplace_back(r, "report received but not JSON: " + parsed.error);
        continue;
      }
      inputs.push_back({fmt::format("gather:rank{}", r), std::move(*parsed.value)});
    }
    for (const auto& [r, why] : missing) result.missing_ranks.push_back(r);
    std::sort(result.missing_ranks.begin(), result.missing_ranks.end());
    if (inputs.empty()) {
      result.error = "no report to merge (every rank missing)";
      result.wall_ns =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
      detail::log(LogLevel::kWarning, "gather: " + result.error);
      return result;
    }

    detail::MergeOptions merge;
    merge.merged_by = "gather";
    merge.world_size = world;
    merge.missing_reasons = missing;
    merge.allow_mixed_run_ids = true;  // ranks of one group are one run, whatever their ids say
    if (const char* addr = std::getenv("MASTER_ADDR"); addr != nullptr && *addr != '\0')
      merge.master_addr = addr;
    merge.master_port = env_port();
    const std::int64_t exchange_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
    merge.gather = {{"timeout_ms", options.timeout.count()},
                    {"payload_bytes", payload_sizes},
                    {"wall_ns", exchange_ns},
                    {"backend", group.getBackendName()}};
    json merged = detail::merge_reports(inputs, merge);
    // Different ids mean the ranks were not started with distributed_config() or torchrun.
    std::string ids;
    for (const json& p : merged["ranks"]["per_rank"])
      if (p["run_id"] != merged["run"]["id"])
        ids += fmt::format(" rank {}: '{}';", p["rank"].get<int>(), p["run_id"].get<std::string>());
    if (!ids.empty())
      merged["diagnostics"].push_back(
          {{"source", "gather"},
           {"status", detail::diag::kError},
           {"count", 1},
           {"message", "ranks wrote reports with other run ids than rank " + std::to_string(root) +
                           "'s (use trainmeter::torch::distributed_config):" + ids},
           {"last_message", nullptr}});
    const std::string& rank_path =
        session.impl() != nullptr ? session.impl()->context().report_path : report.path;
    result.merged_path = options.output.empty() ? merged_path_for(rank_path, session.config(), root)
                                                : options.output;
    const std::string error =
        detail::write_file_atomic(result.merged_path, detail::dump_report(merged));
    result.merged_written = error.empty();
    if (!error.empty()) result.error = "merged report not written: " + error;
    if (!result.missing_ranks.empty() && result.error.empty())
      result.error = fmt::format("{} of {} rank(s) missing", result.missing_ranks.size(), world);
  } catch (const std::exception& e) {
    result.error = std::string("gather failed: ") + e.what();
  } catch (...) {
    result.error = "gather failed";
  }
  result.wall_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  if (!result.error.empty()) detail::log(LogLevel::kWarning, "gather: " + result.error);
  return result;
}

}  // namespace torch
TRAINMETER_END_NAMESPACE
