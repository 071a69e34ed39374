// SIGINT/SIGTERM during a run: noted without stealing the user's handlers, so that a program
// that exits normally after Ctrl-C (or a scheduler's SIGTERM) writes a report saying "aborted".
//
// The first running session installs one sigaction handler per signal; it records the signal in
// lock-free counters and then chains to the handler that was installed before it:
//   - a user's function (plain or SA_SIGINFO): called with the same arguments;
//   - SIG_DFL: the default action is restored and the signal raised again, so the process
//     terminates exactly as it would have without trainmeter (no report: nothing can run);
//   - SIG_IGN: trainmeter installs nothing for that signal (nohup'ed runs keep ignoring it).
// The last session to finish puts the previous handlers back, unless the program replaced ours
// in the meantime (then its handler stays, and later sessions leave these signals to it: it may
// chain to ours, and installing ours over it again could make the two call each other). A
// handler the program installs after the session starts replaces ours; to get an "aborted"
// report it chains to the handler it replaced (ours then records the signal and does not apply
// a default action: the program's handler decided what the signal does) or calls
// Session::abort(), a lock-free store that is safe in a signal handler.
#pragma once

#include <cstdint>

#include "base/diagnostics.hpp"

namespace trainmeter::detail {

/// Signals watched: SIGINT and SIGTERM.
inline constexpr int kWatchedSignalCount = 2;

/// Starts watching for session `owner` (a unique id): installs the handlers if no other session
/// watches. Not async-signal-safe (takes a mutex); call at session start. Never throws.
void begin_signal_watch(std::uint64_t owner) noexcept;

/// Stops watching for `owner` (the last watcher restores the previous handlers) and reports the
/// watched signals received since its begin_signal_watch(): one diagnostic per signal, source
/// "signal". Returns true when any was received (the run is then "aborted"). Unknown owners
/// return false. Never throws.
bool end_signal_watch(std::uint64_t owner, Diagnostics& diagnostics) noexcept;

/// An uncaught exception (std::terminate) during a run. The first session to start installs a
/// terminate handler with std::set_terminate, keeping the one it replaced; on terminate it calls
/// every watching session's `on_crash(context, what)` once (they write their reports with status
/// "crashed"), with `what` the exception's message when std::current_exception() has one
/// deriving from std::exception, and then calls the replaced handler (the program's own, or the
/// default, which aborts). The last session to finish puts the replaced handler back unless the
/// program installed another one meanwhile. Never throws.
using CrashCallback = void (*)(void* context, const char* what) noexcept;
void begin_crash_watch(std::uint64_t owner, CrashCallback on_crash, void* context) noexcept;
void end_crash_watch(std::uint64_t owner) noexcept;
/// True while trainmeter's terminate handler is the installed one (tests).
bool terminate_handler_installed() noexcept;

/// Times `signo` has reached trainmeter's handler in this process (tests; async-signal-safe).
std::uint64_t signal_count(int signo) noexcept;

/// True while trainmeter's handler for `signo` is installed (tests).
bool signal_handler_installed(int signo) noexcept;

}  // namespace trainmeter::detail
