// Powercap (RAPL) file contents through the real path: a fake sysfs tree whose `name`,
// `max_energy_range_uj` and successive `energy_uj` contents come from the input (garbage, huge,
// negative, empty, no newline), probed by discover_rapl and sampled by the energy component.
// Also checks parse_int64 against an independent reading of the same text.
#include <sys/stat.h>

#include <cmath>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/component.hpp"
#include "energy/energy.hpp"
#include "energy/rapl.hpp"
#include "fuzz_support.hpp"
#include "fuzz_support_schema.hpp"
#include "platform/file.hpp"
#include "report/json_io.hpp"

using namespace trainmeter;

namespace {

// The contract of parse_int64, written independently: blanks (space, tab, CR, LF) around one
// optionally negative run of decimal digits that fits in int64.
std::optional<std::int64_t> reference_parse(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  bool negative = false;
  if (!s.empty() && s.front() == '-') {
    negative = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  __int128 v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
    if (v > (__int128(1) << 63)) return std::nullopt;
  }
  if (negative) v = -v;
  if (v > INT64_MAX || v < INT64_MIN) return std::nullopt;
  return static_cast<std::int64_t>(v);
}

}  // namespace

extern "C" int TM_FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  const std::string_view first = rest.substr(0, rest.find('\x1f'));
  const auto got = detail::parse_int64(first.data(), first.data() + first.size());
  const auto want = reference_parse(first);
  fuzz::check(got == want, "parse_int64 disagrees with the reference", std::string(first));

  const std::string root = fuzz::scratch_dir() + "/powercap";
  const std::string zone = root + "/intel-rapl:0";
  ::mkdir(root.c_str(), 0755);
  ::mkdir(zone.c_str(), 0755);
  // Fields: name, max_energy_range_uj, then successive energy_uj contents (at most 32).
  fuzz::write_scratch("powercap/intel-rapl:0/name", fuzz::next_field(rest));
  fuzz::write_scratch("powercap/intel-rapl:0/max_energy_range_uj", fuzz::next_field(rest));
  fuzz::write_scratch("powercap/intel-rapl:0/energy_uj", fuzz::next_field(rest));

  {
    detail::RaplDiscovery d = detail::discover_rapl(root, false);
    for (const auto& s : d.tried)
      fuzz::check(!s.reason.empty(), "a source status without a reason");
  }

  detail::RunContext ctx;
  ctx.config.powercap_root = root;
  ctx.config.energy_sources = {"rapl"};
  ctx.config.sample_interval_ms = 100;
  ctx.start_ns = 1'000'000'000;
  ctx.phase_name = [](std::uint16_t) { return std::string("train"); };
  ctx.steps_collected = [] { return std::uint64_t(0); };
  std::unique_ptr<detail::Component> energy;
  try {
    energy = detail::make_energy_component(ctx);
  } catch (const Error&) {
    fuzz::fail("the energy component rejected a valid configuration");
  }
  std::int64_t now = ctx.start_ns;
  energy->start(now);
  int samples = 0;
  while (!rest.empty() && samples < 32) {
    fuzz::write_scratch("powercap/intel-rapl:0/energy_uj", fuzz::next_field(rest));
    now += 100'000'000;
    energy->sample(now);
    ++samples;
  }
  now += 100'000'000;
  energy->sample(now);
  energy->stop(now);
  nlohmann::json report = {{"steps", nlohmann::json::array()},
                           {"phases", nlohmann::json::object()},
                           {"host", {{"gpus", nlohmann::json::array()}}},
                           {"memory", nullptr},
                           {"energy", nullptr}};
  energy->contribute(report);
  // As written to the file: dump_report turns non-finite numbers into null.
  report = nlohmann::json::parse(detail::dump_report(report));
  const auto errors = fuzz::section_errors(report["energy"], "energy");
  fuzz::check(errors.empty(), "energy section violates the schema",
              errors.empty() ? "" : errors[0] + "\n" + report["energy"]["components"].dump());
  // Whatever the counter did, no interval above the plausibility limit (5000 W) is summed.
  const double elapsed_s = 1e-9 * double(now - ctx.start_ns);
  for (const auto& c : report["energy"]["components"]) {
    if (!c.contains("energy_j") || !c["energy_j"].is_number()) continue;
    const double j = c["energy_j"].get<double>();
    if (c.value("provenance", "") != "measured") continue;
    fuzz::check(std::isfinite(j) && j >= 0 && j <= 5000.0 * elapsed_s * (1 + 1e-9),
                "measured energy outside [0, 5000 W x elapsed]", std::to_string(j));
  }
  return 0;
}
