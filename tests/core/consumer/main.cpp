// my_train.cpp of the README's "Use it from your own project", built by the test suite against the
// *installed* trainmeter package: proves the exported targets, headers and package config work.
#include <trainmeter/trainmeter.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  trainmeter::Config cfg;
  cfg.run_name = "consumer";
  cfg.output = argv[1];
  cfg.warmup_steps = 0;
  trainmeter::Session session(cfg);
  for (int i = 0; i < 10; ++i) {
    auto step = session.step(4);
  }
  const auto report = session.finish();
  const auto* train = report.phase("train");
  std::printf("steps=%llu written=%d\n", train ? static_cast<unsigned long long>(train->steps) : 0ULL,
              report.written ? 1 : 0);
  return (train != nullptr && train->steps == 10 && report.written) ? 0 : 1;
}
