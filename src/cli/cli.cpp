#include "cli/cli.hpp"

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "report/json_io.hpp"
#include "report/schema.hpp"
#include "trainmeter/config.hpp"
#include "trainmeter/version.hpp"

namespace trainmeter::cli {

Args& Args::option(const std::string& name, const std::string& help, const std::string& alias) {
  specs_.push_back(Spec{name, alias, help, true});
  return *this;
}

Args& Args::flag(const std::string& name, const std::string& help) {
  specs_.push_back(Spec{name, "", help, false});
  return *this;
}

std::string Args::help_text() const {
  std::string out = fmt::format("usage: trainmeter {} {}\n", command_, usage_);
  if (!specs_.empty()) out += "\noptions:\n";
  for (const Spec& s : specs_) {
    std::string names = s.alias.empty() ? s.name : s.alias + ", " + s.name;
    if (s.takes_value) names += " VALUE";
    out += fmt::format("  {:<28} {}\n", names, s.help);
  }
  out += fmt::format("  {:<28} {}\n", "-h, --help", "show this help");
  return out;
}

bool Args::parse(const std::vector<std::string>& args, std::size_t min_positional,
                 std::size_t max_positional) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      fmt::print("{}", help_text());
      return false;
    }
    if (a.size() > 1 && a[0] == '-' &&
        !(a.size() > 1 && (std::isdigit(static_cast<unsigned char>(a[1])) || a[1] == '.'))) {
      std::string name = a, value;
      bool has_inline = false;
      if (const auto eq = a.find('='); eq != std::string::npos && a.rfind("--", 0) == 0) {
        name = a.substr(0, eq);
        value = a.substr(eq + 1);
        has_inline = true;
      }
      const Spec* spec = nullptr;
      for (const Spec& s : specs_)
        if (s.name == name || (!s.alias.empty() && s.alias == name)) spec = &s;
      if (spec == nullptr)
        throw CliError{
            fmt::format("unknown option '{}' (see trainmeter {} --help)", name, command_)};
      if (spec->takes_value) {
        if (!has_inline) {
          if (i + 1 >= args.size())
            throw CliError{fmt::format("option {} needs a value", spec->name)};
          value = args[++i];
        }
        values_[spec->name] = value;
      } else {
        if (has_inline) throw CliError{fmt::format("option {} takes no value", spec->name)};
        values_[spec->name] = "1";
      }
      continue;
    }
    positional_.push_back(a);
  }
  if (positional_.size() < min_positional || positional_.size() > max_positional) {
    throw CliError{fmt::format("expected {} argument{}; usage: trainmeter {} {}",
                               min_positional == max_positional
                                   ? std::to_string(min_positional)
                                   : fmt::format("{} to {}", min_positional, max_positional),
                               max_positional == 1 ? "" : "s", command_, usage_)};
  }
  return true;
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  const auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

std::optional<double> Args::number(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  char* end = nullptr;
  const double x = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || end != it->second.c_str() + it->second.size() || !std::isfinite(x))
    throw CliError{fmt::format("{} expects a number, got '{}'", name, it->second)};
  return x;
}

std::optional<long long> Args::integer(const std::string& name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(it->second.c_str(), &end, 10);
  if (it->second.empty() || errno != 0 || end != it->second.c_str() + it->second.size())
    throw CliError{fmt::format("{} expects an integer, got '{}'", name, it->second)};
  return x;
}

std::string without_prefix(const std::string& message) {
  const std::string prefix = "trainmeter: ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

std::optional<double> Args::number_in(const std::string& name, const char* key,
                                      std::optional<double> min) const {
  const auto x = number(name);
  if (!x) return x;
  const ConfigKey& k = config_key(key);
  const double lo = min.value_or(k.min_value);
  if (*x < lo || *x > k.max_value)
    throw CliError{fmt::format("{} {}: accepted: a number from {} to {} (the bounds of {})", name,
                               values_.at(name), lo, k.max_value, env_name(key))};
  return x;
}

nlohmann::json load_report(const std::string& path, bool with_steps,
                           const std::function<void(const nlohmann::json&, std::size_t)>& on_step) {
  auto loaded = with_steps ? detail::load_json_file(path)
                           : detail::load_report_sections(path, nullptr, on_step);
  if (!loaded.value) throw CliError{loaded.error};
  nlohmann::json& doc = *loaded.value;
  if (!doc.is_object())
    throw CliError{fmt::format("{}: not a trainmeter report (top level is not an object)", path)};
  const auto v = doc.find(rk::schema_version);
  if (v == doc.end() || !v->is_number_integer())
    throw CliError{fmt::format("{}: not a trainmeter report (no integer schema_version)", path)};
  const auto version = v->get<long long>();
  if (version > kReportSchemaVersion)
    throw CliError{
        fmt::format("{}: schema_version {} is newer than this trainmeter supports ({}); "
                    "upgrade trainmeter",
                    path, version, kReportSchemaVersion)};
  if (version < 1) throw CliError{fmt::format("{}: invalid schema_version {}", path, version)};
  return std::move(doc);
}

nlohmann::json load_valid_report(const std::string& path, bool with_steps) {
  nlohmann::json report = load_report(path, with_steps);
  const auto errors = detail::validate_schema(report, detail::report_schema(), 1);
  if (!errors.empty())
    throw CliError{
        fmt::format("{}: not a valid report: {} (see trainmeter validate)", path, errors[0])};
  return report;
}

void refuse_output_over_input(const std::string& output, const std::vector<std::string>& inputs) {
  struct stat out {};
  if (output.empty() || output == "-" || ::stat(output.c_str(), &out) != 0) return;
  for (const std::string& input : inputs) {
    struct stat in {};
    if (::stat(input.c_str(), &in) != 0) continue;
    if (in.st_dev == out.st_dev && in.st_ino == out.st_ino)
      throw CliError{
          fmt::format("output {} is the input {} (same file); refusing to overwrite an "
                      "input: choose another -o path",
                      output, input)};
  }
}

}  // namespace trainmeter::cli
