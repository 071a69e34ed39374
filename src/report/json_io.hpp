// Reading and writing JSON files: atomic writes (temp file + rename) and reads whose errors name
// the file, line and column.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/step_source.hpp"

namespace trainmeter::detail {

/// Serialises a report: top-level keys one per line, pretty-printed, except "steps", written one
/// step object per line (readable and ~3x smaller than pretty-printing every step). Invalid UTF-8
/// in strings is replaced (U+FFFD), non-finite numbers become null.
std::string dump_report(const nlohmann::json& report);
/// One top-level value of a report as dump_report() writes it (pretty-printed, indented 2).
std::string dump_report_value(const nlohmann::json& value);

/// Writes `text` to `path` via a temporary file in the same directory, fsync and rename(), so a
/// reader sees the old file or the new one, never half of one. Returns "" or an error message.
std::string write_file_atomic(const std::string& path, const std::string& text) noexcept;

/// A file written through a temporary beside it and renamed into place by commit(): a reader
/// sees the old file or the whole new one. Writes are buffered (64 KiB); an error stops all
/// further writing, removes the temporary and is kept in error(). Destroyed uncommitted, the
/// temporary is removed.
class AtomicFile {
 public:
  static constexpr std::size_t kBufferBytes = 64 * 1024;
  AtomicFile() = default;
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();

  bool open(const std::string& path) noexcept;
  /// Appends through the buffer; false once an error happened.
  bool append(std::string_view text) noexcept {
    if (fd_ < 0) return false;
    if (buffer_.size() + text.size() > kBufferBytes && !flush()) return false;
    if (text.size() >= kBufferBytes) return write_out(text.data(), text.size());
    buffer_.append(text);
    return true;
  }
  bool commit() noexcept;
  const std::string& error() const noexcept { return error_; }

 private:
  friend std::string write_file_atomic(const std::string&, const std::string&) noexcept;
  bool flush() noexcept;
  bool write_out(const char* data, std::size_t size) noexcept;
  bool fail(std::string error) noexcept;

  std::string path_, tmp_, error_;
  std::string buffer_;
  int fd_ = -1;
};

struct JsonLoad {
  std::optional<nlohmann::json> value;
  std::string error;  ///< "<path>: line L, column C: <what>" when value is empty
};
/// Reads and parses a JSON file (at most `max_bytes`).
JsonLoad load_json_file(const std::string& path, std::size_t max_bytes = std::size_t(2) << 30);
/// Parses text; errors are "line L, column C: <what>".
JsonLoad parse_json_text(const std::string& text);

/// Loads a report's sections without the entries of its top-level steps[] (the array stays, empty;
/// `steps_skipped` gets their count): parsed from the file as a stream, one step in memory at a
/// time, so a report of any length costs its sections only. Errors name the byte offset.
/// `on_step`, when given, sees every element of steps[] as it is parsed (an exception it throws
/// ends the load with that message as the error).
JsonLoad load_report_sections(const std::string& path, std::size_t* steps_skipped = nullptr,
                              const StepVisitor& on_step = {});

/// Every element of a report's steps[], in order, one in memory at a time, without keeping the
/// sections: "" or the load's error. For a second pass over a file whose sections are loaded.
std::string for_each_step(const std::string& path, const StepVisitor& on_step);

/// dump_report(doc)'s text handed to `write` in pieces of about 32 KiB, with the `steps` elements
/// of steps[] made one at a time by `append_step(index, text)` (which appends the step's compact
/// JSON to `text`): doc["steps"] itself is not read when `steps` > 0. For writers that must not
/// hold a document of every step: the session's builder, recover and merge.
using StepAppender = std::function<void(std::size_t index, std::string& text)>;
void stream_report_text(const nlohmann::json& doc, std::size_t steps,
                        const StepAppender& append_step,
                        const std::function<void(const std::string&)>& write);

}  // namespace trainmeter::detail
