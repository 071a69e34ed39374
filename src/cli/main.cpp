// trainmeter: command-line entry point. Dispatches to the commands listed in commands.def.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/cli.hpp"
#include "trainmeter/version.hpp"

namespace {

struct Entry {
  const char* name;
  int (*run)(const std::vector<std::string>&);
  const char* summary;
};

const Entry kCommands[] = {
#define TM_COMMAND(name, fn, summary) {name, trainmeter::cli::fn, summary},
#include "cli/commands.def"
#undef TM_COMMAND
};

void print_help() {
  fmt::print(
      "trainmeter {} - time, memory, energy, carbon and cost of training runs\n\n"
      "usage: trainmeter <command> [options]\n       trainmeter <command> --help\n\ncommands:\n",
      TRAINMETER_VERSION_STRING);
  for (const Entry& e : kCommands) fmt::print("  {:<10} {}\n", e.name, e.summary);
  fmt::print(
      "\nexit codes: 0 ok, 1 check failed (validate, compare gates), 2 bad usage or input\n"
      "configuration of instrumented programs: `trainmeter config` lists every TRAINMETER_* "
      "variable\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    print_help();
    return argc < 2 ? trainmeter::cli::kExitUsage : trainmeter::cli::kExitOk;
  }
  if (std::strcmp(argv[1], "--version") == 0) {
    fmt::print("trainmeter {}\n", TRAINMETER_VERSION_STRING);
    return 0;
  }
  const std::string name = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  for (const Entry& e : kCommands) {
    if (name != e.name) continue;
    try {
      return e.run(args);
    } catch (const trainmeter::cli::CliError& err) {
      std::fflush(stdout);
      fmt::print(stderr, "trainmeter {}: {}\n", name, trainmeter::cli::without_prefix(err.message));
      return err.exit_code;
    } catch (const std::exception& err) {
      std::fflush(stdout);
      fmt::print(stderr, "trainmeter {}: {}\n", name, trainmeter::cli::without_prefix(err.what()));
      return trainmeter::cli::kExitUsage;
    }
  }
  fmt::print(stderr, "trainmeter: unknown command '{}' (see trainmeter --help)\n", name);
  return trainmeter::cli::kExitUsage;
}
