// Fake /proc and powercap trees for the energy tests.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/component.hpp"
#include "energy/energy.hpp"
#include "report/step_json.hpp"
#include "support/test_support.hpp"

namespace trainmeter::test {

inline double clock_ticks_per_s() {
  return static_cast<double>(::sysconf(_SC_CLK_TCK));
}
inline std::int64_t page_bytes() {
  return ::sysconf(_SC_PAGESIZE);
}

/// A temp folder holding proc/ (self/stat, stat, cpuinfo) and powercap/.
struct FakeMachine {
  TempDir dir;
  std::string proc = dir / "proc";
  std::string powercap = dir / "powercap";
  std::string perf = dir / "perf";
  int cpus = 4;

  explicit FakeMachine(
      const std::string& cpu_model = "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz") {
    std::string info;
    for (int i = 0; i < cpus; ++i)
      info += "processor\t: " + std::to_string(i) + "\nmodel name\t: " + cpu_model +
              "\nphysical id\t: 0\n\n";
    write_file(proc + "/cpuinfo", info);
    set_proc(0, 0, 0);
  }

  /// This process used `proc_ticks` CPU ticks so far, the machine `busy_ticks`.
  void set_proc(std::uint64_t proc_ticks, std::uint64_t busy_ticks, std::int64_t rss_bytes) {
    std::string stat = "4242 (fake (proc)) S";
    for (int field = 4; field <= 24; ++field) {
      std::uint64_t v = 0;
      if (field == 14) v = proc_ticks - proc_ticks / 2;  // utime
      if (field == 15) v = proc_ticks / 2;               // stime
      if (field == 24) v = static_cast<std::uint64_t>(rss_bytes / page_bytes());
      stat += " " + std::to_string(v);
    }
    write_file(proc + "/self/stat", stat + " 0 0 0\n");
    std::string machine = "cpu  " + std::to_string(busy_ticks) + " 0 0 100000 0 0 0 0 0 0\n";
    for (int i = 0; i < cpus; ++i) machine += "cpu" + std::to_string(i) + " 0 0 0 0 0 0 0 0 0 0\n";
    write_file(proc + "/stat", machine + "intr 0\nctxt 0\n");
  }

  /// A RAPL zone: powercap/<entry>/{name, energy_uj, max_energy_range_uj}.
  void zone(const std::string& entry, const std::string& name, std::uint64_t uj,
            std::uint64_t range = 262143328850ULL) {
    write_file(powercap + "/" + entry + "/name", name + "\n");
    set_uj(entry, uj);
    if (range > 0)
      write_file(powercap + "/" + entry + "/max_energy_range_uj", std::to_string(range) + "\n");
  }
  /// Rewrites the counter in place at a fixed width (zero-padded), never truncating, so that a
  /// sampler reading it while a test thread advances it sees a whole number (as sysfs gives).
  void set_uj(const std::string& entry, std::uint64_t uj) {
    const std::string path = powercap + "/" + entry + "/energy_uj";
    char text[32];
    const int n =
        std::snprintf(text, sizeof text, "%020llu\n", static_cast<unsigned long long>(uj));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || ::pwrite(fd, text, static_cast<std::size_t>(n), 0) != n)
      write_file(path, std::to_string(uj) + "\n");
    if (fd >= 0) ::close(fd);
  }

  /// Configures `ctx` to read only this fake machine (no NVML or AMD SMI unless a library is
  /// given).
  void configure(detail::RunContext& ctx, const std::string& nvml = "/nonexistent/libnvml.so",
                 const std::string& amdsmi = "/nonexistent/libamd_smi.so") {
    ctx.config.proc_root = proc;
    ctx.config.powercap_root = powercap;
    ctx.config.perf_event_root = perf;
    ctx.config.nvml_library = nvml;
    ctx.config.amdsmi_library = amdsmi;
    ctx.config.energy_sources = {"auto"};
    ctx.start_ns = 1000;
  }
};

constexpr std::int64_t kSecond = 1000000000;

/// The report sections the energy component writes into, empty.
inline nlohmann::json blank_report() {
  nlohmann::json r;
  r["host"] = {{"gpus", nlohmann::json::array()}};
  r["memory"] = nullptr;
  r["phases"] = nlohmann::json::object();
  r["steps"] = nlohmann::json::array();
  return r;
}

/// The energy component run alone over a fake machine: started at ctx.start_ns, sampled once a
/// second for `samples` seconds, stopped, its sections written into a blank report.
struct EnergyRun {
  nlohmann::json report = blank_report();
  std::unique_ptr<detail::RunContext> ctx = std::make_unique<detail::RunContext>();
};
inline EnergyRun run_energy(FakeMachine& m, std::vector<std::string> sources, int samples,
                            const std::string& nvml = "/nonexistent/libnvml.so",
                            const std::string& amdsmi = "/nonexistent/libamd_smi.so") {
  EnergyRun r;
  m.configure(*r.ctx, nvml, amdsmi);
  r.ctx->config.energy_sources = std::move(sources);
  auto energy = detail::make_energy_component(*r.ctx);
  const auto at = [&r](int s) { return r.ctx->start_ns + std::int64_t{s} * kSecond; };
  energy->start(at(0));
  for (int i = 1; i <= samples; ++i) energy->sample(at(i));
  energy->stop(at(samples));
  energy->contribute(r.report);
  return r;
}

/// The energy component with this `source` label, or nullptr.
inline const nlohmann::json* energy_component(const nlohmann::json& report,
                                              const std::string& source) {
  for (const nlohmann::json& c : report["energy"]["components"])
    if (c["source"] == source) return &c;
  return nullptr;
}

/// The last sources_tried entry of `source`, or nullptr.
inline const nlohmann::json* energy_tried(const nlohmann::json& report, const std::string& source) {
  const nlohmann::json* last = nullptr;
  for (const nlohmann::json& t : report["energy"]["sources_tried"])
    if (t["source"] == source) last = &t;
  return last;
}

/// The session's report step for a component driven alone, over a report whose steps[] the test
/// wrote by hand (index, phase, thread, start_offset_ns, wall_ns): records made from steps[],
/// step_columns(), contribute(report, table), then each step gets the component's columns as the
/// report writer (StepWriter) writes them.
inline void contribute_steps(detail::Component& c, detail::RunContext& ctx,
                             nlohmann::json& report) {
  std::vector<std::string> phases;
  std::vector<detail::StepRecord> records;
  for (const nlohmann::json& s : report["steps"]) {
    detail::StepRecord r{};
    const std::string phase = s.value("phase", std::string("train"));
    std::size_t id = 0;
    while (id < phases.size() && phases[id] != phase) ++id;
    if (id == phases.size()) phases.push_back(phase);
    r.phase = static_cast<std::uint16_t>(id);
    r.seq = s.value("index", std::uint64_t{0});
    r.thread = s.value("thread", std::uint16_t{0});
    r.start_ns = ctx.start_ns + s.value("start_offset_ns", std::int64_t{0});
    r.wall_ns = s.value("wall_ns", std::int64_t{0});
    r.cpu_ns = r.peak_tensor_bytes = r.gpu_ns = r.cuda_peak_tensor_bytes = -1;
    r.cuda_device = -1;
    r.loss = std::nan("");
    for (double& m : r.metrics) m = std::nan("");
    records.push_back(r);
  }
  ctx.phase_name = [phases](std::uint16_t id) {
    return id < phases.size() ? phases[id] : std::string("other");
  };
  const std::size_t n = records.size();
  ctx.steps_collected = [n] { return static_cast<std::uint64_t>(n); };
  detail::StepTable table(records.size());
  c.step_columns(records, table);
  c.contribute(report, table);
  const detail::StepWriter writer(ctx.start_ns, phases, {}, &table);
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::string line;
    writer.append(line, records[i], i);
    const nlohmann::json written = nlohmann::json::parse(line);
    for (const auto& column : table.columns()) {
      if (written.contains(column.key)) report["steps"][i][column.key] = written[column.key];
    }
  }
}

}  // namespace trainmeter::test
