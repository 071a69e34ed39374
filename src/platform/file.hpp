// Small, allocation-light readers for /proc and sysfs files. Files that are sampled repeatedly are
// opened once and re-read with pread() (4-11x cheaper than open+read+close, see
// docs/performance.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace trainmeter::detail {

/// A file kept open for repeated reads from offset 0.
class KeptOpenFile {
 public:
  KeptOpenFile() = default;
  explicit KeptOpenFile(const std::string& path) noexcept { open(path); }
  ~KeptOpenFile();
  KeptOpenFile(KeptOpenFile&& other) noexcept;
  KeptOpenFile& operator=(KeptOpenFile&& other) noexcept;
  KeptOpenFile(const KeptOpenFile&) = delete;
  KeptOpenFile& operator=(const KeptOpenFile&) = delete;

  /// Opens read-only; returns 0 or the errno.
  int open(const std::string& path) noexcept;
  bool is_open() const noexcept { return fd_ >= 0; }
  int open_errno() const noexcept { return open_errno_; }
  const std::string& path() const noexcept { return path_; }

  /// Reads up to size-1 bytes from offset 0 and NUL-terminates. Returns bytes read, or -errno.
  long read(char* buf, std::size_t size) const noexcept;
  /// Reads the file as one decimal integer (surrounding whitespace allowed). nullopt on I/O error
  /// or when the content is not exactly one integer in range; `err` gets errno or EINVAL.
  std::optional<std::int64_t> read_int64(int* err = nullptr) const noexcept;

 private:
  int fd_ = -1;
  int open_errno_ = 0;
  std::string path_;
};

/// Whole file as text (small files only; at most `max_bytes`). nullopt when it cannot be read;
/// `err` gets errno.
std::optional<std::string> read_text_file(const std::string& path, std::size_t max_bytes = 1 << 20,
                                          int* err = nullptr) noexcept;

/// Parses one decimal integer with optional surrounding whitespace. nullopt otherwise.
std::optional<std::int64_t> parse_int64(const char* begin, const char* end) noexcept;

/// Writes all `size` bytes to `fd` (retrying short writes and EINTR). 0, or the errno of the
/// write that failed; `written` (optional) gets the bytes that reached the file either way.
int write_all(int fd, const char* data, std::size_t size, std::size_t* written = nullptr) noexcept;

/// "text (errno N: strerror)"
std::string errno_text(int err);

}  // namespace trainmeter::detail
