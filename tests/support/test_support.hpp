// Shared helpers for the test suite: temporary folders, files, running the CLI, schema checks.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace trainmeter::test {

/// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Writes `content` to `path`, creating parent directories.
void write_file(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);
nlohmann::json read_json(const std::string& path);

struct CommandResult {
  int exit_code = -1;
  std::string output;  ///< stdout and stderr together
};
/// Runs a shell command, capturing its output.
CommandResult run_command(const std::string& command);
/// Runs the trainmeter CLI (path from $TRAINMETER_CLI, set by CTest) with `args`.
CommandResult run_cli(const std::string& args);

/// Validates a report file against docs/report.schema.json with Python's jsonschema (a real,
/// independent validator). Returns "" when valid, else the validator's message.
std::string schema_errors(const std::string& report_path);

/// Sets an environment variable for the scope's lifetime, restoring the old value after.
class ScopedEnv {
 public:
  ScopedEnv(const std::string& name, const std::string& value);
  ~ScopedEnv();
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::string old_;
  bool had_old_ = false;
};

}  // namespace trainmeter::test
