// Runs every fuzz harness over its seed corpus and kept crash inputs without libFuzzer, so a
// plain (GCC, sanitizer or not) build replays them under CTest on every change:
//   fuzz_replay <harness> <file or directory>...
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int fuzz_report_json(const std::uint8_t*, std::size_t);
extern "C" int fuzz_stream_recover(const std::uint8_t*, std::size_t);
extern "C" int fuzz_config(const std::uint8_t*, std::size_t);
extern "C" int fuzz_intensity_csv(const std::uint8_t*, std::size_t);
extern "C" int fuzz_powercap(const std::uint8_t*, std::size_t);
extern "C" int fuzz_nvml(const std::uint8_t*, std::size_t);

namespace {

struct Harness {
  const char* name;
  int (*run)(const std::uint8_t*, std::size_t);
};
const Harness kHarnesses[] = {
    {"report_json", fuzz_report_json}, {"stream_recover", fuzz_stream_recover},
    {"config", fuzz_config},           {"intensity_csv", fuzz_intensity_csv},
    {"powercap", fuzz_powercap},       {"nvml", fuzz_nvml},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: fuzz_replay <harness> <file or directory>...\n");
    return 2;
  }
  const Harness* h = nullptr;
  for (const Harness& k : kHarnesses)
    if (std::strcmp(k.name, argv[1]) == 0) h = &k;
  if (h == nullptr) {
    std::fprintf(stderr, "fuzz_replay: unknown harness '%s'\n", argv[1]);
    return 2;
  }
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 2; i < argc; ++i) {
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (fs::exists(p)) {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "fuzz_replay: no inputs for %s\n", h->name);
    return 1;
  }
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    h->run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  }
  std::printf("fuzz_replay %s: %zu inputs replayed, no invariant broken\n", h->name, files.size());
  return 0;
}
