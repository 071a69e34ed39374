#include "energy/perf_power.hpp"

#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "base/diagnostics.hpp"
#include "energy/source.hpp"
#include "platform/file.hpp"
#include "platform/text.hpp"

namespace trainmeter::detail {

bool parse_perf_event_config(const std::string& text, std::uint64_t* config) noexcept {
  const std::string t = trim(text);
  bool found = false;
  std::size_t start = 0;
  while (start <= t.size()) {
    std::size_t comma = t.find(',', start);
    if (comma == std::string::npos) comma = t.size();
    const std::string term = t.substr(start, comma - start);
    const std::size_t eq = term.find('=');
    const std::string key = term.substr(0, eq);
    const std::string value = eq == std::string::npos ? "1" : term.substr(eq + 1);
    char* end = nullptr;
    errno = 0;
    const unsigned long long v = std::strtoull(value.c_str(), &end, 0);
    if (errno != 0 || end == value.c_str() || *end != '\0') return false;
    if (key == "event") {
      *config = v;
      found = true;
    } else if (v != 0) {
      return false;  // umask etc. would need the PMU's format/ description; power has none
    }
    start = comma + 1;
  }
  return found;
}

std::vector<int> parse_cpu_list(const std::string& text) {
  std::vector<int> cpus;
  const std::string t = trim(text);
  std::size_t start = 0;
  while (start < t.size()) {
    std::size_t comma = t.find(',', start);
    if (comma == std::string::npos) comma = t.size();
    const std::string part = t.substr(start, comma - start);
    const std::size_t dash = part.find('-');
    const int a = std::atoi(part.c_str());
    const int b = dash == std::string::npos ? a : std::atoi(part.c_str() + dash + 1);
    for (int c = a; c <= b && c - a < 4096; ++c) cpus.push_back(c);
    start = comma + 1;
  }
  return cpus;
}

std::string perf_event_kind(const std::string& event_name) {
  if (event_name == "energy-pkg") return "cpu";
  if (event_name == "energy-ram") return "dram";
  if (event_name == "energy-psys") return "platform";
  return "";
}

PerfPowerPmu read_perf_power_pmu(const std::string& event_source_root) noexcept {
  PerfPowerPmu pmu;
  try {
    const std::string dir = event_source_root + "/power";
    int err = 0;
    auto type_text = read_text_file(dir + "/type", 64, &err);
    if (!type_text) {
      pmu.tried.push_back({"perf", diag::kUnavailable,
                           "no power PMU at " + dir + " (" + errno_text(err) +
                               "): the kernel exposes no RAPL events through perf here"});
      return pmu;
    }
    auto type = parse_int64(type_text->data(), type_text->data() + type_text->size());
    if (!type) {
      pmu.tried.push_back({"perf", diag::kError, dir + "/type is not an integer"});
      return pmu;
    }
    pmu.type = static_cast<int>(*type);
    if (auto mask = read_text_file(dir + "/cpumask", 4096)) pmu.cpus = parse_cpu_list(*mask);
    if (pmu.cpus.empty()) pmu.cpus.push_back(0);
    DIR* d = ::opendir((dir + "/events").c_str());
    if (d == nullptr) {
      pmu.tried.push_back({"perf", diag::kUnavailable, dir + "/events is missing"});
      return pmu;
    }
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("energy-", 0) == 0 && n.find('.') == std::string::npos) names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const std::string& n : names) {
      PerfEventSpec spec;
      spec.name = n;
      auto cfg = read_text_file(dir + "/events/" + n, 256);
      auto scale = read_text_file(dir + "/events/" + n + ".scale", 256);
      if (!cfg || !parse_perf_event_config(*cfg, &spec.config)) {
        pmu.tried.push_back({"perf:" + n, diag::kUnsupported,
                             "event config unreadable or not "
                             "of the form event=0x.."});
        continue;
      }
      char* end = nullptr;
      spec.scale = scale ? std::strtod(scale->c_str(), &end) : 0.0;
      if (!scale || end == scale->c_str() || !(spec.scale > 0)) {
        pmu.tried.push_back({"perf:" + n, diag::kUnsupported, "no usable " + n + ".scale"});
        continue;
      }
      spec.unit = trim(read_text_file(dir + "/events/" + n + ".unit", 64).value_or(""));
      pmu.events.push_back(std::move(spec));
    }
    pmu.present = true;
  } catch (...) {
    pmu.tried.push_back({"perf", diag::kError, "out of memory while probing"});
  }
  return pmu;
}

PerfCounter::~PerfCounter() {
  if (fd_ >= 0) ::close(fd_);
}

PerfCounter& PerfCounter::operator=(PerfCounter&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

namespace {
std::atomic<PerfEventOpenFn> g_perf_event_open{nullptr};
}  // namespace

void set_perf_event_open_for_testing(PerfEventOpenFn fn) noexcept {
  g_perf_event_open.store(fn);
}

int PerfCounter::open(int type, std::uint64_t config, int cpu) noexcept {
  if (const PerfEventOpenFn fake = g_perf_event_open.load()) {
    const int fd = fake(type, config, cpu);
    if (fd < 0) return -fd;
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
    return 0;
  }
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.type = static_cast<std::uint32_t>(type);
  attr.size = sizeof attr;
  attr.config = config;
  // Uncore PMUs count system-wide only: pid -1 on the package's designated CPU.
  const long fd = ::syscall(SYS_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
  if (fd < 0) return errno;
  if (fd_ >= 0) ::close(fd_);
  fd_ = static_cast<int>(fd);
  return 0;
}

bool PerfCounter::read(std::uint64_t* value, int* err) const noexcept {
  std::uint64_t v = 0;
  const ssize_t n = ::read(fd_, &v, sizeof v);
  if (n != static_cast<ssize_t>(sizeof v)) {
    if (err) *err = n < 0 ? errno : EIO;
    return false;
  }
  *value = v;
  return true;
}

std::string perf_open_error_text(const std::string& event, int cpu, int err) {
  std::string text = "perf_event_open(power/" + event + "/, cpu " + std::to_string(cpu) +
                     ") failed: " + errno_text(err);
  if (err == EACCES || err == EPERM)
    text +=
        ". System-wide power events need CAP_PERFMON (or CAP_SYS_ADMIN) or "
        "`sudo sysctl kernel.perf_event_paranoid=0`";
  else if (err == ENOENT || err == ENODEV || err == EOPNOTSUPP || err == EINVAL)
    text += ". The PMU does not support this event on this machine";
  return text;
}

namespace {

// The perf power PMU: the same RAPL counters through perf_event_open, used when powercap gives
// no CPU counter. One channel per event and CPU of the PMU's cpumask, machine-level.
class PerfSource final : public EnergySource {
 public:
  using EnergySource::EnergySource;

  void probe(std::vector<Channel>& channels, unsigned int /*first_gpu*/) override {
    for (const Channel& c : channels) {
      if (c.machine_level && (c.name == "cpu" || c.name == "platform")) {
        // Probed in order: the power PMU reads the same RAPL counters, so reading both would
        // only double the sampling cost.
        env_.tried.push_back(
            {"perf", diag::kSkipped, "RAPL counters are readable through powercap"});
        return;
      }
    }
    PerfPowerPmu pmu = read_perf_power_pmu(env_.config.perf_event_root);
    for (const SourceStatus& s : pmu.tried) env_.note(s);
    if (!pmu.present) return;
    for (const PerfEventSpec& e : pmu.events) {
      std::string kind = perf_event_kind(e.name);
      if (kind.empty()) {
        env_.tried.push_back(
            {"perf:" + e.name, diag::kSkipped, "part of energy-pkg, counted there"});
        continue;
      }
      if (kind == "platform" && !env_.config.rapl_psys) {
        env_.tried.push_back({"perf:" + e.name, diag::kSkipped,
                              "psys overlaps energy-pkg; set TRAINMETER_RAPL_PSYS=1 to use it"});
        continue;
      }
      for (int cpu : pmu.cpus) {
        std::string label =
            "perf:" + e.name + (pmu.cpus.size() > 1 ? ":cpu" + std::to_string(cpu) : "");
        PerfCounter counter;
        const int err = counter.open(pmu.type, e.config, cpu);
        if (err != 0) {
          env_.note({label,
                     (err == EACCES || err == EPERM) ? diag::kPermissionDenied : diag::kUnsupported,
                     perf_open_error_text(e.name, cpu, err)});
          continue;
        }
        env_.tried.push_back({label, "ok", fmt::format("opened, {:g} J per count", e.scale)});
        Channel c;
        c.name = kind;
        c.source = label;
        c.provenance = "measured";
        c.preference = 1;
        c.index = counters_.size();
        c.machine_level = true;
        c.counter = CounterTracker(e.scale, 0, kMaxPlausibleWatts);
        c.attribution = "cpu-time-share";
        counters_.push_back(std::move(counter));
        channels.push_back(std::move(c));
      }
    }
  }

  void prime(Channel& c, const Interval& now) override {
    std::uint64_t v = 0;
    int err = 0;
    if (counters_[c.index].read(&v, &err)) c.counter.update(v, now.now_ns);
  }

  Reading sample(Channel& c, const Interval& in) override {
    std::uint64_t raw = 0;
    int err = 0;
    const bool ok = c.index < counters_.size() && counters_[c.index].read(&raw, &err);
    return {sample_cpu_counter(env_, c, ok, raw, err, in), std::nullopt};
  }

  void describe(const Channel& c, nlohmann::json& /*component*/,
                nlohmann::json& notes) const override {
    describe_machine_counter(c, notes);
  }

  void close() noexcept override { counters_.clear(); }

 private:
  std::vector<PerfCounter> counters_;
};

}  // namespace

std::unique_ptr<EnergySource> make_perf_source(SourceEnv& env) {
  return std::make_unique<PerfSource>(env);
}

}  // namespace trainmeter::detail
