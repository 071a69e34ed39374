// A fake step clock for session tests: a step hook that overwrites each recorded step's wall
// time with the next value of a script, so statistics can be checked against literal,
// hand-derived values instead of whatever the machine's clock measured.
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include <trainmeter/session.hpp>

#include "core/session_impl.hpp"

namespace trainmeter::test {

class ScriptedWallTimes {
 public:
  /// Installs itself on `session` (which must be enabled); steps past the script keep their
  /// measured wall time. The object must outlive every step of the session.
  ScriptedWallTimes(Session& session, std::vector<std::int64_t> wall_ns)
      : script_(std::move(wall_ns)), hot_(session.impl()->hot()) {
    hooks_ = detail::StepHooks{&on_begin, &on_end, this};
    slot_ = detail::add_step_hooks(*hot_, &hooks_);
  }
  ~ScriptedWallTimes() { detail::remove_step_hooks(*hot_, slot_, &hooks_); }
  ScriptedWallTimes(const ScriptedWallTimes&) = delete;
  ScriptedWallTimes& operator=(const ScriptedWallTimes&) = delete;
  bool installed() const { return slot_ >= 0; }

 private:
  static std::uint32_t on_begin(void*) noexcept { return 0; }
  static void on_end(void* ctx, std::uint32_t, detail::StepRecord& r) noexcept {
    auto* self = static_cast<ScriptedWallTimes*>(ctx);
    const std::size_t i = self->next_.fetch_add(1);
    if (i < self->script_.size()) r.wall_ns = self->script_[i];
  }
  std::vector<std::int64_t> script_;
  detail::HotState* hot_;
  detail::StepHooks hooks_{};
  int slot_ = -1;
  std::atomic<std::size_t> next_{0};
};

}  // namespace trainmeter::test
