#include "energy/proc_cpu.hpp"

#include <unistd.h>

#include <cstring>

namespace trainmeter::detail {
namespace {

// Reads one unsigned decimal field and advances past trailing spaces. false if none.
bool next_u64(const char*& p, std::uint64_t* out) noexcept {
  while (*p == ' ') ++p;
  if (*p < '0' || *p > '9') return false;
  std::uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<std::uint64_t>(*p++ - '0');
  *out = v;
  return true;
}

bool skip_field(const char*& p) noexcept {
  while (*p == ' ') ++p;
  if (*p == '\0' || *p == '\n') return false;
  while (*p != ' ' && *p != '\0' && *p != '\n') ++p;
  return true;
}

}  // namespace

bool parse_self_stat(const char* text, std::uint64_t* ticks, std::int64_t* rss_pages) noexcept {
  // The command name (field 2) may contain spaces and parentheses: fields resume after the
  // last ')'.
  const char* p = std::strrchr(text, ')');
  if (p == nullptr) return false;
  ++p;
  // Field 3 (state) is the first after ')'; utime is field 14, stime 15, rss 24.
  std::uint64_t utime = 0, stime = 0, rss = 0;
  for (int field = 3; field <= 24; ++field) {
    if (field == 14) {
      if (!next_u64(p, &utime)) return false;
    } else if (field == 15) {
      if (!next_u64(p, &stime)) return false;
    } else if (field == 24) {
      if (!next_u64(p, &rss)) return false;
    } else if (!skip_field(p)) {
      return false;
    }
  }
  *ticks = utime + stime;
  *rss_pages = static_cast<std::int64_t>(rss);
  return true;
}

bool parse_machine_stat(const char* text, std::uint64_t* busy, std::uint64_t* total) noexcept {
  if (std::strncmp(text, "cpu ", 4) != 0) return false;
  const char* p = text + 4;
  // user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
  std::uint64_t v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int n = 0;
  while (n < 8 && next_u64(p, &v[n])) ++n;
  if (n < 4) return false;
  *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  *total = *busy + v[3] + v[4];
  return true;
}

ProcCpuReader::ProcCpuReader(const std::string& proc_root) noexcept {
  self_stat_.open(proc_root + "/self/stat");
  stat_.open(proc_root + "/stat");
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (hz > 0) ticks_per_second_ = static_cast<double>(hz);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (page > 0) page_bytes_ = page;
  if (auto text = read_text_file(proc_root + "/stat")) {
    std::size_t pos = 0;
    while ((pos = text->find("\ncpu", pos)) != std::string::npos) {
      pos += 4;
      if (pos < text->size() && (*text)[pos] >= '0' && (*text)[pos] <= '9') ++logical_cpus_;
    }
  }
}

ProcCpuSample ProcCpuReader::read() const noexcept {
  ProcCpuSample s;
  // Only the first line of /proc/stat is parsed: a bounded stack buffer is enough, however many
  // per-CPU lines follow.
  char buf[4096];
  if (self_stat_.read(buf, sizeof buf) > 0) {
    std::uint64_t ticks = 0;
    std::int64_t pages = 0;
    if (parse_self_stat(buf, &ticks, &pages)) {
      s.process_ticks = ticks;
      s.rss_bytes = pages * page_bytes_;
    }
  }
  if (stat_.read(buf, sizeof buf) > 0) {
    std::uint64_t busy = 0, total = 0;
    if (parse_machine_stat(buf, &busy, &total)) {
      s.machine_busy_ticks = busy;
      s.machine_total_ticks = total;
    }
  }
  return s;
}

}  // namespace trainmeter::detail
