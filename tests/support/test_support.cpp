#include "support/test_support.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace trainmeter::test {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "trainmeter-test-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Restore write permission first: some tests make folders read-only.
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
       it.increment(ec))
    fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

void TempDir::share_with_others() const {
  std::error_code ec;
  fs::permissions(path_, fs::perms::others_read | fs::perms::others_exec, fs::perm_options::add,
                  ec);
  for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::perms mode = it->symlink_status().permissions();
    if (it->is_directory())
      fs::permissions(it->path(), fs::perms::others_read | fs::perms::others_exec,
                      fs::perm_options::add, ec);
    else if (it->is_regular_file() && mode != fs::perms::none)
      fs::permissions(it->path(), fs::perms::others_read, fs::perm_options::add, ec);
  }
}

void write_file(const std::string& path, const std::string& content) {
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << content;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  return nlohmann::json::parse(read_file(path));
}

CommandResult run_command(const std::string& command) {
  CommandResult result;
  std::string full = command + " 2>&1";
  FILE* pipe = ::popen(full.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) result.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

CommandResult run_cli(const std::string& args) {
  const char* cli = std::getenv("TRAINMETER_CLI");
  std::string exe = cli != nullptr ? cli : TRAINMETER_BINARY_DIR "/bin/trainmeter";
  return run_command("'" + exe + "' " + args);
}

std::string schema_errors(const std::string& report_path) {
  const std::string script =
      std::string(TRAINMETER_SOURCE_DIR) + "/tests/support/validate_report.py";
  CommandResult r = run_command(std::string("'") + TRAINMETER_PYTHON + "' '" + script + "' '" +
                                TRAINMETER_SCHEMA_PATH + "' '" + report_path + "'");
  return r.exit_code == 0 ? std::string() : (r.output.empty() ? "validator failed" : r.output);
}

ScopedEnv::ScopedEnv(const std::string& name, const std::string& value) : name_(name) {
  if (const char* old = std::getenv(name.c_str())) {
    had_old_ = true;
    old_ = old;
  }
  ::setenv(name.c_str(), value.c_str(), 1);
}

ScopedEnv::~ScopedEnv() {
  if (had_old_)
    ::setenv(name_.c_str(), old_.c_str(), 1);
  else
    ::unsetenv(name_.c_str());
}

namespace {
int g_skipped = 0;
}  // namespace

void skip_test(const std::string& why) {
  ++g_skipped;
  WARN("SKIPPED: " << why);
}

int skipped_tests() {
  return g_skipped;
}

std::optional<std::string> run_unprivileged(const std::function<std::string()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    int code = 0;
    if (::geteuid() == 0) {
      const passwd* pw = ::getpwnam("nobody");
      if (pw == nullptr) {
        out = "no user 'nobody'";
        code = 3;
      } else if (::setgroups(0, nullptr) != 0 || ::setgid(pw->pw_gid) != 0 ||
                 ::setuid(pw->pw_uid) != 0 || ::geteuid() == 0) {
        out = std::string("cannot drop to 'nobody': ") + std::strerror(errno);
        code = 3;
      }
    }
    if (code == 0) {
      try {
        out = body();
      } catch (const std::exception& e) {
        out = std::string("exception: ") + e.what();
      }
    }
    for (size_t done = 0; done < out.size();) {
      const ssize_t n = ::write(fds[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string out;
  std::array<char, 4096> buf{};
  ssize_t n = 0;
  while ((n = ::read(fds[0], buf.data(), buf.size())) > 0)
    out.append(buf.data(), static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) {
    skip_test("permission check needs an unprivileged user: " + out);
    return std::nullopt;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "child ended with status " + std::to_string(status) + ": " + out;
  return out;
}

}  // namespace trainmeter::test
