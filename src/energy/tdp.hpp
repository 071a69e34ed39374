// Thermal design power tables (data/cpu_tdp.tsv, data/gpu_tdp.tsv, compiled in), looked up by a
// normalised model name. Used by the estimator and by `trainmeter estimate --cpu/--gpu`.
#pragma once

#include <optional>
#include <string>

namespace trainmeter::detail {

struct TdpMatch {
  std::string model;   ///< the table's model name that matched
  double tdp_w = 0;    ///< thermal design power, watts
  int cores = 0;       ///< physical cores (CPUs; 0 when unknown or a GPU)
  std::string source;  ///< citation of the table row (publisher and year)
};

/// Looks a CPU model string (as in /proc/cpuinfo "model name") up in the CPU TDP table.
std::optional<TdpMatch> find_cpu_tdp(const std::string& model_name);
/// Looks a GPU name (as NVML reports it, or a user's "A100", "H100 SXM"...) up in the GPU table.
std::optional<TdpMatch> find_gpu_tdp(const std::string& gpu_name);

}  // namespace trainmeter::detail
