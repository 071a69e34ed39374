// The live Prometheus endpoint (metrics_port): configuration checks, the server's own contract
// (a copy of the last published text, 503 before any, scrapes during finish() counted), what a
// scrape of a real session says, failures that become diagnostics, and, with the real
// Prometheus server (a [tools] case), that its HTTP API agrees with the final report.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <catch2/catch.hpp>

#include "export/metrics_server.hpp"
#include "support/test_support.hpp"
#include "trainmeter/session.hpp"

using trainmeter::Config;
using trainmeter::Session;
using trainmeter::detail::MetricsServer;
using namespace trainmeter::test;

namespace {

// A free TCP port on loopback (the kernel's pick; released right away).
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

struct HttpReply {
  int status = 0;  // 0: no connection
  std::string body;
};

// One HTTP/1.0 request with the connection closed by the server after the reply: the client
// side of a scrape, nothing more (the server side is cpp-httplib's).
HttpReply http_get(std::uint16_t port, const std::string& target) {
  HttpReply reply;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return reply;
  }
  const std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return reply;
  }
  std::string all;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, std::size_t(n));
  ::close(fd);
  const auto head_end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return reply;
  reply.status = std::atoi(all.c_str() + 9);
  reply.body = all.substr(head_end + 4);
  return reply;
}

// The value of the first sample line of `name` whose labels contain `label` ("" for any).
double sample_value(const std::string& text, const std::string& name, const std::string& label) {
  std::size_t pos = 0;
  while ((pos = text.find("\n" + name + "{", pos)) != std::string::npos) {
    const auto eol = text.find('\n', pos + 1);
    const std::string line = text.substr(pos + 1, eol - pos - 1);
    pos = eol;
    if (!label.empty() && line.find(label) == std::string::npos) continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nan("");
}

// Polls `probe` until it returns true or `seconds` pass (no timing is asserted: the deadline
// only bounds a failing test).
template <class F>
bool eventually(F probe, double seconds = 20) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < end) {
    if (probe()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return probe();
}

Config quiet_config(const TempDir& dir) {
  Config c;
  c.output = dir / "report.json";
  c.progress = "off";
  c.sample_interval_ms = 20;
  c.energy_sources = {"estimate"};
  c.warmup_steps = 0;
  return c;
}

// True (and the test case skipped) when this build has no HTTP library for the endpoint.
bool no_endpoint() {
  if (trainmeter::detail::metrics_server_available()) return false;
  skip_test("built without cpp-httplib (Debian's libcpp-httplib-dev)");
  return true;
}

// quiet_config with the endpoint on a free port.
Config live_config(const TempDir& dir) {
  Config c = quiet_config(dir);
  c.metrics_port = free_port();
  return c;
}

nlohmann::json diagnostic(const nlohmann::json& report, const std::string& source) {
  for (const auto& d : report.at("diagnostics"))
    if (d.at("source") == source) return d;
  return nullptr;
}

}  // namespace

TEST_CASE("metrics_port and metrics_address are checked at construction", "[metrics][config]") {
  Config c;
  c.set("metrics_port", "9464");
  CHECK(c.metrics_port == 9464);
  c.set("metrics_address", "::1");
  CHECK(c.metrics_address == "::1");
  c.set("metrics_address", " 0.0.0.0 ");
  CHECK(c.metrics_address == "0.0.0.0");
  try {
    c.set("metrics_port", "65536");
    FAIL("no error");
  } catch (const trainmeter::Error& e) {
    CHECK_THAT(e.what(),
               Catch::Contains("metrics_port") && Catch::Contains("an integer from 0 to 65535"));
  }
  try {
    c.set("metrics_address", "localhost:80");
    FAIL("no error");
  } catch (const trainmeter::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("metrics_address") &&
                             Catch::Contains("an IPv4 or IPv6 address literal"));
  }
  ScopedEnv env("TRAINMETER_METRICS_ADDRESS", "300.1.1.1");
  CHECK_THROWS_WITH(Config::from_env(), Catch::Contains("TRAINMETER_METRICS_ADDRESS") &&
                                            Catch::Contains("'300.1.1.1'"));
}

TEST_CASE("MetricsServer serves a copy of the last published text", "[metrics]") {
  if (no_endpoint()) return;
  const std::uint16_t port = free_port();
  MetricsServer server;
  REQUIRE(server.start("127.0.0.1", port).empty());
  CHECK(http_get(port, "/metrics").status == 503);  // nothing published yet
  server.publish("# TYPE a gauge\na 1\n");
  server.publish("# TYPE a gauge\na 2\n");
  const HttpReply r = http_get(port, "/metrics");
  CHECK(r.status == 200);
  CHECK(r.body == "# TYPE a gauge\na 2\n");
  CHECK(http_get(port, "/other").status == 404);
  CHECK(server.scrapes() == 2);
  CHECK(server.scrapes_during_finish() == 0);
  server.mark_finishing();
  CHECK(http_get(port, "/metrics").body == "# TYPE a gauge\na 2\n");
  CHECK(server.scrapes_during_finish() == 1);
  // A second server on the same port is refused with the system's reason.
  MetricsServer second;
  CHECK_THAT(second.start("127.0.0.1", port), Catch::Contains("Address already in use"));
  server.stop();
  server.stop();  // idempotent
  CHECK(http_get(port, "/metrics").status == 0);
}

TEST_CASE("A scrape of a running session: steps, samples, loss, quantiles, energy, CO2e",
          "[metrics]") {
  if (no_endpoint()) return;
  TempDir dir;
  Config c = live_config(dir);
  c.run_name = "live \"run\"";
  c.carbon_intensity = 100.0;
  c.pue = 1.5;
  Session session(c);
  const auto eval = session.phase("eval");
  for (int i = 0; i < 40; ++i) {
    auto s = session.step(8);
    s.set_loss(1.0 / (i + 1));
  }
  for (int i = 0; i < 3; ++i) session.step(2, eval).set_loss(7.5);
  std::string text;
  REQUIRE(eventually([&] {
    text = http_get(c.metrics_port, "/metrics").body;
    return sample_value(text, "trainmeter_steps_total", "phase=\"eval\"") == 3 &&
           sample_value(text, "trainmeter_run_energy_joules_total", "") > 0;
  }));
  CHECK(sample_value(text, "trainmeter_steps_total", "phase=\"train\"") == 40);
  CHECK(sample_value(text, "trainmeter_samples_total", "phase=\"train\"") == 320);
  CHECK(sample_value(text, "trainmeter_samples_total", "phase=\"eval\"") == 6);
  CHECK(sample_value(text, "trainmeter_loss", "phase=\"train\"") == Approx(1.0 / 40));
  CHECK(sample_value(text, "trainmeter_loss", "phase=\"eval\"") == 7.5);
  CHECK(sample_value(text, "trainmeter_step_time_seconds_count", "phase=\"train\"") == 40);
  CHECK(sample_value(text, "trainmeter_run_finished", "") == 0);
  CHECK(text.find("run=\"live \\\"run\\\"\"") != std::string::npos);  // escaped label
  CHECK(text.find("source=\"estimate:") != std::string::npos);
  CHECK(sample_value(text, "trainmeter_energy_estimated", "") == 1);
  CHECK(sample_value(text, "trainmeter_pue", "") == 1.5);
  CHECK(sample_value(text, "trainmeter_grid_intensity_grams_per_kwh", "source=\"explicit\"") ==
        100);
  // CO2e so far = energy so far (J -> kWh) x PUE x intensity, from the same scrape.
  const double e = sample_value(text, "trainmeter_run_energy_joules_total", "");
  CHECK(sample_value(text, "trainmeter_co2e_grams_total", "") == Approx(e / 3.6e6 * 1.5 * 100));
  // Every energy channel's joules sum to the run's total (all are selected here).
  double sum = 0;
  for (const char* comp : {"component=\"cpu\"", "component=\"dram\""}) {
    const double v = sample_value(text, "trainmeter_energy_joules_total", comp);
    if (std::isfinite(v)) sum += v;
  }
  CHECK(sum == Approx(e));
  const auto report = nlohmann::json::parse(session.finish().json);
  CHECK(diagnostic(report, "metrics").is_null());
  CHECK(http_get(c.metrics_port, "/metrics").status == 0);  // closed by finish()
}

TEST_CASE("A port in use or an address not on this host becomes a diagnostic", "[metrics]") {
  if (no_endpoint()) return;
  TempDir dir;
  const std::uint16_t port = free_port();
  MetricsServer squatter;
  REQUIRE(squatter.start("127.0.0.1", port).empty());
  struct Case {
    const char* address;
    const char* reason;
  };
  for (const Case& k : {Case{"127.0.0.1", "Address already in use"},
                        Case{"192.0.2.1", "Cannot assign requested address"}}) {
    Config c = quiet_config(dir);
    c.metrics_port = port;
    c.metrics_address = k.address;
    Session session(c);
    for (int i = 0; i < 5; ++i) session.step(1);
    const trainmeter::Report r = session.finish();
    CHECK(r.written);
    CHECK(r.steps_recorded == 5);
    const auto d = diagnostic(nlohmann::json::parse(r.json), "metrics");
    REQUIRE(d.is_object());
    CHECK(d.at("status") == "unavailable");
    CHECK_THAT(d.at("message").get<std::string>(),
               Catch::Contains(k.reason) && Catch::Contains(fmt::format("{}:{}", k.address, port)));
  }
}

TEST_CASE("promtool check metrics accepts the live exposition", "[metrics][tools]") {
  if (::access("/usr/bin/promtool", X_OK) != 0) {
    skip_test("promtool not installed (Debian package prometheus; scripts/setup.sh installs it)");
    return;
  }
  if (no_endpoint()) return;
  TempDir dir;
  Config c = live_config(dir);
  Session session(c);
  session.step(4, "eval \"odd\" \\ name\n").set_loss(0.5);
  for (int i = 0; i < 20; ++i) session.step(4).set_loss(1.0);
  std::string text;
  REQUIRE(eventually([&] {
    text = http_get(c.metrics_port, "/metrics").body;
    return sample_value(text, "trainmeter_steps_total", "phase=\"train\"") == 20 &&
           text.find("trainmeter_power_watts") != std::string::npos;
  }));
  write_file(dir / "live.prom", text);
  const CommandResult r =
      run_command("/usr/bin/promtool check metrics < '" + dir / "live.prom" + "'");
  INFO(text);
  INFO(r.output);
  CHECK(r.exit_code == 0);
  session.finish();
}

#ifdef TRAINMETER_TRAIN_MLP
namespace {

nlohmann::json prom_query(std::uint16_t port, const std::string& promql) {
  std::string q;
  for (unsigned char ch : promql) {
    if (std::isalnum(ch) || ch == '_' || ch == '.' || ch == '-')
      q += char(ch);
    else
      q += fmt::format("%{:02X}", ch);
  }
  const HttpReply r = http_get(port, "/api/v1/query?query=" + q);
  if (r.status != 200) return nullptr;
  return nlohmann::json::parse(r.body, nullptr, false);
}

// The single value of an instant query's vector result; NaN when there is none.
double prom_value(std::uint16_t port, const std::string& promql) {
  const nlohmann::json j = prom_query(port, promql);
  if (!j.is_object() || j.value("status", "") != "success") return std::nan("");
  const auto& result = j.at("data").at("result");
  if (result.size() != 1) return std::nan("");
  return std::stod(result[0].at("value").at(1).get<std::string>());
}

}  // namespace
#endif

TEST_CASE("Prometheus scrapes train_mlp live; its API agrees with the final report",
          "[metrics][tools]") {
#ifndef TRAINMETER_TRAIN_MLP
  skip_test("needs the train_mlp example (a build with libtorch and examples)");
#else
  if (::access("/usr/bin/prometheus", X_OK) != 0) {
    skip_test("prometheus not installed (Debian package prometheus; scripts/setup.sh installs it)");
    return;
  }
  TempDir dir;
  const std::uint16_t metrics_port = free_port();
  const std::uint16_t web_port = free_port();
  write_file(dir / "prometheus.yml",
             fmt::format("global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                         "scrape_configs:\n  - job_name: trainmeter\n    static_configs:\n"
                         "      - targets: ['127.0.0.1:{}']\n",
                         metrics_port));
  const CommandResult started = run_command(fmt::format(
      "/usr/bin/prometheus --config.file='{0}/prometheus.yml' --storage.tsdb.path='{0}/tsdb' "
      "--web.listen-address=127.0.0.1:{1} > '{0}/prometheus.log' 2>&1 & echo $!",
      dir.path(), web_port));
  const int prometheus_pid = std::atoi(started.output.c_str());
  REQUIRE(prometheus_pid > 0);
  struct Reaper {
    int pid;
    ~Reaper() {
      std::system(fmt::format("kill {} 2>/dev/null; wait {} 2>/dev/null", pid, pid).c_str());
    }
  } reaper{prometheus_pid};
  INFO(read_file(dir / "prometheus.log"));
  REQUIRE(eventually([&] { return http_get(web_port, "/-/ready").status == 200; }, 60));
  // Target discovery hands targets to the scrape loop only every 5 s: wait for its first attempt
  // (up = 0 while nothing listens yet), so that every second of the run is scraped.
  REQUIRE(eventually([&] { return std::isfinite(prom_value(web_port, "up{job=\"trainmeter\"}")); },
                     60));

  // About five seconds of training on this machine, scraped every second.
  const CommandResult run = run_command(fmt::format(
      "TRAINMETER_METRICS_PORT={} TRAINMETER_OUTPUT='{}' TRAINMETER_PROGRESS=0 "
      "TRAINMETER_ENERGY_SOURCES=estimate '{}' --steps 15000 --batch 16 --hidden 64 2>&1",
      metrics_port, dir / "report.json", TRAINMETER_TRAIN_MLP));
  INFO(run.output);
  REQUIRE(run.exit_code == 0);
  const nlohmann::json report = read_json(dir / "report.json");
  const double duration = report.at("run").at("duration_s").get<double>();
  const double total_j = report.at("energy").at("total_j").get<double>();
  const std::string sel =
      fmt::format("{{run_id=\"{}\"", report.at("run").at("id").get<std::string>());

  // The last scrape before the endpoint closed: its uptime, steps and energy (range selectors
  // skip the staleness marker Prometheus writes once the target is gone).
  const auto last = [&](const std::string& metric, const std::string& labels) {
    return prom_value(web_port, "last_over_time(" + metric + sel + labels + "}[10m])");
  };
  double uptime = std::nan("");
  REQUIRE(eventually([&] {
    uptime = last("trainmeter_run_duration_seconds", "");
    return std::isfinite(uptime);
  }));
  const double steps = last("trainmeter_steps_total", ",phase=\"train\"");
  const double energy = last("trainmeter_run_energy_joules_total", "");
  const double scrapes =
      prom_value(web_port, "count_over_time(trainmeter_run_info" + sel + "}[10m])");
  INFO("uptime " << uptime << " of " << duration << " s; steps " << steps << "; energy " << energy
                 << " of " << total_j << " J; scrapes " << scrapes);
  CHECK(scrapes >= 3);
  // Steps: exactly those the report says had ended by the scraped text's render time, within
  // one sampling interval (the collector drains, then renders).
  long ended_by = 0, ended_before = 0;
  for (const auto& s : report.at("steps")) {
    if (s.at("phase") != "train") continue;
    const double end_s =
        1e-9 * (s.at("start_offset_ns").get<double>() + s.at("wall_ns").get<double>());
    ended_by += end_s <= uptime + 1e-3;
    ended_before += end_s <= uptime - 0.25;
  }
  CHECK(steps <= double(ended_by));
  CHECK(steps >= double(ended_before));
  CHECK(steps <= report.at("phases").at("train").at("steps").get<double>());
  // Energy: what the report counts by then; the run's energy grows with its time, so the
  // share scraped is the share of the duration within a quarter (estimated power varies a bit).
  CHECK(energy <= total_j * (1 + 1e-9));
  CHECK(energy / total_j == Approx(uptime / duration).margin(0.25));
  CHECK(energy > 0);
#endif
}
