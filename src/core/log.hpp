// Internal logging entry point; routes to the user's handler (silent by default).
#pragma once

#include <string_view>

#include "trainmeter/log.hpp"

TRAINMETER_BEGIN_NAMESPACE
namespace detail {
void log(LogLevel level, std::string_view message) noexcept;
}
TRAINMETER_END_NAMESPACE
