// A training loop that a signal interrupts, run as a child by signals_test.cpp:
//   signal_child <mode> <report path> <ready file>
// It records steps until its own SIGINT/SIGTERM handler sets a flag (or 20 s pass), finishes the
// session and exits 0. Modes:
//   before       installs its handler before the Session
//   after-chain  installs its handler after the Session, chaining to the one it replaced
//   after-abort  installs its handler after the Session, calling Session::abort() from it
//   after-nochain installs its handler after the Session, not chaining
//   default      installs nothing: the signal's default action kills the process
//   before-resethand installs its SIGINT handler with SA_RESETHAND before the Session; after the
//                first signal it prints "handler_calls=N" and raises SIGINT itself, which the
//                default action must turn into the process's end
// The ready file appears once the session runs and the handler is in place. On exit the child
// prints "handler_calls=N" and "handler_after_finish=user|other".
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include <trainmeter/trainmeter.hpp>

namespace {

volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_calls = 0;
struct sigaction g_replaced {};
trainmeter::Session* g_session = nullptr;

void on_signal(int signo) {
  g_stop = 1;
  g_calls = g_calls + 1;
  (void)signo;
}

void on_signal_chain(int signo, siginfo_t* info, void* ctx) {
  on_signal(signo);
  if ((g_replaced.sa_flags & SA_SIGINFO) != 0 && g_replaced.sa_sigaction != nullptr)
    g_replaced.sa_sigaction(signo, info, ctx);
  else if (g_replaced.sa_handler != SIG_DFL && g_replaced.sa_handler != SIG_IGN)
    g_replaced.sa_handler(signo);
}

void on_signal_abort(int signo) {
  on_signal(signo);
  if (g_session != nullptr) g_session->abort();  // a relaxed atomic store: async-signal-safe
}

void install(int signo, void (*plain)(int), void (*info)(int, siginfo_t*, void*),
             int extra_flags = 0) {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = extra_flags;
  if (info != nullptr) {
    sa.sa_flags |= SA_SIGINFO;
    sa.sa_sigaction = info;
  } else {
    sa.sa_handler = plain;
  }
  ::sigaction(signo, &sa, signo == SIGINT ? &g_replaced : nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const std::string mode = argv[1];
  // The environment layer applies (e.g. TRAINMETER_STREAM), as in a real program.
  trainmeter::Config config = trainmeter::Config::from_env();
  config.run_name = "signal_child";
  config.output = argv[2];
  config.warmup_steps = 0;
  config.sample_interval_ms = 20;
  if (mode == "before") {
    install(SIGINT, on_signal, nullptr);
    install(SIGTERM, on_signal, nullptr);
  } else if (mode == "before-resethand") {
    install(SIGINT, on_signal, nullptr, SA_RESETHAND);
  }
  trainmeter::Session session(config);
  g_session = &session;
  if (mode == "after-chain") {
    install(SIGINT, nullptr, on_signal_chain);
    install(SIGTERM, nullptr, on_signal_chain);
  } else if (mode == "after-nochain") {
    install(SIGINT, on_signal, nullptr);
    install(SIGTERM, on_signal, nullptr);
  } else if (mode == "after-abort") {
    install(SIGINT, on_signal_abort, nullptr);
    install(SIGTERM, on_signal_abort, nullptr);
  }
  if (FILE* f = std::fopen(argv[3], "w")) std::fclose(f);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (g_stop == 0 && std::chrono::steady_clock::now() < deadline) {
    auto step = session.step(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (mode == "before-resethand") {
    std::printf("handler_calls=%d\n", static_cast<int>(g_calls));
    std::fflush(stdout);
    ::raise(SIGINT);  // the handler was reset: this ends the process
    std::printf("survived the second SIGINT\n");
    return 3;
  }
  session.finish();
  struct sigaction now {};
  ::sigaction(SIGINT, nullptr, &now);
  const bool user = (now.sa_flags & SA_SIGINFO) != 0
                        ? now.sa_sigaction == on_signal_chain
                        : (now.sa_handler == on_signal || now.sa_handler == on_signal_abort);
  std::printf("handler_calls=%d\nhandler_after_finish=%s\n", static_cast<int>(g_calls),
              user ? "user" : "other");
  return 0;
}
