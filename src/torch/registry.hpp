// Internal: the one per-session registry of trainmeter::torch. Each integration part (tensor
// memory, op accounting) keeps one state object per session; the state is owned by the
// session's component and by the guards, and the registry only points at it (weak), so a
// finished session's entry expires by itself.
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace trainmeter::detail {

class SessionImpl;

/// Finds the live `State` registered for `session`, or makes one with `make()` and registers it.
/// `State` has a `std::mutex mutex` and a `SessionImpl* session` that its component clears when
/// the session goes away; an entry whose state no longer points at the session is not returned.
/// `make` returns a shared_ptr<State> (nullptr: none made, nothing registered); `made` says
/// which branch ran. One registry per State type; lookups are serialised.
template <class State, class Make>
std::shared_ptr<State> find_or_make_session_state(SessionImpl* session, Make&& make, bool& made) {
  struct Registry {
    std::mutex mutex;
    std::vector<std::pair<SessionImpl*, std::weak_ptr<State>>> entries;
  };
  static Registry reg;  // function-local: nothing runs at static initialisation
  made = false;
  std::lock_guard<std::mutex> lock(reg.mutex);
  auto& entries = reg.entries;
  entries.erase(std::remove_if(entries.begin(), entries.end(),
                               [](const auto& e) { return e.second.expired(); }),
                entries.end());
  for (const auto& e : entries)
    if (e.first == session)
      if (auto existing = e.second.lock()) {
        std::lock_guard<std::mutex> state_lock(existing->mutex);
        if (existing->session == session) return existing;
      }
  std::shared_ptr<State> state = make();
  if (!state) return nullptr;
  entries.emplace_back(session, state);
  made = true;
  return state;
}

}  // namespace trainmeter::detail
