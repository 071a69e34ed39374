// The steps of a finished report handed out one at a time, whether they come from the records a
// session holds or from a report file being read: what lets an export or an after-write hook see
// every step without a document of all of them.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// Called with each element of a report's steps[], in order, with its position in the array. The
/// element is dropped after the call (copy what you keep).
using StepVisitor = std::function<void(const nlohmann::json& step, std::size_t index)>;

/// Hands every step to the visitor, in order, one in memory at a time: "" or why it could not
/// (the steps handed out before the error stay handed out).
using StepSource = std::function<std::string(const StepVisitor&)>;

}  // namespace trainmeter::detail
