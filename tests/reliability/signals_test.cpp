// SIGINT/SIGTERM during a run (src/core/signals.hpp): the report says "aborted" when the program
// exits normally after the signal; the program's own handlers keep working and are restored.
#include <catch2/catch.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include <trainmeter/trainmeter.hpp>

#include "core/signals.hpp"
#include "support/test_support.hpp"

using nlohmann::json;
using trainmeter::test::TempDir;

namespace {

trainmeter::Config config_in(const TempDir& dir, const std::string& name) {
  trainmeter::Config c;
  c.run_name = name;
  c.output = dir / (name + ".json");
  c.warmup_steps = 0;
  c.sample_interval_ms = 20;
  return c;
}

std::atomic<int> g_user_calls{0};
std::atomic<int> g_user_info_signo{0};
void user_handler(int) {
  g_user_calls.fetch_add(1);
}
void user_info_handler(int, siginfo_t* info, void*) {
  g_user_calls.fetch_add(1);
  g_user_info_signo.store(info != nullptr ? info->si_signo : -1);
}

// Installs a handler for the test's duration and restores what was there.
class ScopedHandler {
 public:
  ScopedHandler(int signo, void (*plain)(int), void (*info)(int, siginfo_t*, void*) = nullptr)
      : signo_(signo) {
    struct sigaction sa {};
    sigemptyset(&sa.sa_mask);
    if (info != nullptr) {
      sa.sa_flags = SA_SIGINFO;
      sa.sa_sigaction = info;
    } else {
      sa.sa_handler = plain;
    }
    REQUIRE(::sigaction(signo, &sa, &old_) == 0);
  }
  ~ScopedHandler() { ::sigaction(signo_, &old_, nullptr); }

 private:
  int signo_;
  struct sigaction old_ {};
};

bool handler_is(int signo, void (*plain)(int)) {
  struct sigaction sa {};
  ::sigaction(signo, nullptr, &sa);
  return (sa.sa_flags & SA_SIGINFO) == 0 && sa.sa_handler == plain;
}

const json* signal_diagnostic(const json& doc) {
  for (const json& d : doc["diagnostics"])
    if (d["source"] == "signal") return &d;
  return nullptr;
}

}  // namespace

TEST_CASE("SIGINT with the program's handler installed first: handler runs, report aborted",
          "[reliability][signals]") {
  TempDir dir;
  g_user_calls = 0;
  ScopedHandler user(SIGINT, user_handler);
  trainmeter::Session session(config_in(dir, "sigint"));
  CHECK(trainmeter::detail::signal_handler_installed(SIGINT));
  { auto s = session.step(1); }
  ::raise(SIGINT);  // synchronous: delivered to this thread before raise returns
  CHECK(g_user_calls.load() == 1);
  { auto s = session.step(1); }  // the program decides when to stop; recording goes on
  const auto report = session.finish();
  CHECK(report.status == "aborted");
  CHECK(report.steps_recorded == 2);
  // finish() put the program's handler back.
  CHECK(handler_is(SIGINT, user_handler));
  const json doc = trainmeter::test::read_json(report.path);
  CHECK(doc["run"]["status"] == "aborted");
  const json* d = signal_diagnostic(doc);
  REQUIRE(d != nullptr);
  CHECK((*d)["count"] == 1);
  CHECK((*d)["message"].get<std::string>().find("SIGINT (signal 2)") != std::string::npos);
  CHECK(trainmeter::test::schema_errors(report.path) == "");
}

TEST_CASE("SIGTERM to an SA_SIGINFO handler: siginfo passed through, counted twice",
          "[reliability][signals]") {
  TempDir dir;
  g_user_calls = 0;
  g_user_info_signo = 0;
  ScopedHandler user(SIGTERM, nullptr, user_info_handler);
  trainmeter::Session session(config_in(dir, "sigterm"));
  ::raise(SIGTERM);
  ::raise(SIGTERM);
  CHECK(g_user_calls.load() == 2);
  CHECK(g_user_info_signo.load() == SIGTERM);
  const auto report = session.finish();
  CHECK(report.status == "aborted");
  const json doc = trainmeter::test::read_json(report.path);
  const json* d = signal_diagnostic(doc);
  REQUIRE(d != nullptr);
  CHECK((*d)["count"] == 2);
  CHECK((*d)["message"].get<std::string>().find("SIGTERM (signal 15)") != std::string::npos);
}

TEST_CASE("an ignored signal stays ignored and the run completes", "[reliability][signals]") {
  TempDir dir;
  ScopedHandler ignore(SIGINT, SIG_IGN);
  trainmeter::Session session(config_in(dir, "ignored"));
  CHECK_FALSE(trainmeter::detail::signal_handler_installed(SIGINT));
  ::raise(SIGINT);
  const auto report = session.finish();
  CHECK(report.status == "completed");
  CHECK(handler_is(SIGINT, SIG_IGN));
}

TEST_CASE("no signal: completed, no diagnostic, handlers as before", "[reliability][signals]") {
  TempDir dir;
  ScopedHandler user(SIGINT, user_handler);
  const std::uint64_t before = trainmeter::detail::signal_count(SIGINT);
  {
    trainmeter::Session session(config_in(dir, "quiet"));
    { auto s = session.step(1); }
    const auto report = session.finish();
    CHECK(report.status == "completed");
    const json doc = trainmeter::test::read_json(report.path);
    CHECK(signal_diagnostic(doc) == nullptr);
  }
  CHECK(trainmeter::detail::signal_count(SIGINT) == before);
  CHECK(handler_is(SIGINT, user_handler));
}

TEST_CASE("overlapping sessions: a signal aborts the sessions running when it arrives",
          "[reliability][signals]") {
  TempDir dir;
  g_user_calls = 0;
  ScopedHandler user(SIGINT, user_handler);
  trainmeter::Session first(config_in(dir, "first"));
  trainmeter::Session second(config_in(dir, "second"));
  const auto a = first.finish();
  CHECK(a.status == "completed");
  // One session still runs: the handler stays installed.
  CHECK(trainmeter::detail::signal_handler_installed(SIGINT));
  ::raise(SIGINT);
  CHECK(g_user_calls.load() == 1);                     // chained once, not once per session
  trainmeter::Session third(config_in(dir, "third"));  // started after the signal
  const auto b = second.finish();
  const auto c = third.finish();
  CHECK(b.status == "aborted");
  CHECK(c.status == "completed");
  CHECK(handler_is(SIGINT, user_handler));
}

namespace {

struct ChildRun {
  int status = -1;  // from waitpid
  std::string output;
  bool report_exists = false;
  json report;
};

ChildRun run_child(const std::string& mode, int signo) {
  TempDir dir;
  const std::string report = dir / "child.json";
  const std::string ready = dir / "ready";
  const std::string out = dir / "stdout.txt";
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (std::FILE* f = std::freopen(out.c_str(), "w", stdout)) (void)f;
    ::execl(TRAINMETER_SIGNAL_CHILD, TRAINMETER_SIGNAL_CHILD, mode.c_str(), report.c_str(),
            ready.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (::access(ready.c_str(), F_OK) != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a few steps into the loop
  ::kill(pid, signo);
  ChildRun r;
  REQUIRE(::waitpid(pid, &r.status, 0) == pid);
  r.output = trainmeter::test::read_file(out);
  r.report_exists = ::access(report.c_str(), F_OK) == 0;
  if (r.report_exists) {
    r.report = trainmeter::test::read_json(report);
    CHECK(trainmeter::test::schema_errors(report) == "");
  }
  return r;
}

}  // namespace

TEST_CASE("child process: SIGINT, the program's handler stops the loop, report says aborted",
          "[reliability][signals][child]") {
  const ChildRun r = run_child("before", SIGINT);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.output.find("handler_calls=1\n") != std::string::npos);
  CHECK(r.output.find("handler_after_finish=user") != std::string::npos);
  REQUIRE(r.report_exists);
  CHECK(r.report["run"]["status"] == "aborted");
  CHECK(r.report["run"]["steps_recorded"].get<std::uint64_t>() > 0);
  const json* d = signal_diagnostic(r.report);
  REQUIRE(d != nullptr);
  CHECK((*d)["message"].get<std::string>().find("SIGINT") != std::string::npos);
}

TEST_CASE("child process: SIGTERM with the handler installed after the session, chaining",
          "[reliability][signals][child]") {
  const ChildRun r = run_child("after-chain", SIGTERM);
  REQUIRE(WIFEXITED(r.status));  // chaining to ours does not apply the default action
  CHECK(WEXITSTATUS(r.status) == 0);
  REQUIRE(r.report_exists);
  CHECK(r.report["run"]["status"] == "aborted");
  CHECK(r.output.find("handler_after_finish=user") != std::string::npos);
}

TEST_CASE("child process: handler after the session calling Session::abort()",
          "[reliability][signals][child]") {
  const ChildRun r = run_child("after-abort", SIGINT);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  REQUIRE(r.report_exists);
  CHECK(r.report["run"]["status"] == "aborted");
}

TEST_CASE("child process: no handler of its own, SIGINT kills it as it would without trainmeter",
          "[reliability][signals][child]") {
  const ChildRun r = run_child("default", SIGINT);
  REQUIRE(WIFSIGNALED(r.status));
  CHECK(WTERMSIG(r.status) == SIGINT);
  CHECK_FALSE(r.report_exists);
}

TEST_CASE("child process: a handler installed after the session without chaining stays in place",
          "[reliability][signals][child]") {
  const ChildRun r = run_child("after-nochain", SIGINT);
  REQUIRE(WIFEXITED(r.status));
  CHECK(WEXITSTATUS(r.status) == 0);
  CHECK(r.output.find("handler_calls=1\n") != std::string::npos);
  // trainmeter never saw the signal (the program's handler replaced its own and did not chain),
  // so the run reads "completed"; finish() did not clobber the program's handler.
  CHECK(r.output.find("handler_after_finish=user") != std::string::npos);
  REQUIRE(r.report_exists);
  CHECK(r.report["run"]["status"] == "completed");
}

namespace {

std::atomic<int> g_usr1_blocked_in_handler{-1};
void mask_probe_handler(int) {
  g_user_calls.fetch_add(1);
  sigset_t now;
  sigemptyset(&now);
  ::pthread_sigmask(SIG_BLOCK, nullptr, &now);
  g_usr1_blocked_in_handler.store(sigismember(&now, SIGUSR1));
}

bool same_mask(const sigset_t& a, const sigset_t& b) {
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&a, s) != sigismember(&b, s)) return false;
  return true;
}

}  // namespace

TEST_CASE(
    "the program's SA_RESTART and mask hold while trainmeter's handler is in; restored exactly",
    "[reliability][signals]") {
  TempDir dir;
  g_user_calls = 0;
  g_usr1_blocked_in_handler = -1;
  struct sigaction mine {};
  mine.sa_handler = mask_probe_handler;
  mine.sa_flags = SA_RESTART;
  sigemptyset(&mine.sa_mask);
  sigaddset(&mine.sa_mask, SIGUSR1);
  struct sigaction saved {};
  REQUIRE(::sigaction(SIGINT, &mine, &saved) == 0);
  {
    trainmeter::Session session(config_in(dir, "flags"));
    struct sigaction during {};
    REQUIRE(::sigaction(SIGINT, nullptr, &during) == 0);
    CHECK((during.sa_flags & SA_SIGINFO) != 0);  // ours
    CHECK((during.sa_flags & SA_RESTART) != 0);  // the program's choice kept
    CHECK((during.sa_flags & SA_RESETHAND) == 0);
    CHECK(same_mask(during.sa_mask, mine.sa_mask));
    ::raise(SIGINT);
    CHECK(g_user_calls.load() == 1);
    CHECK(g_usr1_blocked_in_handler.load() ==
          1);  // blocked in the program's handler, as without us
    CHECK(session.finish().status == "aborted");
    struct sigaction after {};
    REQUIRE(::sigaction(SIGINT, nullptr, &after) == 0);
    CHECK((after.sa_flags & SA_SIGINFO) == 0);
    CHECK(after.sa_handler == mask_probe_handler);
    CHECK((after.sa_flags & (SA_RESTART | SA_RESETHAND | SA_ONSTACK)) == SA_RESTART);
    CHECK(same_mask(after.sa_mask, mine.sa_mask));
  }
  ::sigaction(SIGINT, &saved, nullptr);
}

TEST_CASE("SIGTERM: the program's SA_SIGINFO handler, and the default, are restored by finish()",
          "[reliability][signals]") {
  TempDir dir;
  {
    ScopedHandler user(SIGTERM, nullptr, user_info_handler);
    trainmeter::Session session(config_in(dir, "term-restore"));
    CHECK(trainmeter::detail::signal_handler_installed(SIGTERM));
    session.finish();
    struct sigaction after {};
    REQUIRE(::sigaction(SIGTERM, nullptr, &after) == 0);
    CHECK((after.sa_flags & SA_SIGINFO) != 0);
    CHECK(after.sa_sigaction == user_info_handler);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  struct sigaction saved {};
  REQUIRE(::sigaction(SIGTERM, &dfl, &saved) == 0);
  {
    trainmeter::Session session(config_in(dir, "term-default"));
    CHECK(trainmeter::detail::signal_handler_installed(SIGTERM));
    session.finish();
    CHECK(handler_is(SIGTERM, SIG_DFL));
  }
  ::sigaction(SIGTERM, &saved, nullptr);
}

// SA_RESETHAND: the kernel would have reset the program's handler to SIG_DFL after its first
// delivery, so the child's own second SIGINT (raised after its handler ran once) must kill it,
// as it would without trainmeter.
TEST_CASE("child process: SA_RESETHAND handler runs once, the next SIGINT has the default action",
          "[reliability][signals][child]") {
  const ChildRun r = run_child("before-resethand", SIGINT);
  CHECK(r.output == "handler_calls=1\n");  // printed before the second signal, nothing after
  REQUIRE(WIFSIGNALED(r.status));
  CHECK(WTERMSIG(r.status) == SIGINT);
  CHECK_FALSE(r.report_exists);  // killed before finish(), as without trainmeter
}
