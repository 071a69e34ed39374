// Item 23: an uncaught exception (std::terminate) writes the report with status "crashed" and
// the exception's message, then the program's own terminate handler (or the default) runs. Each
// case runs in a forked child, since terminate ends the process.
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

#include <trainmeter/trainmeter.hpp>

#include "core/signals.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::TempDir;

namespace {

std::string g_marker;  // the program's own handler writes this file, then exits 42

[[noreturn]] void program_handler() {
  if (std::FILE* f = std::fopen(g_marker.c_str(), "w")) std::fclose(f);
  std::_Exit(42);
}

void thrower() {
  throw std::runtime_error("loss became NaN at step 3");
}
void (*volatile g_throw)() = &thrower;
// An exception leaving a noexcept function calls std::terminate with it active.
void escape() noexcept {
  g_throw();
}

enum class How { kException, kBareTerminate, kNonStd };

int run_child(const std::string& report, How how, bool own_handler) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // Catch2's own SIGABRT handler would report the child's abort as a failed test.
    std::signal(SIGABRT, SIG_DFL);
    if (own_handler) std::set_terminate(&program_handler);
    trainmeter::Config c;
    c.output = report;
    c.progress = "off";
    trainmeter::Session session(c);
    for (int i = 0; i < 3; ++i) auto st = session.step(2);
    if (how == How::kException) escape();
    if (how == How::kNonStd) {
      try {
        throw 7;
      } catch (...) {
        std::terminate();  // inside a handler: current_exception() is the int
      }
    }
    std::terminate();
  }
  int status = -1;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return status;
}

std::string diagnostics_text(const json& report) {
  std::string out;
  for (const json& d : report["diagnostics"]) out += d["message"].get<std::string>() + "\n";
  return out;
}

}  // namespace

TEST_CASE("23: an uncaught exception writes a crashed report, then the default handler aborts",
          "[defects][terminate]") {
  TempDir dir;
  const int status = run_child(dir / "r.json", How::kException, false);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
  const json r = trainmeter::test::read_json(dir / "r.json");
  CHECK(r["run"]["status"] == "crashed");
  CHECK(r["run"]["steps_recorded"] == 3);
  CHECK_THAT(diagnostics_text(r), Catch::Contains("uncaught exception: loss became NaN at step 3"));
  CHECK(trainmeter::test::schema_errors(dir / "r.json") == "");
}

TEST_CASE("23: the program's own terminate handler still runs after the report",
          "[defects][terminate]") {
  TempDir dir;
  g_marker = dir / "handler-ran";
  const int status = run_child(dir / "r.json", How::kException, true);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 42);
  CHECK(::access(g_marker.c_str(), F_OK) == 0);
  const json r = trainmeter::test::read_json(dir / "r.json");
  CHECK(r["run"]["status"] == "crashed");
}

TEST_CASE("23: terminate without an exception, and with a non-std one", "[defects][terminate]") {
  TempDir dir;
  run_child(dir / "bare.json", How::kBareTerminate, false);
  CHECK_THAT(diagnostics_text(trainmeter::test::read_json(dir / "bare.json")),
             Catch::Contains("without an active exception"));
  run_child(dir / "int.json", How::kNonStd, false);
  CHECK_THAT(diagnostics_text(trainmeter::test::read_json(dir / "int.json")),
             Catch::Contains("not derived from std::exception"));
}

TEST_CASE("23: the terminate handler is installed only while a session runs",
          "[defects][terminate]") {
  const std::terminate_handler before = std::get_terminate();
  {
    TempDir dir;
    trainmeter::Config c;
    c.output = dir / "r.json";
    trainmeter::Session s(c);
    CHECK(trainmeter::detail::terminate_handler_installed());
    s.finish();
    CHECK_FALSE(trainmeter::detail::terminate_handler_installed());
  }
  CHECK(std::get_terminate() == before);
}
