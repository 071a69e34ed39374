// Process memory: /proc parsing, the bounded timeline, the component against a fake /proc tree
// (exact values), faults, and agreement with the kernel's own peak (getrusage, /usr/bin/time -v).
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "base/component.hpp"
#include "memory/process_memory.hpp"
#include "support/test_support.hpp"
#include "trainmeter/session.hpp"

using nlohmann::json;
using trainmeter::detail::make_process_memory_component;
using trainmeter::detail::MemoryTimeline;
using trainmeter::detail::parse_statm_rss_pages;
using trainmeter::detail::parse_status_kib_field;
using trainmeter::detail::RunContext;
using trainmeter::test::TempDir;
using trainmeter::test::write_file;

namespace {

const char* kStatus =
    "Name:\ttrainer\nUmask:\t0022\nState:\tR (running)\nVmPeak:\t  900000 kB\n"
    "VmSize:\t  800000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nThreads:\t3\n";

std::int64_t page_bytes() {
  return sysconf(_SC_PAGESIZE);
}

// Touches `bytes` of fresh anonymous memory so that it counts in RSS, then releases it.
void touch_and_release(std::size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  std::memset(p, 0x5a, bytes);
  munmap(p, bytes);
}

// Starts and stops the process memory component at once and returns what it contributed.
json start_stop_contribute(RunContext& ctx) {
  auto c = make_process_memory_component(ctx);
  c->start(0);
  c->stop(1);
  json report = json::object();
  c->contribute(report);
  return report;
}

}  // namespace

TEST_CASE("statm: the second field is the resident page count", "[memory]") {
  CHECK(parse_statm_rss_pages("12345 678 90 1 0 2000 0\n") == 678);
  CHECK(parse_statm_rss_pages("1 0 0 0 0 0 0") == 0);
  CHECK_FALSE(parse_statm_rss_pages("12345\n").has_value());
  CHECK_FALSE(parse_statm_rss_pages("").has_value());
  CHECK_FALSE(parse_statm_rss_pages("12345 x7 90").has_value());
  CHECK_FALSE(parse_statm_rss_pages("12345 -7 90").has_value());
}

TEST_CASE("status: kB fields are KiB, exact key match", "[memory]") {
  CHECK(parse_status_kib_field(kStatus, "VmHWM") == 51200LL * 1024);
  CHECK(parse_status_kib_field(kStatus, "VmRSS") == 40960LL * 1024);
  CHECK_FALSE(parse_status_kib_field(kStatus, "VmSwap").has_value());
  CHECK_FALSE(parse_status_kib_field(kStatus, "Vm").has_value());  // prefix is not a key
  CHECK_FALSE(parse_status_kib_field("VmHWM:\t12 MB\n", "VmHWM").has_value());
  CHECK_FALSE(parse_status_kib_field("VmHWM:\tlots kB\n", "VmHWM").has_value());
  CHECK(parse_status_kib_field("VmHWM:\t7 kB", "VmHWM") == 7 * 1024);  // no final newline
}

TEST_CASE("timeline: bounded, thinned uniformly when full, dropped counted", "[memory]") {
  MemoryTimeline t(4);
  for (int i = 0; i < 4; ++i) t.add(i * 100, 1000 + i);
  CHECK(t.points().size() == 4);
  CHECK(t.stride() == 1);
  CHECK(t.dropped() == 0);
  t.add(400, 1004);  // full: keep samples 0, 2, 4 (stride 2)
  REQUIRE(t.points().size() == 3);
  CHECK(t.stride() == 2);
  CHECK(t.points()[0].t_offset_ns == 0);
  CHECK(t.points()[1].t_offset_ns == 200);
  CHECK(t.points()[2].t_offset_ns == 400);
  CHECK(t.points()[2].rss_bytes == 1004);
  t.add(500, 1005);  // odd sample: not retained
  t.add(600, 1006);  // sample 6: fits (4 points)
  CHECK(t.points().size() == 4);
  t.add(700, 1007);
  t.add(800, 1008);  // full again: stride 4 keeps 0, 4, 8
  REQUIRE(t.points().size() == 3);
  CHECK(t.stride() == 4);
  CHECK(t.points()[1].t_offset_ns == 400);
  CHECK(t.points()[2].t_offset_ns == 800);
  CHECK(t.offered() == 9);
  CHECK(t.dropped() == 6);

  MemoryTimeline none(0);
  none.add(1, 2);
  CHECK(none.points().empty());
  CHECK(none.dropped() == 1);

  MemoryTimeline one(1);
  for (int i = 0; i < 10; ++i) one.add(i, i);
  REQUIRE(one.points().size() == 1);
  CHECK(one.points()[0].t_offset_ns == 0);
  CHECK(one.dropped() == 9);
}

TEST_CASE("component: exact figures from a fake /proc tree", "[memory]") {
  TempDir dir;
  write_file(dir / "self/statm", "5000 2500 100 10 0 3000 0\n");
  write_file(dir / "self/status", kStatus);
  RunContext ctx;
  ctx.config.proc_root = dir.path();
  ctx.config.sample_interval_ms = 100;
  ctx.start_ns = 1'000'000'000;
  auto c = make_process_memory_component(ctx);
  c->start(ctx.start_ns);
  write_file(dir / "self/statm", "5000 3000 100 10 0 3000 0\n");
  c->sample(ctx.start_ns + 100'000'000);
  write_file(dir / "self/statm", "5000 2000 100 10 0 3000 0\n");
  c->stop(ctx.start_ns + 150'000'000);
  json report = {{"memory", nullptr}};
  c->contribute(report);
  const json& m = report["memory"];
  const std::int64_t pg = page_bytes();
  CHECK(m["peak_rss_bytes"] == 51200LL * 1024);
  CHECK(m["peak_rss_source"] == "VmHWM");
  CHECK(m["current_rss_bytes"] == 2000 * pg);
  CHECK(m["sampled_peak_rss_bytes"] == 3000 * pg);
  CHECK(m["peak_tensor_bytes"].is_null());
  CHECK(m["cuda"].is_null());
  CHECK(m["timeline"]["interval_ms"] == 100);
  CHECK(m["timeline"]["dropped"] == 0);
  CHECK(m["timeline"]["samples"] == 3);
  CHECK(m["timeline"]["points"] ==
        json::array({json::array({0, 2500 * pg}), json::array({100'000'000, 3000 * pg}),
                     json::array({150'000'000, 2000 * pg})}));
  CHECK(ctx.diagnostics.to_json().empty());
}

TEST_CASE("component: keeps keys other components added to memory", "[memory]") {
  TempDir dir;
  write_file(dir / "self/statm", "5000 2500 100 10 0 3000 0\n");
  write_file(dir / "self/status", kStatus);
  RunContext ctx;
  ctx.config.proc_root = dir.path();
  auto c = make_process_memory_component(ctx);
  c->start(0);
  c->stop(1);
  json report = {
      {"memory", {{"gpu_device_used_peak_bytes", 42}, {"peak_tensor_bytes", {{"cpu", 7}}}}}};
  c->contribute(report);
  CHECK(report["memory"]["gpu_device_used_peak_bytes"] == 42);
  CHECK(report["memory"]["peak_tensor_bytes"]["cpu"] == 7);
  CHECK(report["memory"]["peak_rss_bytes"] == 51200LL * 1024);
}

TEST_CASE("component: /proc missing gives nulls and diagnostics, never a throw", "[memory]") {
  TempDir dir;  // empty: no self/statm, no self/status
  RunContext ctx;
  ctx.config.proc_root = dir.path();
  auto c = make_process_memory_component(ctx);
  c->start(0);
  c->sample(1);
  c->stop(2);
  json report = json::object();
  c->contribute(report);
  const json& m = report["memory"];
  CHECK(m["current_rss_bytes"].is_null());
  CHECK(m["sampled_peak_rss_bytes"].is_null());
  CHECK(m["timeline"]["points"].empty());
  // The kernel's peak still comes from getrusage, labelled as such.
  CHECK(m["peak_rss_source"] == "getrusage");
  CHECK(m["peak_rss_bytes"] == m["getrusage_max_rss_bytes"]);
  CHECK(ctx.diagnostics.count("memory.process", "unavailable") == 2);
}

TEST_CASE("component: VmHWM line missing, malformed statm", "[memory]") {
  TempDir dir;
  write_file(dir / "self/statm", "garbage\n");
  write_file(dir / "self/status", "Name:\tx\nVmRSS:\t 100 kB\n");
  RunContext ctx;
  ctx.config.proc_root = dir.path();
  auto c = make_process_memory_component(ctx);
  c->start(0);
  c->sample(1);
  c->stop(2);
  json report = json::object();
  c->contribute(report);
  const json& m = report["memory"];
  CHECK(m["current_rss_bytes"] == 100 * 1024);  // from VmRSS when statm is unusable
  CHECK(m["peak_rss_source"] == "getrusage");
  CHECK(ctx.diagnostics.count("memory.process", "invalid_reading") == 3);
  CHECK(ctx.diagnostics.count("memory.process", "unavailable") == 1);
}

// As root (CI) mode 000 does not stop a read, so the check runs in a child that dropped to
// `nobody`; where that is impossible the test shows as skipped (memory_test_unprivileged).
TEST_CASE("component: unreadable status file is permission_denied", "[memory][unprivileged]") {
  TempDir dir;
  write_file(dir / "self/statm", "5000 2500 100 10 0 3000 0\n");
  write_file(dir / "self/status", kStatus);
  REQUIRE(::chmod((dir / "self/status").c_str(), 0) == 0);
  dir.share_with_others();
  const auto seen = trainmeter::test::run_unprivileged([&] {
    RunContext ctx;
    ctx.config.proc_root = dir.path();
    const json report = start_stop_contribute(ctx);
    return "permission_denied=" +
           std::to_string(ctx.diagnostics.count("memory.process", "permission_denied")) +
           " peak_rss_source=" + report["memory"]["peak_rss_source"].get<std::string>() +
           " current_rss_bytes=" + report["memory"]["current_rss_bytes"].dump();
  });
  if (!seen) return;  // skipped, reported as such
  // statm still readable: current RSS 2500 pages; the peak comes from getrusage instead.
  const long page = ::sysconf(_SC_PAGESIZE);
  CHECK(*seen == "permission_denied=1 peak_rss_source=getrusage current_rss_bytes=" +
                     std::to_string(2500 * page));
}

TEST_CASE("component: the real /proc agrees with getrusage within 1%", "[memory]") {
  RunContext ctx;
  auto c = make_process_memory_component(ctx);
  c->start(0);
  touch_and_release(64u << 20);  // raises the high-water mark by ~64 MiB
  c->stop(1);
  json report = json::object();
  c->contribute(report);
  const auto ru = trainmeter::detail::getrusage_max_rss_bytes();
  REQUIRE(ru.has_value());
  const json& m = report["memory"];
  REQUIRE(m["peak_rss_source"] == "VmHWM");
  const double peak = m["peak_rss_bytes"].get<double>();
  CHECK(peak >= 64.0 * (1 << 20));
  CHECK(std::abs(peak - double(*ru)) <= 0.01 * double(*ru));
  CHECK(ctx.diagnostics.to_json().empty());
}

// Child process for the /usr/bin/time test: a whole Session whose report says its peak RSS.
TEST_CASE("child: session with a 96 MiB peak", "[.memory_child]") {
  const char* out = std::getenv("TM_MEMORY_CHILD_REPORT");
  REQUIRE(out != nullptr);
  trainmeter::Config cfg;
  cfg.output = out;
  cfg.progress = "off";
  trainmeter::Session session(cfg);
  touch_and_release(96u << 20);
  session.finish();
}

TEST_CASE("session report agrees with /usr/bin/time -v within 1%", "[memory][tools]") {
  if (::access("/usr/bin/time", X_OK) != 0) {
    trainmeter::test::skip_test("/usr/bin/time not installed (Debian package 'time')");
    return;
  }
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(n > 0);
  self[n] = '\0';
  TempDir dir;
  const std::string report_path = dir / "child.json";
  const auto r = trainmeter::test::run_command("TM_MEMORY_CHILD_REPORT='" + report_path +
                                               "' /usr/bin/time -v '" + std::string(self) +
                                               "' '[.memory_child]'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const auto key = r.output.find("Maximum resident set size (kbytes):");
  REQUIRE(key != std::string::npos);
  const double time_bytes = std::stod(r.output.substr(key + 35)) * 1024.0;
  const json report = trainmeter::test::read_json(report_path);
  CHECK(trainmeter::test::schema_errors(report_path) == "");
  const double peak = report["memory"]["peak_rss_bytes"].get<double>();
  CHECK(peak >= 96.0 * (1 << 20));
  CHECK(std::abs(peak - time_bytes) <= 0.01 * time_bytes);
}

TEST_CASE("component: a status that cannot be read is an io_error (works as root too)",
          "[memory]") {
  TempDir dir;
  write_file(dir / "self/statm", "5000 2500 100 10 0 3000 0\n");
  write_file(dir / "self/status/placeholder", "");  // status is a directory: read() fails
  RunContext ctx;
  ctx.config.proc_root = dir.path();
  const json report = start_stop_contribute(ctx);
  CHECK(ctx.diagnostics.count("memory.process", "io_error") == 1);
  CHECK(report["memory"]["peak_rss_source"] == "getrusage");
  CHECK(report["memory"]["current_rss_bytes"] == 2500 * page_bytes());
}
