// Configuration text from every way a user gives it: a configuration file, each key's
// environment variable (and torchrun's RANK/WORLD_SIZE...), and Config::set for each key. Only
// trainmeter::Error may come out (any other exception aborts), and a value that was accepted
// round-trips through get().
#include <stdlib.h>

#include <string>

#include "fuzz_support.hpp"
#include "trainmeter/config.hpp"

using namespace trainmeter;

namespace {

void set_every_key(const std::string& value) {
  for (const ConfigKey& key : config_keys()) {
    Config c;
    try {
      c.set(key.name, value);
    } catch (const Error&) {
      continue;
    }
    // Accepted: its textual form is accepted again and is a fixed point.
    const std::string text = c.get(key.name);
    Config d;
    try {
      d.set(key.name, text);
    } catch (const Error& e) {
      fuzz::fail("get() output rejected by set()", std::string(key.name) + ": " + e.what());
    }
    fuzz::check(d.get(key.name) == text, "get/set not a fixed point", key.name);
    try {
      c.validate();
    } catch (const Error&) {
    }
  }
}

}  // namespace

extern "C" int TM_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  // The whole input as a configuration file.
  const std::string path = fuzz::write_scratch("config.conf", input);
  try {
    Config c = Config::from_file(path);
    c.validate();
  } catch (const Error&) {
  }
  // The first line as a value for every key.
  std::string value(input.substr(0, input.find('\n')));
  set_every_key(value);
  // The same value through the environment, for one key chosen by the first byte (environment
  // strings end at a NUL).
  const std::string env_value = value.substr(0, value.find('\0'));
  const auto& keys = config_keys();
  static const char* const kTorchrun[] = {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"};
  const std::size_t pick = size > 0 ? data[0] % (keys.size() + 4) : 0;
  const std::string var =
      pick < keys.size() ? env_name(keys[pick].name) : kTorchrun[pick - keys.size()];
  ::setenv(var.c_str(), env_value.c_str(), 1);
  try {
    Config::from_env().validate();
  } catch (const Error&) {
  }
  ::unsetenv(var.c_str());
  return 0;
}
