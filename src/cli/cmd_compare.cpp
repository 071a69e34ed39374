#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "cli/cli.hpp"
#include "export/compare.hpp"

namespace trainmeter::cli {

namespace {

// The parser reads every argument that starts with '-' as an option, so the side separator "--"
// is swapped for a marker no command-line argument can be (a NUL byte) before parsing, and the
// positionals are split on it afterwards.
const std::string kSideMarker(1, '\0');

}  // namespace

int cmd_compare(const std::vector<std::string>& args) {
  Args a("compare",
         "A.json B.json | A1.json [A2.json ...] -- B1.json [B2.json ...] [--json | --markdown] "
         "[--phase NAME] [--fail-if-slower PCT] [--seed N] [--resamples N]");
  a.flag("--json", "print the comparison as JSON");
  a.flag("--markdown", "print the comparison as Markdown (a pull-request comment)");
  a.option("--phase", "phase to compare (default: train, else the phase with most steps)");
  a.option("--fail-if-slower",
           "exit 1 when B's step time is more than PCT percent above A's and the "
           "confidence interval lies entirely above 1 (a significant slowdown)");
  a.option("--resamples", "bootstrap resamples (default 10000)");
  a.option("--seed", "bootstrap seed (default 1918986606): the same seed, the same interval");
  std::vector<std::string> marked = args;
  std::size_t separators = 0;
  for (std::string& s : marked)
    if (s == "--") {
      s = kSideMarker;
      ++separators;
    }
  if (separators > 1) throw CliError{"'--' separates the two sides; give it once"};
  if (!a.parse(marked, 0, static_cast<std::size_t>(-1))) return kExitOk;
  std::vector<std::string> paths[2];
  if (separators == 0) {
    if (a.positional().size() != 2)
      throw CliError{fmt::format(
          "expected A.json B.json, or several reports per side as A1.json A2.json -- B1.json "
          "B2.json; got {} reports and no '--'",
          a.positional().size())};
    paths[0] = {a.positional()[0]};
    paths[1] = {a.positional()[1]};
  } else {
    int side = 0;
    for (const std::string& p : a.positional())
      if (p == kSideMarker)
        side = 1;
      else
        paths[side].push_back(p);
    if (paths[0].empty() || paths[1].empty())
      throw CliError{"each side of '--' needs at least one report"};
  }
  if (a.has("--json") && a.has("--markdown"))
    throw CliError{"--json and --markdown: choose one output format"};

  std::vector<nlohmann::json> reports[2];
  for (int i = 0; i < 2; ++i)
    for (const std::string& path : paths[i]) reports[i].push_back(load_valid_report(path));
  detail::CompareOptions options;
  options.phase = a.get("--phase");
  if (auto n = a.integer("--resamples")) {
    if (*n < 100 || *n > 1000000)
      throw CliError{fmt::format("--resamples: {} is out of range; accepted: 100 to 1000000", *n)};
    options.resamples = static_cast<int>(*n);
  }
  if (auto seed = a.integer("--seed")) {
    if (*seed < 0)
      throw CliError{fmt::format("--seed: {} is negative; accepted: an integer >= 0", *seed)};
    options.seed = static_cast<std::uint64_t>(*seed);
  }
  const std::optional<double> pct = a.number("--fail-if-slower");
  if (pct && *pct < 0)
    throw CliError{
        fmt::format("--fail-if-slower: {} is negative; accepted: a percentage >= 0", *pct)};
  if (!options.phase.empty())
    for (int i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < paths[i].size(); ++j)
        if (!reports[i][j][rk::phases].contains(options.phase))
          throw CliError{fmt::format("{}: no phase '{}'", paths[i][j], options.phase)};
  nlohmann::json c = detail::compare_runs(reports[0], reports[1], options);
  c[rk::inputs] = {{"a", paths[0]}, {"b", paths[1]}};

  int code = kExitOk;
  if (pct) {
    const std::optional<bool> failed = detail::apply_slower_gate(c, *pct);
    if (!failed)
      throw CliError{fmt::format("--fail-if-slower: no step time for phase '{}' in both sides",
                                 c.value(rk::phase, std::string()))};
    if (*failed) code = kExitFailed;
  }
  if (a.has("--json"))
    fmt::print("{}\n", c.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
  else if (a.has("--markdown"))
    fmt::print("{}", detail::render_comparison_markdown(c));
  else
    fmt::print("{}", detail::render_comparison(c));
  return code;
}

}  // namespace trainmeter::cli
