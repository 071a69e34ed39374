// Shared by the libFuzzer harnesses. Each harness defines TM_FUZZ_ENTRY, which is
// LLVMFuzzerTestOneInput in a fuzzer build and a uniquely named function in the corpus-replay
// test (tests/fuzz/replay_main.cpp), so the same code runs under libFuzzer and under CTest.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#ifndef TM_FUZZ_ENTRY
#define TM_FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

namespace trainmeter::fuzz {

/// A broken invariant: print it and abort, which libFuzzer records as a crash with its input.
[[noreturn]] inline void fail(const char* what, const std::string& detail = {}) {
  std::fprintf(stderr, "fuzz invariant broken: %s %s\n", what, detail.c_str());
  std::abort();
}
inline void check(bool ok, const char* what, const std::string& detail = {}) {
  if (!ok) fail(what, detail);
}

/// A scratch directory private to this process (created once, reused by every input).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/trainmeter-fuzz-XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    if (made == nullptr) fail("mkdtemp failed");
    return std::string(made);
  }();
  return dir;
}

/// Writes bytes to `name` in the scratch directory; returns the path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) fail("cannot write scratch file", path);
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size())
    fail("short write", path);
  std::fclose(f);
  return path;
}

/// Splits the input at the first occurrence of `sep`, for harnesses that take several fields.
inline std::string_view next_field(std::string_view& rest, char sep = '\x1f') {
  const auto at = rest.find(sep);
  std::string_view field = rest.substr(0, at);
  rest = at == std::string_view::npos ? std::string_view() : rest.substr(at + 1);
  return field;
}

}  // namespace trainmeter::fuzz
