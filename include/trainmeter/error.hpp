// trainmeter: the one exception type, thrown only while setting up (never after start()).
#pragma once

#include <stdexcept>
#include <string>

#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE

/// Thrown by configuration parsing, validation and Session construction. The message names the
/// offending key, the value given and what is accepted, one problem per line when several.
/// Nothing in trainmeter throws once a Session has started recording.
class TRAINMETER_EXPORT Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

TRAINMETER_END_NAMESPACE
