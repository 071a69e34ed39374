// The carbon and cost component: resolves the grid intensity and prices at construction (bad
// configuration throws there), then, at finish, fills report["carbon"], report["cost"] and the
// PUE figures of report["energy"] from the energy the energy component recorded (it contributes
// after energy). Runs entirely in contribute(); nothing on the step path.
#pragma once

#include <memory>

#include "base/component.hpp"
#include "carbon/settings.hpp"

namespace trainmeter::detail {

/// The component; the factory throws Error on bad carbon/cost configuration.
std::unique_ptr<Component> make_carbon_component(RunContext& ctx);

}  // namespace trainmeter::detail
