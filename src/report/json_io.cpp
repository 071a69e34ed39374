#include "report/json_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "base/report_keys.hpp"
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

std::string dump_report_value(const nlohmann::json& value) {
  return indent_block(value.dump(2, ' ', false, kReplace), 2);
}

std::string dump_report(const nlohmann::json& report) {
  const auto steps = report.is_object() ? report.find(rk::steps) : report.end();
  const bool listed = steps != report.end() && steps->is_array();
  std::string out;
  stream_report_text(
      report, listed ? steps->size() : 0,
      [&](std::size_t i, std::string& text) { text += (*steps)[i].dump(-1, ' ', false, kReplace); },
      [&](const std::string& text) { out += text; });
  return out;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

bool AtomicFile::open(const std::string& path) noexcept {
  try {
    path_ = path;
    // Never rename over a device, fifo or socket (a report path of /dev/null must not replace it).
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
      return fail("cannot write " + path + ": not a regular file");
    tmp_ = path + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) return fail("cannot create " + tmp_ + ": " + errno_text(errno));
    buffer_.reserve(kBufferBytes);
    return true;
  } catch (const std::exception& e) {
    return fail(std::string("cannot write ") + path + ": " + e.what());
  }
}

bool AtomicFile::fail(std::string error) noexcept {
  if (error_.empty()) error_ = std::move(error);
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
    fd_ = -1;
  }
  return false;
}

bool AtomicFile::write_out(const char* data, std::size_t size) noexcept {
  const int err = write_all(fd_, data, size);
  if (err != 0) return fail("cannot write " + tmp_ + ": " + errno_text(err));
  return true;
}

bool AtomicFile::flush() noexcept {
  if (fd_ < 0) return false;
  const bool ok = write_out(buffer_.data(), buffer_.size());
  buffer_.clear();
  return ok;
}

bool AtomicFile::commit() noexcept {
  if (fd_ < 0 || !flush()) return false;
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS)
    return fail("cannot sync " + tmp_ + ": " + errno_text(errno));
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    error_ = "cannot close " + tmp_ + ": " + errno_text(err);
    return false;
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    error_ = "cannot rename " + tmp_ + " to " + path_ + ": " + errno_text(err);
    return false;
  }
  return true;
}

std::string write_file_atomic(const std::string& path, const std::string& text) noexcept {
  AtomicFile file;
  if (file.open(path) && file.write_out(text.data(), text.size()) && file.commit()) return "";
  return file.error();
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

namespace {

// Parses the report at `path` as a stream. Top-level keys arrive at depth 1; each element of
// steps[] ends at depth 2 (an object's end, or a scalar value): it is shown to `on_step` and
// dropped there, which keeps one step in memory at a time. With `keep_sections` false every other
// top-level value is dropped when it ends, too.
JsonLoad parse_report_stream(const std::string& path, std::size_t* steps_seen,
                             const StepVisitor& on_step, bool keep_sections) {
  JsonLoad out;
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    out.error = path + ": cannot read: " + errno_text(errno);
    return out;
  }
  bool in_steps = false;
  std::size_t seen = 0;
  const nlohmann::json::parser_callback_t visit =
      [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        const bool ends = event == E::object_end || event == E::array_end || event == E::value;
        if (depth == 1 && event == E::key) in_steps = parsed == rk::steps;
        if (in_steps && depth == 2 && ends) {
          if (on_step) on_step(parsed, seen);
          ++seen;
          return false;
        }
        if (!keep_sections && depth == 1 && ends && !in_steps) return false;
        return true;
      };
  try {
    out.value = nlohmann::json::parse(in, visit);
  } catch (const nlohmann::json::parse_error& e) {
    out.value.reset();
    out.error = path + ": byte " + std::to_string(e.byte) + ": " + e.what();
  } catch (const std::exception& e) {
    out.value.reset();
    out.error = path + ": " + e.what();
  }
  if (steps_seen != nullptr) *steps_seen = seen;
  return out;
}

}  // namespace

JsonLoad load_report_sections(const std::string& path, std::size_t* steps_skipped,
                              const StepVisitor& on_step) {
  return parse_report_stream(path, steps_skipped, on_step, true);
}

std::string for_each_step(const std::string& path, const StepVisitor& on_step) {
  return parse_report_stream(path, nullptr, on_step, false).error;
}

void stream_report_text(const nlohmann::json& doc, std::size_t steps,
                        const StepAppender& append_step,
                        const std::function<void(const std::string&)>& write) {
  if (!doc.is_object()) {
    write(doc.dump(2, ' ', false, kReplace));
    return;
  }
  std::string chunk;
  chunk.reserve(AtomicFile::kBufferBytes);
  const auto emit = [&](bool force) {
    if (!force && chunk.size() < AtomicFile::kBufferBytes / 2) return;
    write(chunk);
    chunk.clear();
  };
  chunk += '{';
  bool first = true;
  for (auto it = doc.begin(); it != doc.end(); ++it) {
    chunk += first ? "\n  " : ",\n  ";
    first = false;
    chunk += nlohmann::json(it.key()).dump(-1, ' ', false, kReplace);
    chunk += ": ";
    if (it.key() == rk::steps && steps > 0) {
      chunk += '[';
      for (std::size_t i = 0; i < steps; ++i) {
        chunk += i == 0 ? "\n    " : ",\n    ";
        append_step(i, chunk);
        emit(false);
      }
      chunk += "\n  ]";
    } else {
      chunk += dump_report_value(it.value());
    }
    emit(false);
  }
  chunk += "\n}\n";
  emit(true);
}

}  // namespace trainmeter::detail
