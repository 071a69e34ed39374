// The test executables' main: Catch2's, plus two things Catch2 v2 lacks.
// - The random order's seed is printed, so a failure under `--order rand --rng-seed time` (as
//   CTest runs them) can be replayed with `--order rand --rng-seed <seed>`.
// - Skipped tests (trainmeter::test::skip_test) end the run with kSkipReturnCode when nothing
//   failed, which CTest reports as skipped on the entries that declare it.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "support/test_support.hpp"

int main(int argc, char* argv[]) {
  Catch::Session session;
  const int parsed = session.applyCommandLine(argc, argv);
  if (parsed != 0) return parsed;
  if (session.configData().runOrder == Catch::RunTests::InRandomOrder)
    std::fprintf(stderr, "trainmeter tests: random order, replay with --order rand --rng-seed %u\n",
                 session.configData().rngSeed);
  const int failed = session.run();
  if (failed == 0 && trainmeter::test::skipped_tests() > 0) {
    std::fprintf(stderr, "trainmeter tests: %d test case(s) skipped\n",
                 trainmeter::test::skipped_tests());
    return trainmeter::test::kSkipReturnCode;
  }
  return failed;
}
