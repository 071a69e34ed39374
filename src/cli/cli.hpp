// Shared pieces of the trainmeter command-line tool.
#pragma once

#include <functional>
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
  Args(std::string command, std::string usage)
      : command_(std::move(command)), usage_(std::move(usage)) {}
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
  /// number() within the bounds of configuration key `key` (the key table is the one place
  /// bounds live; CliError names the option, the value and the accepted range). `min` replaces
  /// the key's lower bound where the option allows less (0 W: "none of this component").
  std::optional<double> number_in(const std::string& name, const char* key,
                                  std::optional<double> min = std::nullopt) const;
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

/// `message` without a leading "trainmeter: " (library errors carry it; the CLI prints its own
/// "trainmeter <command>: " before every message).
std::string without_prefix(const std::string& message);

/// Loads a report file: CliError (one line: file, and line:column for malformed JSON; a newer
/// schema_version; not an object) on any problem.
/// With `with_steps` false the entries of steps[] are not loaded (the array is empty): for
/// commands that read only the sections, at a memory cost independent of the step count;
/// `on_step` then sees each entry of steps[] (and its position) as it is read.
nlohmann::json load_report(
    const std::string& path, bool with_steps = true,
    const std::function<void(const nlohmann::json&, std::size_t)>& on_step = {});

/// load_report() that also checks the report against docs/report.schema.json: CliError "<path>:
/// not a valid report: <first problem> (see trainmeter validate)" otherwise.
nlohmann::json load_valid_report(const std::string& path, bool with_steps = true);

/// Refuses (CliError, exit 2) an output path that is one of the command's inputs: the same file
/// by device and inode, so also through symbolic and hard links and other spellings of the path.
/// An output that does not exist yet is never an input. Every command that writes a file calls
/// this before writing, so no output ever overwrites an input.
void refuse_output_over_input(const std::string& output, const std::vector<std::string>& inputs);

}  // namespace trainmeter::cli
