// A stand-in training process for the SIGKILL test: records steps of a known length (sleep) with
// a session configured from the environment (TRAINMETER_STREAM, TRAINMETER_FLUSH_INTERVAL_MS),
// and after each step prints the number of completed steps on stdout, so the test knows how
// many steps existed when it killed the process.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "trainmeter/session.hpp"

int main(int argc, char** argv) {
  const int step_ms = argc > 1 ? std::atoi(argv[1]) : 5;
  trainmeter::Session session(trainmeter::Config::from_env());
  const trainmeter::Phase eval = session.phase("eval \"quoted\"\\ \xc3\xa9");
  for (unsigned long i = 0;; ++i) {
    {
      auto step = session.step(8, (i % 10 == 9) ? eval : trainmeter::Phase{0});
      step.set_loss(1.0 / double(i + 1));
      std::this_thread::sleep_for(std::chrono::milliseconds(step_ms));
    }
    char line[32];
    const int n = std::snprintf(line, sizeof line, "%lu\n", i + 1);
    if (::write(1, line, static_cast<std::size_t>(n)) < 0) return 1;
  }
}
