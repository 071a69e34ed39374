#include "core/log.hpp"

#include <cstdio>
#include <memory>
#include <mutex>

TRAINMETER_BEGIN_NAMESPACE

namespace {
std::mutex& handler_mutex() {
  static std::mutex m;
  return m;
}
std::shared_ptr<LogHandler>& handler_slot() {
  static std::shared_ptr<LogHandler> h;
  return h;
}
const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}
}  // namespace

void set_log_handler(LogHandler handler) {
  auto next = handler ? std::make_shared<LogHandler>(std::move(handler)) : nullptr;
  std::lock_guard<std::mutex> lock(handler_mutex());
  handler_slot() = std::move(next);
}

LogHandler stderr_log_handler(LogLevel min_level) {
  return [min_level](LogLevel level, std::string_view message) {
    if (level < min_level) return;
    std::fprintf(stderr, "trainmeter: %s: %.*s\n", level_name(level), static_cast<int>(message.size()),
                 message.data());
  };
}

namespace detail {
void log(LogLevel level, std::string_view message) noexcept {
  std::shared_ptr<LogHandler> h;
  {
    std::lock_guard<std::mutex> lock(handler_mutex());
    h = handler_slot();
  }
  if (!h) return;
  try {
    (*h)(level, message);
  } catch (...) {
    // A throwing user handler must not take the training run down.
  }
}
}  // namespace detail

TRAINMETER_END_NAMESPACE
