// Fixture for layering_test_catches: the core including a measurement module (right way).
#include "energy/wrong_way.hpp"
#include "trainmeter/session.hpp"
