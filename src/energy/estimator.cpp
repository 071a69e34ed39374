#include "energy/estimator.hpp"

#include <set>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "energy/source.hpp"
#include "energy/tdp.hpp"
#include "platform/file.hpp"

namespace trainmeter::detail {

CpuIdentity read_cpu_identity(const std::string& proc_root) noexcept {
  CpuIdentity id;
  try {
    auto text = read_text_file(proc_root + "/cpuinfo", 4 << 20);
    if (!text) return id;
    std::set<std::string> packages;
    std::size_t pos = 0;
    while (pos < text->size()) {
      std::size_t nl = text->find('\n', pos);
      if (nl == std::string::npos) nl = text->size();
      const std::string line = text->substr(pos, nl - pos);
      pos = nl + 1;
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = line.substr(0, colon);
      while (!key.empty() && (key.back() == ' ' || key.back() == '\t')) key.pop_back();
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(value.begin());
      if (key == "processor")
        ++id.logical_cpus;
      else if (key == "model name" && id.model.empty())
        id.model = value;
      else if (key == "physical id")
        packages.insert(value);
    }
    if (!packages.empty()) id.sockets = static_cast<int>(packages.size());
  } catch (...) {
  }
  return id;
}

CpuTdpChoice choose_cpu_tdp(const CpuIdentity& cpu, std::optional<double> override_w) noexcept {
  CpuTdpChoice c;
  try {
    if (override_w && *override_w > 0) {
      c.machine_tdp_w = *override_w;
      c.socket_tdp_w = *override_w / (cpu.sockets > 0 ? cpu.sockets : 1);
      c.basis = "override";
      c.source = "TRAINMETER_CPU_TDP_W (cpu_tdp_w)";
      return c;
    }
    if (auto m = find_cpu_tdp(cpu.model)) {
      c.socket_tdp_w = m->tdp_w;
      c.machine_tdp_w = m->tdp_w * (cpu.sockets > 0 ? cpu.sockets : 1);
      c.basis = "table";
      c.matched_model = m->model;
      c.source = "data/cpu_tdp.tsv: " + m->source;
      return c;
    }
    const int threads = cpu.logical_cpus > 0 ? cpu.logical_cpus : 1;
    c.machine_tdp_w = kDefaultCpuWattsPerThread * threads;
    c.socket_tdp_w = c.machine_tdp_w / (cpu.sockets > 0 ? cpu.sockets : 1);
    c.basis = "per-thread default";
    c.source =
        "4 W per hardware thread (CodeCarbon v3.3.0 core/cpu.py, model not in "
        "data/cpu_tdp.tsv)";
  } catch (...) {
  }
  return c;
}

double estimate_cpu_joules(double machine_tdp_w, double process_cpu_s, int logical_cpus) noexcept {
  if (logical_cpus <= 0) return 0;
  return machine_tdp_w * process_cpu_s / logical_cpus;
}

double estimate_ram_watts(std::int64_t rss_bytes) noexcept {
  return kRamWattsPerGiB * static_cast<double>(rss_bytes) / (1024.0 * 1024.0 * 1024.0);
}

GpuTdpChoice choose_gpu_tdp(const std::string& gpu_name, double power_limit_w) noexcept {
  GpuTdpChoice c;
  try {
    if (auto m = find_gpu_tdp(gpu_name)) {
      c.tdp_w = m->tdp_w;
      c.basis = "table";
      c.source = "data/gpu_tdp.tsv: " + m->model + ", " + m->source;
    } else if (power_limit_w > 0) {
      c.tdp_w = power_limit_w;
      c.basis = "power limit";
      c.source = "NVML enforced power limit (model not in data/gpu_tdp.tsv)";
    } else {
      c.tdp_w = kDefaultGpuWatts;
      c.basis = "default";
      c.source = "Green Algorithms TDP_gpu.csv v3.0 model \"Any\" (2025)";
    }
  } catch (...) {
  }
  return c;
}

namespace {

// The estimate when nothing is measured: CPU from its TDP x this process's CPU time, RAM from
// W/GiB x RSS. (A GPU without energy or power is estimated by its GPU source.)
class EstimateSource final : public EnergySource {
 public:
  using EnergySource::EnergySource;

  void probe(std::vector<Channel>& channels, unsigned int /*first_gpu*/) override {
    cpu_ = read_cpu_identity(env_.config.proc_root);
    if (cpu_.logical_cpus <= 0) cpu_.logical_cpus = env_.logical_cpus;
    if (env_.logical_cpus > 0) cpu_.logical_cpus = env_.logical_cpus;
    tdp_ = choose_cpu_tdp(cpu_, env_.config.cpu_tdp_w);
    const auto add = [&channels](const char* name, const char* source, std::size_t index,
                                 const char* attribution) {
      Channel c;
      c.name = name;
      c.source = source;
      c.provenance = "estimated";
      c.index = index;
      c.has_machine = false;
      c.list_unused = false;
      c.attribution = attribution;
      channels.push_back(std::move(c));
    };
    add("cpu", "estimate:tdp", kCpu, "process-cpu-time");
    add("dram", "estimate:rss", kRam, "process-rss");
    env_.tried.push_back({"estimate:tdp", "ok",
                          fmt::format("CPU TDP {:.1f} W ({}) for \"{}\"", tdp_.machine_tdp_w,
                                      tdp_.basis, cpu_.model)});
  }

  void prime(Channel& c, const Interval& now) override {
    if (c.index == kRam && now.rss_bytes) {
      c.has_power = true;
      c.last_power_w = estimate_ram_watts(*now.rss_bytes);
    }
  }

  void begin_interval(const Interval& in) override {
    if (in.process_cpu_s) {
      total_proc_cpu_s_ += *in.process_cpu_s;
      total_wall_s_ += in.dt_s;
    }
    if (in.rss_bytes) {
      rss_sum_ += static_cast<double>(*in.rss_bytes);
      ++rss_samples_;
    }
  }

  Reading sample(Channel& c, const Interval& in) override {
    Reading out;
    if (c.index == kCpu) {
      if (in.process_cpu_s) {
        out.attributed_j =
            estimate_cpu_joules(tdp_.machine_tdp_w, *in.process_cpu_s, cpu_.logical_cpus);
        c.state = ChannelState::kQualified;
      }
    } else if (in.rss_bytes) {
      const double p = estimate_ram_watts(*in.rss_bytes);
      if (c.has_power) {
        out.attributed_j = 0.5 * (c.last_power_w + p) * in.dt_s;
        c.state = ChannelState::kQualified;
      }
      c.has_power = true;
      c.last_power_w = p;
    }
    return out;
  }

  void describe(const Channel& c, nlohmann::json& j, nlohmann::json& notes) const override {
    using nlohmann::json;
    if (c.index == kCpu) {
      const double util = total_wall_s_ > 0 && cpu_.logical_cpus > 0
                              ? total_proc_cpu_s_ / (total_wall_s_ * cpu_.logical_cpus)
                              : 0.0;
      j[rk::inputs] = {{rk::cpu_model, cpu_.model},
                       {"sockets", cpu_.sockets},
                       {rk::logical_cpus, cpu_.logical_cpus},
                       {"tdp_w", tdp_.machine_tdp_w},
                       {"tdp_basis", tdp_.basis},
                       {"tdp_source", tdp_.source},
                       {"tdp_table_model",
                        tdp_.matched_model.empty() ? json(nullptr) : json(tdp_.matched_model)},
                       {"process_cpu_s", total_proc_cpu_s_},
                       {"wall_s", total_wall_s_},
                       {"mean_utilisation", util}};
      j[rk::constants] = {{"default_w_per_thread", kDefaultCpuWattsPerThread},
                          {"default_w_per_thread_source", "CodeCarbon v3.3.0 core/cpu.py"}};
      notes.push_back(
          "P = TDP x process CPU time / (wall time x logical CPUs), per interval "
          "(CodeCarbon's process mode)");
    } else {
      j[rk::inputs] = {
          {"mean_rss_bytes", rss_samples_ > 0 ? json(rss_sum_ / rss_samples_) : json(nullptr)},
          {"wall_s", c.covered_s}};
      j[rk::constants] = {
          {"w_per_gib", kRamWattsPerGiB},
          {"w_per_gib_source", "3 W per 8 GB, CodeCarbon v2 RAM model (citing Crucial); Eco2AI"}};
      notes.push_back("P = w_per_gib x process RSS (GiB), trapezoid between samples");
    }
  }

 private:
  static constexpr std::size_t kCpu = 0, kRam = 1;
  CpuIdentity cpu_;
  CpuTdpChoice tdp_;
  std::uint64_t rss_samples_ = 0;
  double rss_sum_ = 0, total_proc_cpu_s_ = 0, total_wall_s_ = 0;
};

}  // namespace

std::unique_ptr<EnergySource> make_estimate_source(SourceEnv& env) {
  return std::make_unique<EstimateSource>(env);
}

}  // namespace trainmeter::detail
