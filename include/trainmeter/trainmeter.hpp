// trainmeter: umbrella header. Includes no torch, fmt or nlohmann; see trainmeter/torch.hpp for
// the libtorch integration.
#pragma once

#include "trainmeter/config.hpp"
#include "trainmeter/error.hpp"
#include "trainmeter/log.hpp"
#include "trainmeter/report.hpp"
#include "trainmeter/session.hpp"
#include "trainmeter/step.hpp"
#include "trainmeter/version.hpp"
