// Shared helpers for the test suite: temporary folders, files, running the CLI, schema checks.
#pragma once

#include <functional>
#include <optional>
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
  /// Lets other users (the `nobody` of run_unprivileged) traverse every folder and read every
  /// file below, keeping files whose mode is 000 as they are.
  void share_with_others() const;
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

/// Catch2 v2 has no SKIP(). skip_test() logs why the running test case cannot run here and
/// makes the executable exit with kSkipReturnCode when no test failed (tests/main.cpp); the
/// CTest entries that run such tests declare it as SKIP_RETURN_CODE, so CTest lists them as
/// skipped, never as passed (see trainmeter_add_test_entry in tests/CMakeLists.txt).
constexpr int kSkipReturnCode = 77;
void skip_test(const std::string& why);
/// Test cases that called skip_test() in this process.
int skipped_tests();

/// Runs `body` in a forked child without root's privileges, so file permissions are enforced:
/// as root (CI), the child drops to the user `nobody` (setgroups, setgid, setuid) first; as any
/// other user it runs as that user. Returns what the body returned (a description for the
/// parent's assertions: Catch2 assertions do not work in the child), or "exception: ..." when it
/// threw. When the privileges cannot be dropped (no `nobody`, no CAP_SETUID) it calls
/// skip_test() and returns nullopt.
std::optional<std::string> run_unprivileged(const std::function<std::string()>& body);

}  // namespace trainmeter::test
