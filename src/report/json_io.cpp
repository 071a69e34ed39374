#include "report/json_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "platform/file.hpp"

namespace trainmeter::detail {

namespace {
constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

std::string indent_block(const std::string& text, int spaces) {
  std::string out;
  out.reserve(text.size() + 64);
  const std::string pad(static_cast<std::size_t>(spaces), ' ');
  for (char c : text) {
    out += c;
    if (c == '\n') out += pad;
  }
  return out;
}
}  // namespace

std::string dump_report(const nlohmann::json& report) {
  if (!report.is_object()) return report.dump(2, ' ', false, kReplace);
  std::string out = "{";
  bool first = true;
  for (auto it = report.begin(); it != report.end(); ++it) {
    out += first ? "\n  " : ",\n  ";
    first = false;
    out += nlohmann::json(it.key()).dump(-1, ' ', false, kReplace);
    out += ": ";
    const auto& v = it.value();
    if (it.key() == "steps" && v.is_array() && !v.empty()) {
      out += "[";
      bool first_step = true;
      for (const auto& step : v) {
        out += first_step ? "\n    " : ",\n    ";
        first_step = false;
        out += step.dump(-1, ' ', false, kReplace);
      }
      out += "\n  ]";
    } else {
      out += indent_block(v.dump(2, ' ', false, kReplace), 2);
    }
  }
  out += "\n}\n";
  return out;
}

std::string write_file_atomic(const std::string& path, const std::string& text) noexcept {
  try {
    // Never rename over a device, fifo or socket (a report path of /dev/null must not replace it).
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      return "cannot write " + path + ": not a regular file";
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return "cannot create " + tmp + ": " + errno_text(errno);
    std::size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        const int err = errno;
        ::close(fd);
        ::unlink(tmp.c_str());
        return "cannot write " + tmp + ": " + errno_text(err);
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return "cannot sync " + tmp + ": " + errno_text(err);
    }
    if (::close(fd) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return "cannot close " + tmp + ": " + errno_text(err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      ::unlink(tmp.c_str());
      return "cannot rename " + tmp + " to " + path + ": " + errno_text(err);
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("cannot write ") + path + ": " + e.what();
  }
}

JsonLoad parse_json_text(const std::string& text) {
  JsonLoad out;
  try {
    out.value = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based; count lines and columns up to it.
    const std::size_t pos = e.byte == 0 ? 0 : std::min<std::size_t>(e.byte - 1, text.size());
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < pos; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    std::string what = e.what();
    // nlohmann's message is "[json.exception.parse_error.101] parse error at line L, column C:
    // <what>" (or "... parse error: <what>"); keep <what>, we give the position ourselves.
    const auto at = what.find("parse error");
    if (at != std::string::npos) {
      const auto colon = what.find(": ", at);
      if (colon != std::string::npos) what = what.substr(colon + 2);
    }
    out.error = "line " + std::to_string(line) + ", column " + std::to_string(col) + ": " + what;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  return out;
}

JsonLoad load_json_file(const std::string& path, std::size_t max_bytes) {
  JsonLoad out;
  int err = 0;
  auto text = read_text_file(path, max_bytes + 1, &err);
  if (!text) {
    out.error = path + ": cannot read: " + errno_text(err);
    return out;
  }
  if (text->size() > max_bytes) {
    out.error = path + ": larger than " + std::to_string(max_bytes) + " bytes";
    return out;
  }
  out = parse_json_text(*text);
  if (!out.value) out.error = path + ": " + out.error;
  return out;
}

}  // namespace trainmeter::detail
