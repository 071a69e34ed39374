#include "core/signals.hpp"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace trainmeter::detail {

namespace {

constexpr std::array<int, kWatchedSignalCount> kSignals = {SIGINT, SIGTERM};
constexpr std::array<const char*, kWatchedSignalCount> kSignalNames = {"SIGINT", "SIGTERM"};

// The handler may only touch lock-free atomics and data written before it was installed.
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "signal counters must be lock-free");
static_assert(std::atomic<bool>::is_always_lock_free, "signal flags must be lock-free");

std::array<std::atomic<std::uint64_t>, kWatchedSignalCount> g_counts{};
// The handler that was in place before ours. Written under g_mutex only while our handler is
// not installed for that signal, and never again once another handler displaced ours (that one
// may still chain to us, so what we chain to must stay valid).
std::array<struct sigaction, kWatchedSignalCount> g_previous{};
// The previous handler had SA_RESETHAND: the kernel would have reset it to SIG_DFL after one
// delivery, so after chaining once we behave as if it were SIG_DFL.
std::array<std::atomic<bool>, kWatchedSignalCount> g_previous_spent{};

std::mutex g_mutex;  // guards everything below and writes to g_previous
std::array<bool, kWatchedSignalCount> g_installed{};
std::array<bool, kWatchedSignalCount> g_displaced{};
std::map<std::uint64_t, std::array<std::uint64_t, kWatchedSignalCount>> g_watchers;

int index_of(int signo) noexcept {
  for (int i = 0; i < kWatchedSignalCount; ++i)
    if (kSignals[i] == signo) return i;
  return -1;
}

void restore_default_and_raise(int signo) noexcept {
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  ::sigaction(signo, &dfl, nullptr);
  // The signal is blocked while its handler runs; it is delivered, with the default action,
  // as soon as this handler returns.
  ::raise(signo);
}

extern "C" void trainmeter_on_signal(int signo, siginfo_t* info, void* context);

bool is_ours(const struct sigaction& sa) noexcept {
  return (sa.sa_flags & SA_SIGINFO) != 0 && sa.sa_sigaction == &trainmeter_on_signal;
}

// The default action applies only when the kernel called us as the installed handler. A
// program's handler installed after ours that chains to us has already decided what the signal
// does (typically: stop the loop, exit normally); re-raising would kill it where it would live
// without trainmeter.
void default_action(int signo) noexcept {
  struct sigaction current {};
  if (::sigaction(signo, nullptr, &current) == 0 && !is_ours(current)) return;
  restore_default_and_raise(signo);
}

extern "C" void trainmeter_on_signal(int signo, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const int i = index_of(signo);
  if (i >= 0) {
    g_counts[i].fetch_add(1, std::memory_order_relaxed);
    const struct sigaction& prev = g_previous[i];
    const bool spent = g_previous_spent[i].load(std::memory_order_relaxed);
    if (spent) {
      default_action(signo);
    } else if ((prev.sa_flags & SA_SIGINFO) != 0) {
      if ((prev.sa_flags & SA_RESETHAND) != 0)
        g_previous_spent[i].store(true, std::memory_order_relaxed);
      if (prev.sa_sigaction != nullptr) prev.sa_sigaction(signo, info, context);
    } else if (prev.sa_handler == SIG_DFL) {
      default_action(signo);
    } else if (prev.sa_handler != SIG_IGN && prev.sa_handler != nullptr) {
      if ((prev.sa_flags & SA_RESETHAND) != 0)
        g_previous_spent[i].store(true, std::memory_order_relaxed);
      prev.sa_handler(signo);
    }
  }
  errno = saved_errno;
}

// Caller holds g_mutex.
void install_locked() noexcept {
  for (int i = 0; i < kWatchedSignalCount; ++i) {
    if (g_installed[i] || g_displaced[i]) continue;
    struct sigaction current {};
    if (::sigaction(kSignals[i], nullptr, &current) != 0) continue;
    if (is_ours(current)) {  // the program put ours back itself
      g_installed[i] = true;
      continue;
    }
    // An ignored signal stays ignored: the run goes on and is not aborted.
    if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == SIG_IGN) continue;
    g_previous[i] = current;
    g_previous_spent[i].store(false, std::memory_order_relaxed);
    struct sigaction ours {};
    ours.sa_sigaction = &trainmeter_on_signal;
    // Keep the program's restart and stack choices so interrupted system calls behave as before.
    ours.sa_flags = SA_SIGINFO | (current.sa_flags & (SA_RESTART | SA_ONSTACK));
    ours.sa_mask = current.sa_mask;
    if (::sigaction(kSignals[i], &ours, nullptr) == 0) g_installed[i] = true;
  }
}

// Caller holds g_mutex.
void uninstall_locked() noexcept {
  for (int i = 0; i < kWatchedSignalCount; ++i) {
    if (!g_installed[i]) continue;
    g_installed[i] = false;
    struct sigaction current {};
    if (::sigaction(kSignals[i], nullptr, &current) != 0) continue;
    if (is_ours(current)) {
      ::sigaction(kSignals[i], &g_previous[i], nullptr);
    } else {
      // The program installed its own handler after ours: leave it in place.
      g_displaced[i] = true;
    }
  }
}

}  // namespace

void begin_signal_watch(std::uint64_t owner) noexcept {
  try {
    std::lock_guard<std::mutex> lock(g_mutex);
    std::array<std::uint64_t, kWatchedSignalCount> snapshot{};
    for (int i = 0; i < kWatchedSignalCount; ++i)
      snapshot[i] = g_counts[i].load(std::memory_order_relaxed);
    g_watchers[owner] = snapshot;
    install_locked();
  } catch (...) {
    // Out of memory for the registry entry: this session simply does not watch signals.
  }
}

bool end_signal_watch(std::uint64_t owner, Diagnostics& diagnostics) noexcept {
  std::array<std::uint64_t, kWatchedSignalCount> received{};
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    const auto it = g_watchers.find(owner);
    if (it == g_watchers.end()) return false;
    for (int i = 0; i < kWatchedSignalCount; ++i)
      received[i] = g_counts[i].load(std::memory_order_relaxed) - it->second[i];
    g_watchers.erase(it);
    if (g_watchers.empty()) uninstall_locked();
  }
  bool any = false;
  for (int i = 0; i < kWatchedSignalCount; ++i) {
    if (received[i] == 0) continue;
    any = true;
    try {
      diagnostics.add_count("signal", diag::kError, received[i],
                            fmt::format("{} (signal {}) received during the run; the run is marked "
                                        "aborted",
                                        kSignalNames[i], kSignals[i]));
    } catch (...) {
    }
  }
  return any;
}

namespace {

struct CrashWatcher {
  CrashCallback on_crash;
  void* context;
};
std::mutex g_crash_mutex;  // guards the two below
std::map<std::uint64_t, CrashWatcher> g_crash_watchers;
std::terminate_handler g_previous_terminate = nullptr;
std::atomic<bool> g_terminating{false};

std::atomic<bool> g_crash_reports_done{false};

[[noreturn]] void trainmeter_on_terminate() noexcept {
  // Re-entered on this thread (a program handler installed after ours that chains back to us, or
  // a terminate raised while writing): stop here.
  static thread_local bool in_handler = false;
  if (in_handler) std::abort();
  in_handler = true;
  if (g_terminating.exchange(true)) {
    // Another thread is writing the reports: give it time to finish before dying with it.
    for (int i = 0; i < 5000 && !g_crash_reports_done.load(); ++i) ::usleep(1000);
  } else {
    std::string what = "std::terminate() called without an active exception";
    try {
      if (const std::exception_ptr e = std::current_exception()) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = std::string("uncaught exception: ") + ex.what();
        } catch (...) {
          what = "uncaught exception of a type not derived from std::exception";
        }
      }
    } catch (...) {
    }
    std::vector<CrashWatcher> watchers;
    try {
      // try_lock: terminate may come from a thread that holds the mutex (never in our code, but
      // a deadlock here would hide the crash itself).
      std::unique_lock<std::mutex> lock(g_crash_mutex, std::try_to_lock);
      if (lock.owns_lock())
        for (const auto& [id, w] : g_crash_watchers) watchers.push_back(w);
    } catch (...) {
    }
    for (const CrashWatcher& w : watchers) w.on_crash(w.context, what.c_str());
    g_crash_reports_done.store(true);
  }
  const std::terminate_handler previous = g_previous_terminate;
  if (previous != nullptr && previous != &trainmeter_on_terminate) previous();
  std::abort();
}

}  // namespace

void begin_crash_watch(std::uint64_t owner, CrashCallback on_crash, void* context) noexcept {
  try {
    std::lock_guard<std::mutex> lock(g_crash_mutex);
    if (g_crash_watchers.empty() && std::get_terminate() != &trainmeter_on_terminate)
      g_previous_terminate = std::set_terminate(&trainmeter_on_terminate);
    g_crash_watchers[owner] = CrashWatcher{on_crash, context};
  } catch (...) {
    // No memory for the entry: this session writes no report on terminate.
  }
}

void end_crash_watch(std::uint64_t owner) noexcept {
  try {
    std::lock_guard<std::mutex> lock(g_crash_mutex);
    if (g_crash_watchers.erase(owner) == 0 || !g_crash_watchers.empty()) return;
    // The program may have installed its own handler after ours (it may chain to ours): leave
    // it in place; ours then still chains to the one before it.
    if (std::get_terminate() == &trainmeter_on_terminate) std::set_terminate(g_previous_terminate);
  } catch (...) {
  }
}

bool terminate_handler_installed() noexcept {
  return std::get_terminate() == &trainmeter_on_terminate;
}

std::uint64_t signal_count(int signo) noexcept {
  const int i = index_of(signo);
  return i < 0 ? 0 : g_counts[i].load(std::memory_order_relaxed);
}

bool signal_handler_installed(int signo) noexcept {
  struct sigaction current {};
  if (::sigaction(signo, nullptr, &current) != 0) return false;
  return is_ours(current);
}

}  // namespace trainmeter::detail
