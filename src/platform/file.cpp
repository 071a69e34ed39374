#include "platform/file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace trainmeter::detail {

KeptOpenFile::~KeptOpenFile() {
  if (fd_ >= 0) ::close(fd_);
}

KeptOpenFile::KeptOpenFile(KeptOpenFile&& other) noexcept
    : fd_(other.fd_), open_errno_(other.open_errno_), path_(std::move(other.path_)) {
  other.fd_ = -1;
}

KeptOpenFile& KeptOpenFile::operator=(KeptOpenFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    open_errno_ = other.open_errno_;
    path_ = std::move(other.path_);
    other.fd_ = -1;
  }
  return *this;
}

int KeptOpenFile::open(const std::string& path) noexcept {
  if (fd_ >= 0) ::close(fd_);
  try {
    path_ = path;
  } catch (...) {
  }
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  open_errno_ = fd_ < 0 ? errno : 0;
  return open_errno_;
}

long KeptOpenFile::read(char* buf, std::size_t size) const noexcept {
  if (fd_ < 0) return -(open_errno_ != 0 ? open_errno_ : EBADF);
  if (size == 0) return 0;
  std::size_t total = 0;
  while (total + 1 < size) {
    const ssize_t n = ::pread(fd_, buf + total, size - 1 - total, static_cast<off_t>(total));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
  }
  buf[total] = '\0';
  return static_cast<long>(total);
}

int write_all(int fd, const char* data, std::size_t size, std::size_t* written) noexcept {
  std::size_t done = 0;
  int err = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      err = errno;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (written != nullptr) *written = done;
  return err;
}

std::optional<std::int64_t> parse_int64(const char* begin, const char* end) noexcept {
  auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (begin < end && is_space(*begin)) ++begin;
  while (end > begin && is_space(end[-1])) --end;
  if (begin == end) return std::nullopt;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(begin, end, v);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return v;
}

std::optional<std::int64_t> KeptOpenFile::read_int64(int* err) const noexcept {
  char buf[64];
  const long n = read(buf, sizeof buf);
  if (n < 0) {
    if (err) *err = static_cast<int>(-n);
    return std::nullopt;
  }
  auto v = parse_int64(buf, buf + n);
  if (!v && err) *err = EINVAL;
  return v;
}

std::optional<std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                          int* err) noexcept {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return std::nullopt;
  }
  std::string out;
  try {
    char buf[4096];
    while (out.size() < max_bytes) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (err) *err = errno;
        ::close(fd);
        return std::nullopt;
      }
      if (n == 0) break;
      out.append(buf, static_cast<std::size_t>(n));
    }
  } catch (...) {
    ::close(fd);
    if (err) *err = ENOMEM;
    return std::nullopt;
  }
  ::close(fd);
  if (out.size() > max_bytes) out.resize(max_bytes);
  return out;
}

std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")";
}

}  // namespace trainmeter::detail
