// Shared pieces of the trainmeter command-line tool.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainmeter::cli {

#define TM_COMMAND(name, fn, summary) int fn(const std::vector<std::string>& args);
#include "cli/commands.def"
#undef TM_COMMAND

/// Exit codes: 0 success, 1 the check/gate failed (validate, compare --fail-if-slower),
/// 2 bad usage or unreadable input.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

/// A failure that ends the command with a one-line message "trainmeter <cmd>: <message>".
struct CliError {
  std::string message;
  int exit_code = kExitUsage;
};

/// Minimal, strict argument parser. Declare the options, then parse: unknown options, missing
/// values and wrong counts of positionals throw CliError with a one-line message.
class Args {
 public:
  Args(std::string command, std::string usage) : command_(std::move(command)), usage_(std::move(usage)) {}
  /// An option taking a value, e.g. "--out" with alias "-o".
  Args& option(const std::string& name, const std::string& help, const std::string& alias = "");
  /// A boolean flag, e.g. "--json".
  Args& flag(const std::string& name, const std::string& help);
  /// Parses; returns false when --help was given (help already printed to stdout).
  bool parse(const std::vector<std::string>& args, std::size_t min_positional,
             std::size_t max_positional);

  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  /// Parses an option as a finite number; CliError names the option and value otherwise.
  std::optional<double> number(const std::string& name) const;
  std::optional<long long> integer(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }
  std::string help_text() const;

 private:
  struct Spec {
    std::string name, alias, help;
    bool takes_value;
  };
  std::string command_, usage_;
  std::vector<Spec> specs_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

/// Loads a report file: CliError (one line: file, and line:column for malformed JSON; a newer
/// schema_version; not an object) on any problem.
nlohmann::json load_report(const std::string& path);

}  // namespace trainmeter::cli
