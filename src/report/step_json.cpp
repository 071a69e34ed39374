#include "report/step_json.hpp"

#include <cmath>

#include <fmt/format.h>

#include "core/component.hpp"

namespace trainmeter::detail {

nlohmann::json step_json(const StepRecord& r, std::int64_t run_start_ns, const std::string& phase,
                         const std::vector<std::string>& metric_names) {
  using nlohmann::json;
  auto nullable = [](double x) { return std::isfinite(x) ? json(x) : json(nullptr); };
  auto count_or_null = [](std::int64_t v) { return v >= 0 ? json(v) : json(nullptr); };
  json s = {{"index", r.seq},
            {"phase", phase},
            {"thread", r.thread},
            {"start_offset_ns", r.start_ns - run_start_ns},
            {"wall_ns", r.wall_ns},
            {"cpu_ns", count_or_null(r.cpu_ns)},
            {"samples", r.samples},
            {"tokens", r.tokens},
            {"warmup", (r.flags & kStepWarmup) != 0},
            {"loss", nullable(r.loss)},
            {"peak_tensor_bytes", count_or_null(r.peak_tensor_bytes)},
            {"gpu_ns", count_or_null(r.gpu_ns)},
            {"peak_cuda_tensor_bytes",
             r.cuda_device >= 0 && r.cuda_peak_tensor_bytes >= 0
                 ? json{{fmt::format("cuda:{}", r.cuda_device), r.cuda_peak_tensor_bytes}}
                 : json(nullptr)}};
  if (!metric_names.empty()) {
    json m = json::object();
    for (std::size_t k = 0; k < metric_names.size() && k < std::size_t(kMaxMetrics); ++k)
      m[metric_names[k]] = nullable(r.metrics[k]);
    s["metrics"] = std::move(m);
  }
  return s;
}

}  // namespace trainmeter::detail
