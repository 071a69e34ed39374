// "Not measured is null, never 0": the one way a possibly-missing figure becomes a JSON value.
#pragma once

#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace trainmeter::detail {

/// A finite number, or null (NaN and infinities are "not measured").
inline nlohmann::json json_or_null(double x) {
  return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr);
}

/// `x` where it is known (and finite), else null.
inline nlohmann::json json_or_null(double x, bool known) {
  return known ? json_or_null(x) : nlohmann::json(nullptr);
}

/// A present value, or null; a present floating-point value that is not finite is null too.
template <class T>
nlohmann::json json_or_null(const std::optional<T>& v) {
  // value_or rather than a test and *v: GCC 12 at -O2 reports the payload of an empty optional
  // built by `c ? optional(x) : nullopt` as maybe-uninitialized after inlining.
  if constexpr (std::is_floating_point_v<T>)
    return json_or_null(static_cast<double>(v.value_or(std::numeric_limits<T>::quiet_NaN())));
  else
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace trainmeter::detail
