// The one way a run id is made when none is configured (the session; the distributed gather's
// rank 0, which then shares it with every rank).
#pragma once

#include <cstdint>
#include <string>

namespace trainmeter::detail {

/// "20261201T233610Z-1a2b3c4d": the UTC time of `unix_ns` to the second and 32 random bits.
std::string generate_run_id(std::int64_t unix_ns);

}  // namespace trainmeter::detail
