#include "report/summary.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/report_keys.hpp"
#include "report/findings.hpp"
#include "report/json_io.hpp"
#include "report/units.hpp"
#include "trainmeter/report.hpp"

namespace trainmeter {

namespace detail {

namespace {
using nlohmann::json;

const json* child(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  const auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::optional<double> num(const json& j, const char* key) {
  const json* c = child(j, key);
  return c != nullptr && c->is_number() ? std::optional<double>(c->get<double>()) : std::nullopt;
}

std::string str(const json& j, const char* key, const char* fallback = "n/a") {
  const json* c = child(j, key);
  return c != nullptr && c->is_string() ? c->get<std::string>() : fallback;
}
}  // namespace

static json opt_json(std::optional<double> v) {
  return v ? json(*v) : json(nullptr);
}

json ranks_view(const json& report) {
  const json* ranks = child(report, rk::ranks);
  if (ranks == nullptr || !ranks->is_object()) return nullptr;
  std::string phase;
  if (const json* ps = child(report, rk::phases); ps && ps->is_object() && !ps->empty())
    phase = ps->contains("train") ? "train" : ps->begin().key();
  json per_rank = json::array();
  if (const json* pr = child(*ranks, rk::per_rank); pr && pr->is_array())
    for (const json& r : *pr) {
      const json* st = nullptr;
      if (const json* ps = child(r, rk::phases); ps && child(*ps, phase.c_str()))
        st = child((*ps)[phase], rk::step_time_ns);
      auto stat = [&](const char* k) { return st ? opt_json(num(*st, k)) : json(nullptr); };
      per_rank.push_back({{rk::rank, r.value(rk::rank, json(nullptr))},
                          {rk::hostname, str(r, rk::hostname)},
                          {rk::p50_ns, stat(rk::p50)},
                          {"mean_ns", stat(rk::mean)},
                          {rk::max_ns, stat(rk::max)},
                          {rk::slowest_steps, r.value(rk::slowest_steps, json(nullptr))},
                          {rk::energy_j, opt_json(num(r, rk::energy_j))}});
    }
  json stragglers = json::array();
  const double compared = num(*ranks, rk::compared_steps).value_or(0);
  if (const json* counts = child(*ranks, rk::slowest_rank_counts); counts && counts->is_object()) {
    std::vector<std::pair<std::int64_t, int>> rows;
    for (auto it = counts->begin(); it != counts->end(); ++it)
      if (it->is_number_integer()) rows.emplace_back(it->get<std::int64_t>(), std::stoi(it.key()));
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (const auto& [n, r] : rows)
      stragglers.push_back({{rk::rank, r},
                            {rk::slowest_steps, n},
                            {"share", compared > 0 ? json(double(n) / compared) : json(nullptr)}});
  }
  json per_host = json::array();
  if (const json* hosts =
          child(report, rk::energy) ? child(report[rk::energy], "per_host") : nullptr;
      hosts && hosts->is_object())
    for (auto it = hosts->begin(); it != hosts->end(); ++it)
      per_host.push_back({{rk::host, it.key()},
                          {rk::ranks, it->value(rk::ranks, json::array())},
                          {rk::energy_j, opt_json(num(*it, rk::energy_j))},
                          {rk::machine_energy_j, opt_json(num(*it, rk::machine_energy_j))}});
  return {{rk::phase, phase},
          {rk::per_rank, std::move(per_rank)},
          {"stragglers", std::move(stragglers)},
          {"per_host", std::move(per_host)}};
}

std::string render_summary(const json& report) {
  // Findings first: what to fix comes before the figures. A report written before findings
  // existed gets them computed now (the same pure function the session runs at finish).
  std::string out = render_findings(stored_or_computed_findings(report));
  out += "\n";
  const json empty = json::object();
  const json& run = child(report, rk::run) ? report[rk::run] : empty;
  out +=
      fmt::format("run      {} ({}), {}, {}", str(run, rk::name), str(run, rk::id),
                  str(run, rk::status), format_duration_s(num(run, rk::duration_s).value_or(NAN)));
  if (auto ws = num(run, rk::world_size); ws && *ws > 1)
    out += fmt::format(", rank {} of {}", num(run, rk::rank).value_or(0), *ws);
  out += "\n";
  const json& host = child(report, rk::host) ? report[rk::host] : empty;
  out += fmt::format(
      "host     {}, {}, {} logical CPUs\n", str(host, rk::hostname), str(host, rk::cpu_model),
      child(host, rk::logical_cpus) ? fmt::format("{}", host[rk::logical_cpus].get<long long>())
                                    : "n/a");
  if (const json* cpu = child(run, rk::cpu_time_s)) {
    const auto user = num(*cpu, rk::user), sys = num(*cpu, rk::system);
    const auto wall = num(run, rk::duration_s);
    out += fmt::format("cpu      process CPU time {} user, {} system",
                       format_duration_s(user.value_or(NAN)), format_duration_s(sys.value_or(NAN)));
    if (user && sys && wall && *wall > 0)
      out += fmt::format(" ({:.2f} CPUs busy on average)", (*user + *sys) / *wall);
    out += "\n";
  }
  if (const json* phases = child(report, rk::phases); phases && phases->is_object()) {
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      const json& p = it.value();
      out += fmt::format("phase    {}: {} steps ({} warm-up)", it.key(),
                         num(p, rk::steps).value_or(0), num(p, rk::warmup_steps).value_or(0));
      if (const json* st = child(p, rk::step_time_ns)) {
        out += fmt::format("; step p50 {}  p90 {}  p99 {}  mean {} +- {}",
                           format_duration_ns(num(*st, rk::p50).value_or(NAN)),
                           format_duration_ns(num(*st, rk::p90).value_or(NAN)),
                           format_duration_ns(num(*st, rk::p99).value_or(NAN)),
                           format_duration_ns(num(*st, rk::mean).value_or(NAN)),
                           format_duration_ns(num(*st, rk::stddev).value_or(NAN)));
      }
      if (auto sps = num(p, rk::samples_per_s)) out += fmt::format("; {:.1f} samples/s", *sps);
      if (auto tps = num(p, rk::tokens_per_s)) out += fmt::format("; {:.1f} tokens/s", *tps);
      out += "\n";
    }
  }
  try {
    const json epochs = epoch_view(report);
    for (const json& e : epochs) {
      const json& loss = e["loss_last"];
      const json& energy = e[rk::energy_j];
      out += fmt::format(
          "epoch    {} ({}): {} steps in {}, {}; loss {}; energy {}\n", e["epoch"].dump(),
          e[rk::phase].get<std::string>(), e[rk::steps].dump(),
          format_duration_s(e["span_s"].get<double>()),
          e[rk::samples_per_s].is_number()
              ? fmt::format("{:.1f} samples/s", e[rk::samples_per_s].get<double>())
              : std::string("n/a samples/s"),
          loss.is_number() ? fmt::format("{:.4g}", loss.get<double>()) : std::string("n/a"),
          energy.is_number() ? format_energy_j(energy.get<double>()) : std::string("n/a"));
    }
  } catch (const std::exception&) {
    // The epoch view is a convenience; a report it cannot read still gets its summary.
  }
  if (const json* mem = child(report, rk::memory)) {
    // VmHWM when the kernel gave it; else the highest sampled RSS (a recovered stream's).
    if (const auto hwm = num(*mem, rk::peak_rss_bytes))
      out += fmt::format("memory   peak RSS {}", format_bytes(*hwm));
    else if (const auto sampled = num(*mem, rk::sampled_peak_rss_bytes))
      out += fmt::format("memory   peak RSS {} (sampled)", format_bytes(*sampled));
    else
      out += "memory   peak RSS n/a";
    if (const json* pt = child(*mem, rk::peak_tensor_bytes); pt && pt->is_object())
      for (auto it = pt->begin(); it != pt->end(); ++it)
        if (it->is_number())
          out += fmt::format("; peak tensors {} {}", it.key(), format_bytes(it->get<double>()));
    out += "\n";
  } else {
    out += "memory   n/a\n";
  }
  if (const json* model = child(report, rk::model)) {
    out +=
        fmt::format("model    {:.0f} parameters, {}\n", num(*model, rk::parameters).value_or(NAN),
                    format_bytes(num(*model, rk::total_bytes).value_or(NAN)));
  }
  if (const json* energy = child(report, rk::energy)) {
    out += fmt::format("energy   {}", format_energy_j(num(*energy, rk::total_j).value_or(NAN)));
    if (const json* comps = child(*energy, rk::components); comps && comps->is_array())
      for (const json& c : *comps)
        out += fmt::format("; {} {} ({}, {})", str(c, rk::name),
                           format_energy_j(num(c, rk::energy_j).value_or(NAN)),
                           str(c, rk::provenance), str(c, rk::source));
    out += "\n";
  } else {
    out += "energy   not measured\n";
  }
  if (const json* carbon = child(report, rk::carbon)) {
    const auto kg = num(*carbon, rk::co2e_kg);
    out += fmt::format(
        "carbon   {} at {:.0f} g/kWh ({})\n", kg ? format_co2e_kg(*kg) : std::string("n/a CO2e"),
        num(*carbon, rk::intensity_g_per_kwh).value_or(NAN), str(*carbon, rk::intensity_source));
  }
  if (const json* cost = child(report, rk::cost)) {
    out += fmt::format("cost     {:.4f} {}\n", num(*cost, rk::total).value_or(NAN),
                       str(*cost, rk::currency));
  }
  if (const json view = ranks_view(report); view.is_object()) {
    auto ns = [](const json& v) {
      return v.is_number() ? format_duration_ns(v.get<double>()) : std::string("n/a");
    };
    auto joules = [](const json& v) {
      return v.is_number() ? format_energy_j(v.get<double>()) : std::string("n/a");
    };
    out += fmt::format("ranks    {} step time per rank (its own steps):\n",
                       view[rk::phase].get<std::string>());
    for (const json& r : view[rk::per_rank])
      out += fmt::format("  rank {:>4} {:<16} p50 {}  mean {}  max {}; slowest in {} step(s); {}\n",
                         r[rk::rank].dump(), r[rk::hostname].get<std::string>(), ns(r[rk::p50_ns]),
                         ns(r["mean_ns"]), ns(r[rk::max_ns]), r[rk::slowest_steps].dump(),
                         joules(r[rk::energy_j]));
    if (!view["stragglers"].empty()) {
      out += "stragglers (slowest rank per aligned step):\n";
      for (const json& s : view["stragglers"])
        out += fmt::format("  rank {:>4} slowest in {} step(s){}\n", s[rk::rank].dump(),
                           s[rk::slowest_steps].dump(),
                           s["share"].is_number()
                               ? fmt::format(" ({:.0f}%)", 100 * s["share"].get<double>())
                               : std::string());
    }
    for (const json& h : view["per_host"])
      out += fmt::format("host energy {}: ranks {}; attributed {}, machine {} (counted once)\n",
                         h[rk::host].get<std::string>(), h[rk::ranks].dump(),
                         joules(h[rk::energy_j]), joules(h[rk::machine_energy_j]));
  }
  if (const json* diags = child(report, rk::diagnostics);
      diags && diags->is_array() && !diags->empty()) {
    out += fmt::format("diagnostics ({}):\n", diags->size());
    for (const json& d : *diags)
      out += fmt::format("  {} {} x{}: {}\n", str(d, rk::source), str(d, rk::status),
                         num(d, rk::count).value_or(0), str(d, rk::message));
  }
  return out;
}

json summary_json(const json& report) {
  // The figures render_summary prints, under the report's own key names (a subset of it).
  auto pick = [](const json& from, std::initializer_list<const char*> keys) {
    json out = json::object();
    for (const char* k : keys) {
      const json* c = child(from, k);
      out[k] = c != nullptr ? *c : json(nullptr);
    }
    return out;
  };
  const json empty = json::object();
  auto section = [&](const char* key) -> const json& {
    const json* c = child(report, key);
    return c != nullptr ? *c : empty;
  };
  json out = json::object();
  out[rk::findings] = stored_or_computed_findings(report);
  try {
    out["epochs"] = epoch_view(report);
  } catch (const std::exception&) {
    out["epochs"] = json::array();
  }
  out[rk::run] = pick(section(rk::run),
                      {rk::name, rk::id, rk::status, rk::duration_s, rk::rank, rk::world_size});
  out[rk::run][rk::cpu_time_s] =
      child(section(rk::run), rk::cpu_time_s) ? section(rk::run)[rk::cpu_time_s] : json();
  out[rk::host] = pick(section(rk::host), {rk::hostname, rk::cpu_model, rk::logical_cpus});
  json phases = json::object();
  if (const json* ps = child(report, rk::phases); ps && ps->is_object())
    for (auto it = ps->begin(); it != ps->end(); ++it) {
      json p = pick(it.value(), {rk::steps, rk::warmup_steps, rk::samples_per_s, rk::tokens_per_s});
      const json* st = child(it.value(), rk::step_time_ns);
      p[rk::step_time_ns] =
          st != nullptr
              ? pick(*st, {rk::mean, rk::stddev, rk::min, rk::p50, rk::p90, rk::p99, rk::max})
              : json();
      phases[it.key()] = std::move(p);
    }
  out[rk::phases] = std::move(phases);
  json memory = pick(section(rk::memory),
                     {rk::peak_rss_bytes, rk::sampled_peak_rss_bytes, rk::peak_tensor_bytes});
  out[rk::memory] = std::move(memory);
  out[rk::model] = child(report, rk::model)
                       ? pick(section(rk::model), {rk::parameters, rk::total_bytes})
                       : json();
  if (child(report, rk::energy)) {
    json energy = pick(section(rk::energy), {rk::total_j, rk::pue, rk::total_kwh_with_pue});
    json comps = json::array();
    if (const json* cs = child(section(rk::energy), rk::components); cs && cs->is_array())
      for (const json& c : *cs)
        comps.push_back(pick(c, {rk::name, rk::energy_j, rk::provenance, rk::source}));
    energy[rk::components] = std::move(comps);
    out[rk::energy] = std::move(energy);
  } else {
    out[rk::energy] = nullptr;
  }
  out[rk::carbon] = child(report, rk::carbon)
                        ? pick(section(rk::carbon), {rk::co2e_kg, rk::intensity_g_per_kwh,
                                                     rk::intensity_source, rk::region})
                        : json();
  out[rk::cost] =
      child(report, rk::cost) ? pick(section(rk::cost), {rk::total, rk::currency}) : json();
  const json* diags = child(report, rk::diagnostics);
  out[rk::diagnostics] = diags != nullptr && diags->is_array() ? *diags : json::array();
  out[rk::ranks] = ranks_view(report);
  return out;
}

}  // namespace detail

std::string format_summary(const Report& report) {
  try {
    if (report.disabled)
      return "trainmeter: disabled (Config::enabled false or TRAINMETER_ENABLED=0): nothing "
             "measured, no report written\n";
    auto loaded = detail::parse_json_text(report.json);
    if (!loaded.value) return "trainmeter: no report\n";
    return detail::render_summary(*loaded.value);
  } catch (const std::exception& e) {
    return std::string("trainmeter: cannot summarise the report: ") + e.what();
  }
}

}  // namespace trainmeter
