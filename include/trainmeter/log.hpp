// trainmeter: log output. Silent by default; install a handler to see messages.
#pragma once

#include <functional>
#include <string_view>

#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE

enum class LogLevel { kDebug, kInfo, kWarning, kError };

/// Called from whichever thread logs (usually the collector thread). Must not throw.
using LogHandler = std::function<void(LogLevel, std::string_view message)>;

/// Replaces the log handler (nullptr: silent, the default). Thread-safe.
TRAINMETER_EXPORT void set_log_handler(LogHandler handler);
/// A handler that writes "trainmeter: <level>: <message>" lines to stderr.
TRAINMETER_EXPORT LogHandler stderr_log_handler(LogLevel min_level = LogLevel::kInfo);

TRAINMETER_END_NAMESPACE
