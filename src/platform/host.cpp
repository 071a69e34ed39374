#include "platform/host.hpp"

#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <sstream>

#include "platform/file.hpp"
#include "platform/text.hpp"

namespace trainmeter::detail {

HostInfo read_host_info(const std::string& proc_root) {
  HostInfo h;
  utsname u{};
  if (::uname(&u) == 0) {
    h.hostname = u.nodename;
    h.kernel = std::string(u.sysname) + " " + u.release;
  }
  if (auto text = read_text_file("/etc/os-release")) {
    std::istringstream in(*text);
    std::string line;
    while (std::getline(in, line))
      if (line.rfind("PRETTY_NAME=", 0) == 0)
        h.os = trim(std::string_view(line).substr(12), " \t\r\n\"");
  }
  if (!h.os) h.os = std::string(u.sysname);
  if (auto text = read_text_file(proc_root + "/sys/kernel/random/boot_id", 256)) {
    std::string id = trim(*text);
    if (!id.empty()) h.boot_id = std::move(id);
  }
  if (auto text = read_text_file(proc_root + "/cpuinfo", 4 << 20)) {
    std::istringstream in(*text);
    std::string line;
    std::int64_t processors = 0;
    while (std::getline(in, line)) {
      if (line.rfind("processor", 0) == 0) ++processors;
      if (!h.cpu_model && line.rfind("model name", 0) == 0) {
        const auto colon = line.find(':');
        if (colon != std::string::npos) h.cpu_model = trim(line.substr(colon + 1));
      }
    }
    if (processors > 0) h.logical_cpus = processors;
  }
  if (!h.logical_cpus) {
    const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    if (n > 0) h.logical_cpus = n;
  }
  if (auto text = read_text_file(proc_root + "/meminfo")) {
    std::istringstream in(*text);
    std::string key;
    std::int64_t kb = 0;
    while (in >> key) {
      if (key == "MemTotal:" && (in >> kb)) {
        h.memory_bytes = kb * 1024;
        break;
      }
    }
  }
  return h;
}

std::vector<std::string> read_command_line(const std::string& proc_root) {
  std::vector<std::string> out;
  auto text = read_text_file(proc_root + "/self/cmdline", 1 << 16);
  if (!text) return out;
  std::string cur;
  for (char c : *text) {
    if (c == '\0') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

CpuTimes process_cpu_times() noexcept {
  rusage ru{};
  CpuTimes t;
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    t.user_s = double(ru.ru_utime.tv_sec) + 1e-6 * double(ru.ru_utime.tv_usec);
    t.system_s = double(ru.ru_stime.tv_sec) + 1e-6 * double(ru.ru_stime.tv_usec);
  }
  return t;
}

}  // namespace trainmeter::detail
