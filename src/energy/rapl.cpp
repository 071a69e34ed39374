#include "energy/rapl.hpp"

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include <fmt/format.h>

#include "base/diagnostics.hpp"
#include "energy/source.hpp"
#include "platform/text.hpp"

namespace trainmeter::detail {
namespace {

struct Zone {
  std::string entry;  // "intel-rapl:0:1"
  bool mmio = false;
  std::string parent;  // "intel-rapl:0" for a child, "" for a top-level zone
  std::string name;
};

// "intel-rapl:0:1" -> parent "intel-rapl:0"; "intel-rapl:0" -> "".
std::string parent_of(const std::string& entry) {
  const std::size_t first = entry.find(':');
  const std::size_t last = entry.rfind(':');
  return first == last ? std::string() : entry.substr(0, last);
}

// Numeric-aware order so intel-rapl:10 follows intel-rapl:9.
bool zone_less(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

}  // namespace

std::string rapl_open_error_text(const std::string& path, int err) {
  if (err == EACCES || err == EPERM) {
    return "cannot read " + path + ": " + errno_text(err) +
           ". RAPL energy counters are readable by root only since the fix for CVE-2020-8694 "
           "(PLATYPUS). Grant read access with `sudo chmod o+r "
           "/sys/class/powercap/intel-rapl:*/energy_uj` (until reboot) or permanently with a udev "
           "rule such as ACTION==\"add\", SUBSYSTEM==\"powercap\", RUN+=\"/bin/chmod o+r "
           "/sys%p/energy_uj\"; in a container, bind-mount the host's /sys/class/powercap "
           "read-only";
  }
  return "cannot read " + path + ": " + errno_text(err);
}

RaplDiscovery discover_rapl(const std::string& root, bool include_psys) noexcept {
  RaplDiscovery out;
  try {
    DIR* dir = ::opendir(root.c_str());
    if (dir == nullptr) {
      const int err = errno;
      out.tried.push_back({"rapl", diag::kUnavailable,
                           "no powercap tree at " + root + " (" + errno_text(err) +
                               "): the kernel has no RAPL driver here (common in VMs and on "
                               "non-x86 machines)"});
      return out;
    }
    std::vector<Zone> zones;
    while (dirent* e = ::readdir(dir)) {
      const std::string entry = e->d_name;
      const bool mmio = entry.rfind("intel-rapl-mmio:", 0) == 0;
      if (!mmio && entry.rfind("intel-rapl:", 0) != 0) continue;  // control types, other drivers
      Zone z;
      z.entry = entry;
      z.mmio = mmio;
      z.parent = parent_of(entry);
      const std::string name_file = root + "/" + entry + "/name";  // sysfs: not a report key
      z.name = trim(read_text_file(name_file, 256).value_or(""));
      zones.push_back(std::move(z));
    }
    ::closedir(dir);
    std::sort(zones.begin(), zones.end(),
              [](const Zone& a, const Zone& b) { return zone_less(a.entry, b.entry); });
    if (zones.empty()) {
      out.tried.push_back({"rapl", diag::kUnavailable, "no intel-rapl zones under " + root});
      return out;
    }

    std::map<std::string, std::string> names;  // entry -> name
    for (const Zone& z : zones) names[z.entry] = z.name;
    // The same domain may be exposed by the MSR driver and by MMIO: keyed by (package, name).
    std::map<std::string, bool> has_mmio;
    auto key_of = [&](const Zone& z) {
      return (z.parent.empty() ? std::string() : names[z.parent] + "/") + z.name;
    };
    for (const Zone& z : zones)
      if (z.mmio) has_mmio[key_of(z)] = true;
    bool psys_present = false;
    for (const Zone& z : zones) psys_present = psys_present || z.name == "psys";
    const bool use_psys = include_psys && psys_present;

    for (const Zone& z : zones) {
      const std::string prefix = z.mmio ? "rapl-mmio:" : "rapl:";
      const std::string parent_name = z.parent.empty() ? std::string() : names[z.parent];
      std::string label = prefix + (parent_name.empty() ? z.name : parent_name + ":" + z.name);
      if (z.name.empty()) {
        out.tried.push_back({prefix + z.entry, diag::kUnavailable, "zone has no readable name"});
        continue;
      }
      std::string kind;
      if (z.name.rfind("package-", 0) == 0 && z.parent.empty())
        kind = "cpu";
      else if (z.name == "dram")
        kind = "dram";
      else if (z.name == "psys")
        kind = "platform";
      if (kind.empty()) {
        out.tried.push_back({label, diag::kSkipped,
                             "sub-domain of " + (parent_name.empty() ? z.entry : parent_name) +
                                 ", already counted in it"});
        continue;
      }
      if (kind == "platform" && !include_psys) {
        out.tried.push_back({label, diag::kSkipped,
                             "psys (whole platform) overlaps the package domains; set "
                             "TRAINMETER_RAPL_PSYS=1 to use it instead of them"});
        continue;
      }
      if (kind != "platform" && use_psys) {
        out.tried.push_back({label, diag::kSkipped, "included in psys, which was requested"});
        continue;
      }
      if (!z.mmio && has_mmio[key_of(z)]) {
        out.tried.push_back(
            {label, diag::kSkipped, "same domain exposed through intel-rapl-mmio, read there"});
        continue;
      }
      RaplDomain d;
      d.zone = z.entry;
      d.name = z.name;
      d.kind = kind;
      d.source = std::move(label);
      const std::string path = root + "/" + z.entry + "/energy_uj";
      const int err = d.energy_uj.open(path);
      if (err != 0) {
        const bool denied = err == EACCES || err == EPERM;
        out.tried.push_back({d.source,
                             denied ? diag::kPermissionDenied
                                    : (err == ENOENT ? diag::kUnavailable : diag::kIoError),
                             rapl_open_error_text(path, err)});
        continue;
      }
      int read_err = 0;
      auto first = d.energy_uj.read_int64(&read_err);
      if (!first || *first < 0) {
        const bool denied = read_err == EACCES || read_err == EPERM;
        out.tried.push_back(
            {d.source, denied ? diag::kPermissionDenied : diag::kIoError,
             first ? "energy_uj holds a negative value" : rapl_open_error_text(path, read_err)});
        continue;
      }
      d.first_uj = static_cast<std::uint64_t>(*first);
      std::string range_note;
      if (auto text = read_text_file(root + "/" + z.entry + "/max_energy_range_uj", 64)) {
        auto v = parse_int64(text->data(), text->data() + text->size());
        if (v && *v > 0) d.max_energy_range_uj = static_cast<std::uint64_t>(*v);
      }
      range_note = d.max_energy_range_uj > 0
                       ? "wraps at " + std::to_string(d.max_energy_range_uj) + " uJ"
                       : "max_energy_range_uj unreadable: a wrap will be discarded, not corrected";
      out.tried.push_back({d.source, "ok", "energy_uj readable (" + range_note + ")"});
      out.domains.push_back(std::move(d));
    }
  } catch (...) {
    out.tried.push_back({"rapl", diag::kError, "out of memory while probing"});
  }
  return out;
}

namespace {

// RAPL through powercap: one channel per package, DRAM (and psys) domain, machine-level.
class RaplSource final : public EnergySource {
 public:
  using EnergySource::EnergySource;

  void probe(std::vector<Channel>& channels, unsigned int /*first_gpu*/) override {
    rapl_ = discover_rapl(env_.config.powercap_root, env_.config.rapl_psys);
    for (const SourceStatus& s : rapl_.tried) env_.note(s);
    for (std::size_t i = 0; i < rapl_.domains.size(); ++i) {
      const RaplDomain& d = rapl_.domains[i];
      Channel c;
      c.name = d.kind;
      c.source = d.source;
      c.provenance = "measured";
      c.preference = 0;
      c.index = i;
      c.machine_level = true;
      c.counter = CounterTracker(1e-6, d.max_energy_range_uj, kMaxPlausibleWatts);
      c.attribution = "cpu-time-share";
      channels.push_back(std::move(c));
    }
  }

  void prime(Channel& c, const Interval& now) override {
    c.counter.update(rapl_.domains[c.index].first_uj, now.now_ns);
  }

  Reading sample(Channel& c, const Interval& in) override {
    int err = 0;
    const auto v = rapl_.domains[c.index].energy_uj.read_int64(&err);
    const bool ok = v && *v >= 0;
    return {sample_cpu_counter(env_, c, ok, ok ? static_cast<std::uint64_t>(*v) : 0, err, in),
            std::nullopt};
  }

  void describe(const Channel& c, nlohmann::json& /*component*/,
                nlohmann::json& notes) const override {
    describe_machine_counter(c, notes);
  }

 private:
  RaplDiscovery rapl_;
};

}  // namespace

void describe_machine_counter(const Channel& c, nlohmann::json& notes) {
  if (c.counter.wraps() > 0)
    notes.push_back(fmt::format("counter wrapped {} time(s); corrected", c.counter.wraps()));
  notes.push_back(
      "machine-level counter: energy_j = machine energy x this process's share of the "
      "machine's busy CPU time (/proc/self/stat over /proc/stat), per interval");
}

std::unique_ptr<EnergySource> make_rapl_source(SourceEnv& env) {
  return std::make_unique<RaplSource>(env);
}

}  // namespace trainmeter::detail
