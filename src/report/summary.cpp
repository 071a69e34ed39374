#include "report/summary.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

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
  const json* ranks = child(report, "ranks");
  if (ranks == nullptr || !ranks->is_object()) return nullptr;
  std::string phase;
  if (const json* ps = child(report, "phases"); ps && ps->is_object() && !ps->empty())
    phase = ps->contains("train") ? "train" : ps->begin().key();
  json per_rank = json::array();
  if (const json* pr = child(*ranks, "per_rank"); pr && pr->is_array())
    for (const json& r : *pr) {
      const json* st = nullptr;
      if (const json* ps = child(r, "phases"); ps && child(*ps, phase.c_str()))
        st = child((*ps)[phase], "step_time_ns");
      auto stat = [&](const char* k) { return st ? opt_json(num(*st, k)) : json(nullptr); };
      per_rank.push_back({{"rank", r.value("rank", json(nullptr))},
                          {"hostname", str(r, "hostname")},
                          {"p50_ns", stat("p50")},
                          {"mean_ns", stat("mean")},
                          {"max_ns", stat("max")},
                          {"slowest_steps", r.value("slowest_steps", json(nullptr))},
                          {"energy_j", opt_json(num(r, "energy_j"))}});
    }
  json stragglers = json::array();
  const double compared = num(*ranks, "compared_steps").value_or(0);
  if (const json* counts = child(*ranks, "slowest_rank_counts"); counts && counts->is_object()) {
    std::vector<std::pair<std::int64_t, int>> rows;
    for (auto it = counts->begin(); it != counts->end(); ++it)
      if (it->is_number_integer()) rows.emplace_back(it->get<std::int64_t>(), std::stoi(it.key()));
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (const auto& [n, r] : rows)
      stragglers.push_back({{"rank", r},
                            {"slowest_steps", n},
                            {"share", compared > 0 ? json(double(n) / compared) : json(nullptr)}});
  }
  json per_host = json::array();
  if (const json* hosts = child(report, "energy") ? child(report["energy"], "per_host") : nullptr;
      hosts && hosts->is_object())
    for (auto it = hosts->begin(); it != hosts->end(); ++it)
      per_host.push_back({{"host", it.key()},
                          {"ranks", it->value("ranks", json::array())},
                          {"energy_j", opt_json(num(*it, "energy_j"))},
                          {"machine_energy_j", opt_json(num(*it, "machine_energy_j"))}});
  return {{"phase", phase},
          {"per_rank", std::move(per_rank)},
          {"stragglers", std::move(stragglers)},
          {"per_host", std::move(per_host)}};
}

std::string render_summary(const json& report) {
  // Findings first: what to fix comes before the figures. A report written before findings
  // existed gets them computed now (the same pure function the session runs at finish).
  std::string out = render_findings(stored_or_computed_findings(report));
  out += "\n";
  const json empty = json::object();
  const json& run = child(report, "run") ? report["run"] : empty;
  out += fmt::format("run      {} ({}), {}, {}", str(run, "name"), str(run, "id"),
                     str(run, "status"), format_duration_s(num(run, "duration_s").value_or(NAN)));
  if (auto ws = num(run, "world_size"); ws && *ws > 1)
    out += fmt::format(", rank {} of {}", num(run, "rank").value_or(0), *ws);
  out += "\n";
  const json& host = child(report, "host") ? report["host"] : empty;
  out += fmt::format(
      "host     {}, {}, {} logical CPUs\n", str(host, "hostname"), str(host, "cpu_model"),
      child(host, "logical_cpus") ? fmt::format("{}", host["logical_cpus"].get<long long>())
                                  : "n/a");
  if (const json* cpu = child(run, "cpu_time_s")) {
    const auto user = num(*cpu, "user"), sys = num(*cpu, "system");
    const auto wall = num(run, "duration_s");
    out += fmt::format("cpu      process CPU time {} user, {} system",
                       format_duration_s(user.value_or(NAN)), format_duration_s(sys.value_or(NAN)));
    if (user && sys && wall && *wall > 0)
      out += fmt::format(" ({:.2f} CPUs busy on average)", (*user + *sys) / *wall);
    out += "\n";
  }
  if (const json* phases = child(report, "phases"); phases && phases->is_object()) {
    for (auto it = phases->begin(); it != phases->end(); ++it) {
      const json& p = it.value();
      out += fmt::format("phase    {}: {} steps ({} warm-up)", it.key(),
                         num(p, "steps").value_or(0), num(p, "warmup_steps").value_or(0));
      if (const json* st = child(p, "step_time_ns")) {
        out += fmt::format("; step p50 {}  p90 {}  p99 {}  mean {} +- {}",
                           format_duration_ns(num(*st, "p50").value_or(NAN)),
                           format_duration_ns(num(*st, "p90").value_or(NAN)),
                           format_duration_ns(num(*st, "p99").value_or(NAN)),
                           format_duration_ns(num(*st, "mean").value_or(NAN)),
                           format_duration_ns(num(*st, "stddev").value_or(NAN)));
      }
      if (auto sps = num(p, "samples_per_s")) out += fmt::format("; {:.1f} samples/s", *sps);
      if (auto tps = num(p, "tokens_per_s")) out += fmt::format("; {:.1f} tokens/s", *tps);
      out += "\n";
    }
  }
  try {
    const json epochs = epoch_view(report);
    for (const json& e : epochs) {
      const json& loss = e["loss_last"];
      const json& energy = e["energy_j"];
      out += fmt::format(
          "epoch    {} ({}): {} steps in {}, {}; loss {}; energy {}\n", e["epoch"].dump(),
          e["phase"].get<std::string>(), e["steps"].dump(),
          format_duration_s(e["span_s"].get<double>()),
          e["samples_per_s"].is_number()
              ? fmt::format("{:.1f} samples/s", e["samples_per_s"].get<double>())
              : std::string("n/a samples/s"),
          loss.is_number() ? fmt::format("{:.4g}", loss.get<double>()) : std::string("n/a"),
          energy.is_number() ? format_energy_j(energy.get<double>()) : std::string("n/a"));
    }
  } catch (const std::exception&) {
    // The epoch view is a convenience; a report it cannot read still gets its summary.
  }
  if (const json* mem = child(report, "memory")) {
    // VmHWM when the kernel gave it; else the highest sampled RSS (a recovered stream's).
    if (const auto hwm = num(*mem, "peak_rss_bytes"))
      out += fmt::format("memory   peak RSS {}", format_bytes(*hwm));
    else if (const auto sampled = num(*mem, "sampled_peak_rss_bytes"))
      out += fmt::format("memory   peak RSS {} (sampled)", format_bytes(*sampled));
    else
      out += "memory   peak RSS n/a";
    if (const json* pt = child(*mem, "peak_tensor_bytes"); pt && pt->is_object())
      for (auto it = pt->begin(); it != pt->end(); ++it)
        if (it->is_number())
          out += fmt::format("; peak tensors {} {}", it.key(), format_bytes(it->get<double>()));
    out += "\n";
  } else {
    out += "memory   n/a\n";
  }
  if (const json* model = child(report, "model")) {
    out += fmt::format("model    {:.0f} parameters, {}\n", num(*model, "parameters").value_or(NAN),
                       format_bytes(num(*model, "total_bytes").value_or(NAN)));
  }
  if (const json* energy = child(report, "energy")) {
    out += fmt::format("energy   {}", format_energy_j(num(*energy, "total_j").value_or(NAN)));
    if (const json* comps = child(*energy, "components"); comps && comps->is_array())
      for (const json& c : *comps)
        out += fmt::format("; {} {} ({}, {})", str(c, "name"),
                           format_energy_j(num(c, "energy_j").value_or(NAN)), str(c, "provenance"),
                           str(c, "source"));
    out += "\n";
  } else {
    out += "energy   not measured\n";
  }
  if (const json* carbon = child(report, "carbon")) {
    const auto kg = num(*carbon, "co2e_kg");
    out += fmt::format(
        "carbon   {} at {:.0f} g/kWh ({})\n", kg ? format_co2e_kg(*kg) : std::string("n/a CO2e"),
        num(*carbon, "intensity_g_per_kwh").value_or(NAN), str(*carbon, "intensity_source"));
  }
  if (const json* cost = child(report, "cost")) {
    out += fmt::format("cost     {:.4f} {}\n", num(*cost, "total").value_or(NAN),
                       str(*cost, "currency"));
  }
  if (const json view = ranks_view(report); view.is_object()) {
    auto ns = [](const json& v) {
      return v.is_number() ? format_duration_ns(v.get<double>()) : std::string("n/a");
    };
    auto joules = [](const json& v) {
      return v.is_number() ? format_energy_j(v.get<double>()) : std::string("n/a");
    };
    out += fmt::format("ranks    {} step time per rank (its own steps):\n",
                       view["phase"].get<std::string>());
    for (const json& r : view["per_rank"])
      out += fmt::format("  rank {:>4} {:<16} p50 {}  mean {}  max {}; slowest in {} step(s); {}\n",
                         r["rank"].dump(), r["hostname"].get<std::string>(), ns(r["p50_ns"]),
                         ns(r["mean_ns"]), ns(r["max_ns"]), r["slowest_steps"].dump(),
                         joules(r["energy_j"]));
    if (!view["stragglers"].empty()) {
      out += "stragglers (slowest rank per aligned step):\n";
      for (const json& s : view["stragglers"])
        out += fmt::format(
            "  rank {:>4} slowest in {} step(s){}\n", s["rank"].dump(), s["slowest_steps"].dump(),
            s["share"].is_number() ? fmt::format(" ({:.0f}%)", 100 * s["share"].get<double>())
                                   : std::string());
    }
    for (const json& h : view["per_host"])
      out += fmt::format("host energy {}: ranks {}; attributed {}, machine {} (counted once)\n",
                         h["host"].get<std::string>(), h["ranks"].dump(), joules(h["energy_j"]),
                         joules(h["machine_energy_j"]));
  }
  if (const json* diags = child(report, "diagnostics");
      diags && diags->is_array() && !diags->empty()) {
    out += fmt::format("diagnostics ({}):\n", diags->size());
    for (const json& d : *diags)
      out += fmt::format("  {} {} x{}: {}\n", str(d, "source"), str(d, "status"),
                         num(d, "count").value_or(0), str(d, "message"));
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
  out["findings"] = stored_or_computed_findings(report);
  try {
    out["epochs"] = epoch_view(report);
  } catch (const std::exception&) {
    out["epochs"] = json::array();
  }
  out["run"] = pick(section("run"), {"name", "id", "status", "duration_s", "rank", "world_size"});
  out["run"]["cpu_time_s"] =
      child(section("run"), "cpu_time_s") ? section("run")["cpu_time_s"] : json();
  out["host"] = pick(section("host"), {"hostname", "cpu_model", "logical_cpus"});
  json phases = json::object();
  if (const json* ps = child(report, "phases"); ps && ps->is_object())
    for (auto it = ps->begin(); it != ps->end(); ++it) {
      json p = pick(it.value(), {"steps", "warmup_steps", "samples_per_s", "tokens_per_s"});
      const json* st = child(it.value(), "step_time_ns");
      p["step_time_ns"] =
          st != nullptr ? pick(*st, {"mean", "stddev", "min", "p50", "p90", "p99", "max"}) : json();
      phases[it.key()] = std::move(p);
    }
  out["phases"] = std::move(phases);
  json memory =
      pick(section("memory"), {"peak_rss_bytes", "sampled_peak_rss_bytes", "peak_tensor_bytes"});
  out["memory"] = std::move(memory);
  out["model"] =
      child(report, "model") ? pick(section("model"), {"parameters", "total_bytes"}) : json();
  if (child(report, "energy")) {
    json energy = pick(section("energy"), {"total_j", "pue", "total_kwh_with_pue"});
    json comps = json::array();
    if (const json* cs = child(section("energy"), "components"); cs && cs->is_array())
      for (const json& c : *cs)
        comps.push_back(pick(c, {"name", "energy_j", "provenance", "source"}));
    energy["components"] = std::move(comps);
    out["energy"] = std::move(energy);
  } else {
    out["energy"] = nullptr;
  }
  out["carbon"] = child(report, "carbon")
                      ? pick(section("carbon"),
                             {"co2e_kg", "intensity_g_per_kwh", "intensity_source", "region"})
                      : json();
  out["cost"] = child(report, "cost") ? pick(section("cost"), {"total", "currency"}) : json();
  const json* diags = child(report, "diagnostics");
  out["diagnostics"] = diags != nullptr && diags->is_array() ? *diags : json::array();
  out["ranks"] = ranks_view(report);
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
