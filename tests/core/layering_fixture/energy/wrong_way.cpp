// Fixture for layering_test_catches: a measurement module including the core (wrong way).
#include "core/session_impl.hpp"
