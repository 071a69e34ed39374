#include "export/merge.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "carbon/model.hpp"
#include "core/diagnostics.hpp"
#include "report/stats.hpp"
#include "trainmeter/error.hpp"
#include "trainmeter/version.hpp"

#ifndef TRAINMETER_BUILD_TYPE
#define TRAINMETER_BUILD_TYPE "unknown"
#endif

namespace trainmeter::detail {

namespace {

using nlohmann::json;

std::optional<double> num(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) return std::nullopt;
  const double v = it->get<double>();
  return std::isfinite(v) ? std::optional<double>(v) : std::nullopt;
}

std::optional<std::int64_t> integer(const json& obj, const char* key) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<std::int64_t>();
}

std::string text(const json& obj, const char* key, const std::string& fallback = "") {
  if (!obj.is_object()) return fallback;
  const auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

const json& section(const json& report, const char* key) {
  static const json kNull = nullptr;
  if (!report.is_object()) return kNull;
  const auto it = report.find(key);
  return it == report.end() ? kNull : *it;
}

json nullable(std::optional<double> v) {
  return v ? json(*v) : json(nullptr);
}

// Sum of a field over ranks: null when any rank has it null or absent (a partial sum would pass
// for the whole run's figure).
std::optional<double> sum_all(const std::vector<const json*>& objs, const char* key) {
  if (objs.empty()) return std::nullopt;
  double total = 0;
  for (const json* o : objs) {
    const auto v = num(*o, key);
    if (!v) return std::nullopt;
    total += *v;
  }
  return total;
}

// "2024-05-01T12:00:00.123Z" (what the builder writes) -> ns since the Unix epoch.
std::optional<std::int64_t> parse_utc(const std::string& s) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
  char z = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms,
                  &z) != 8 ||
      z != 'Z')
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::int64_t(t) * 1'000'000'000 + std::int64_t(ms) * 1'000'000;
}

int status_rank(const std::string& s) {
  if (s == "completed") return 0;
  if (s == "aborted") return 1;
  return 2;  // crashed
}

json duration_stats(std::vector<double> values) {
  if (values.empty()) return nullptr;
  RunningStats rs;
  for (double v : values) rs.add(v);
  std::sort(values.begin(), values.end());
  auto q = [&](double p) { return std::llround(exact_quantile_sorted(values, p)); };
  return {{"mean", rs.mean()},
          {"stddev", rs.stddev()},
          {"min", std::llround(rs.min())},
          {"p50", q(0.50)},
          {"p90", q(0.90)},
          {"p95", q(0.95)},
          {"p99", q(0.99)},
          {"max", std::llround(rs.max())},
          {"percentiles_exact", true}};
}

// Largest value of every "*_bytes" figure at the same place in each rank's memory section (every
// number inside an object named "*_bytes", e.g. peak_tensor_bytes per device, too), so the merged
// section keeps the shape the schema gives it.
bool bytes_key(const std::string& key) {
  return key.size() > 6 && key.compare(key.size() - 6, 6, "_bytes") == 0;
}

void max_bytes(json& dst, const std::vector<const json*>& srcs, bool inside_bytes) {
  if (!dst.is_object()) return;
  std::set<std::string> keys;
  for (auto it = dst.begin(); it != dst.end(); ++it) keys.insert(it.key());
  if (inside_bytes)  // per-device maps: a device only some ranks used still counts
    for (const json* s : srcs)
      if (s->is_object())
        for (auto it = s->begin(); it != s->end(); ++it) keys.insert(it.key());
  for (const std::string& key : keys) {
    std::vector<const json*> children;
    for (const json* s : srcs)
      if (s->is_object() && s->contains(key)) children.push_back(&(*s)[key]);
    const bool bytes = inside_bytes || bytes_key(key);
    json& v = dst[key];
    if (bytes && v.is_null())
      for (const json* c : children)
        if (c->is_object()) {
          v = json::object();
          break;
        }
    if (v.is_object()) {
      max_bytes(v, children, bytes);
      continue;
    }
    if (!bytes || !(v.is_number() || v.is_null())) continue;
    std::optional<std::int64_t> best;
    for (const json* c : children)
      if (c->is_number())
        best = std::max(best.value_or(std::numeric_limits<std::int64_t>::min()),
                        c->get<std::int64_t>());
    v = best ? json(*best) : json(nullptr);
  }
}

struct Rank {
  int rank = 0;
  const RankReport* in = nullptr;
  std::string host;
  std::optional<std::int64_t> start_unix_ns;
  bool steps_complete = true;
  std::map<std::string, std::vector<const json*>> steps_by_phase;
};

struct AlignedStep {
  std::string phase;
  std::size_t ordinal = 0;
  std::uint64_t sort_index = 0;
  std::size_t phase_order = 0;
  std::vector<std::pair<int, const json*>> per_rank;  // (rank, step)
};

}  // namespace

json merge_reports(const std::vector<RankReport>& inputs, const MergeOptions& options) {
  if (inputs.empty()) throw Error("cannot merge: no reports given");
  std::vector<Rank> ranks;
  std::string problems;
  for (const RankReport& in : inputs) {
    const json& run = section(in.report, "run");
    const auto r = integer(run, "rank");
    const auto w = integer(run, "world_size");
    if (!in.report.is_object() || !run.is_object() || !r || !w || *r < 0 || *w < 1) {
      problems +=
          fmt::format("; {}: not a trainmeter report with run.rank and run.world_size", in.origin);
      continue;
    }
    // A merged report is rank 0 of world_size N by its run section; merging it again with a
    // rank file would count that rank twice.
    const auto merged_flag = run.find("merged");
    if ((merged_flag != run.end() && *merged_flag == true) || in.report.contains("ranks")) {
      problems += fmt::format(
          "; {}: already a merged report (run.merged); merge the per-rank reports instead",
          in.origin);
      continue;
    }
    Rank k;
    k.rank = static_cast<int>(*r);
    k.in = &in;
    k.host = text(section(in.report, "host"), "hostname", "unknown");
    k.start_unix_ns = parse_utc(text(run, "start_utc"));
    ranks.push_back(std::move(k));
  }
  if (!problems.empty()) throw Error("cannot merge:" + problems.substr(1));
  std::sort(ranks.begin(), ranks.end(),
            [](const Rank& a, const Rank& b) { return a.rank < b.rank; });

  int world_size = options.world_size;
  const std::int64_t first_world = *integer(section(ranks[0].in->report, "run"), "world_size");
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    const json& run = section(ranks[i].in->report, "run");
    if (i > 0 && ranks[i].rank == ranks[i - 1].rank)
      problems += fmt::format("; {} and {} are both rank {}", ranks[i - 1].in->origin,
                              ranks[i].in->origin, ranks[i].rank);
    if (*integer(run, "world_size") != first_world)
      problems += fmt::format("; {}: world_size {} differs from {}'s {}", ranks[i].in->origin,
                              *integer(run, "world_size"), ranks[0].in->origin, first_world);
    if (!options.allow_mixed_run_ids &&
        text(run, "id") != text(section(ranks[0].in->report, "run"), "id"))
      problems += fmt::format(
          "; {}: run.id '{}' differs from {}'s '{}' (not the same run; "
          "--allow-mixed-ids merges anyway)",
          ranks[i].in->origin, text(run, "id"), ranks[0].in->origin,
          text(section(ranks[0].in->report, "run"), "id"));
  }
  if (world_size <= 0) world_size = static_cast<int>(first_world);
  for (const Rank& k : ranks)
    if (k.rank >= world_size)
      problems +=
          fmt::format("; {}: rank {} is outside world_size {}", k.in->origin, k.rank, world_size);
  if (!problems.empty()) throw Error("cannot merge:" + problems.substr(1));

  const json& base = ranks[0].in->report;
  const json& base_run = section(base, "run");
  std::vector<json> diagnostics;

  // --- missing ranks ---------------------------------------------------------------------------
  std::set<int> present;
  for (const Rank& k : ranks) present.insert(k.rank);
  std::map<int, std::string> reasons(options.missing_reasons.begin(),
                                     options.missing_reasons.end());
  json missing = json::array(), missing_ranks = json::array();
  for (int r = 0; r < world_size; ++r) {
    if (present.count(r)) continue;
    const auto it = reasons.find(r);
    const std::string reason = it != reasons.end() ? it->second : "no report given";
    missing.push_back({{"rank", r}, {"reason", reason}});
    missing_ranks.push_back(r);
  }
  if (!missing_ranks.empty()) {
    std::string list;
    for (const json& m : missing)
      list += fmt::format("{}rank {} ({})", list.empty() ? "" : "; ", m["rank"].get<int>(),
                          m["reason"].get<std::string>());
    diagnostics.push_back({{"source", "merge"},
                           {"status", diag::kUnavailable},
                           {"count", missing_ranks.size()},
                           {"message", "missing from the merged report: " + list},
                           {"last_message", nullptr}});
  }

  // --- steps, aligned by (phase, ordinal) -----------------------------------------------------
  std::vector<std::string> phase_order;
  auto note_phase = [&](const std::string& p) {
    if (std::find(phase_order.begin(), phase_order.end(), p) == phase_order.end())
      phase_order.push_back(p);
  };
  for (const Rank& k : ranks)
    for (auto& [name, _] : section(k.in->report, "phases").items()) note_phase(name);
  for (Rank& k : ranks) {
    const json& run = section(k.in->report, "run");
    const json& steps = section(k.in->report, "steps");
    if (!steps.is_array()) {
      k.steps_complete = false;
      continue;
    }
    const auto rec = integer(run, "steps_recorded");
    if (rec && static_cast<std::size_t>(*rec) != steps.size()) k.steps_complete = false;
    for (const json& s : steps) {
      if (!s.is_object() || !integer(s, "wall_ns")) continue;
      const std::string p = text(s, "phase", "train");
      note_phase(p);
      k.steps_by_phase[p].push_back(&s);
    }
  }
  std::string incomplete;
  for (const Rank& k : ranks)
    if (!k.steps_complete)
      incomplete += fmt::format("{}{}", incomplete.empty() ? "" : ", ", k.rank);
  if (!incomplete.empty())
    diagnostics.push_back(
        {{"source", "merge"},
         {"status", diag::kSkipped},
         {"count", 1},
         {"message", "rank(s) " + incomplete +
                         " did not retain every step: per-step figures (slowest rank, spread, "
                         "merged phase statistics) cover the retained steps only"},
         {"last_message", nullptr}});

  std::vector<AlignedStep> aligned;
  for (std::size_t pi = 0; pi < phase_order.size(); ++pi) {
    const std::string& p = phase_order[pi];
    std::size_t n = 0;
    for (const Rank& k : ranks) {
      const auto it = k.steps_by_phase.find(p);
      if (it != k.steps_by_phase.end()) n = std::max(n, it->second.size());
    }
    for (std::size_t i = 0; i < n; ++i) {
      AlignedStep a;
      a.phase = p;
      a.ordinal = i;
      a.phase_order = pi;
      for (const Rank& k : ranks) {
        const auto it = k.steps_by_phase.find(p);
        if (it == k.steps_by_phase.end() || i >= it->second.size()) continue;
        a.per_rank.emplace_back(k.rank, it->second[i]);
      }
      // The lowest rank's own index orders the run's steps (it saw them interleave).
      a.sort_index =
          static_cast<std::uint64_t>(integer(*a.per_rank.front().second, "index").value_or(0));
      aligned.push_back(std::move(a));
    }
  }
  std::stable_sort(aligned.begin(), aligned.end(), [](const AlignedStep& a, const AlignedStep& b) {
    if (a.sort_index != b.sort_index) return a.sort_index < b.sort_index;
    return a.phase_order < b.phase_order;
  });

  std::optional<std::int64_t> run_start_ns, run_end_ns;
  for (const Rank& k : ranks) {
    if (k.start_unix_ns)
      run_start_ns = std::min(run_start_ns.value_or(*k.start_unix_ns), *k.start_unix_ns);
    const auto end = parse_utc(text(section(k.in->report, "run"), "end_utc"));
    if (end) run_end_ns = std::max(run_end_ns.value_or(*end), *end);
  }
  std::map<int, const Rank*> by_rank;
  for (const Rank& k : ranks) by_rank[k.rank] = &k;

  struct PhaseAcc {
    std::uint64_t steps = 0, warmup = 0, samples = 0, tokens = 0, multi = 0;
    std::vector<double> wall;
    double spread_sum = 0, spread_max = 0;
    std::map<int, std::uint64_t> slowest;
  };
  std::map<std::string, PhaseAcc> acc;
  std::map<int, std::uint64_t> slowest_total;
  std::uint64_t multi_total = 0;
  json steps = json::array();
  for (std::size_t i = 0; i < aligned.size(); ++i) {
    const AlignedStep& a = aligned[i];
    std::int64_t wall_max = -1, wall_min = std::numeric_limits<std::int64_t>::max();
    int slowest = -1;
    std::optional<std::int64_t> cpu, peak, abs_start;
    std::uint64_t samples = 0, tokens = 0;
    bool warmup = false, energy_seen = false, energy_all = true;
    double energy = 0, loss_sum = 0;
    int loss_n = 0;
    json rank_wall(std::vector<json>(static_cast<std::size_t>(world_size), nullptr));
    for (const auto& [r, s] : a.per_rank) {
      const std::int64_t w = *integer(*s, "wall_ns");
      rank_wall[static_cast<std::size_t>(r)] = w;
      if (w > wall_max) {
        wall_max = w;
        slowest = r;
      }
      wall_min = std::min(wall_min, w);
      if (const auto c = integer(*s, "cpu_ns")) cpu = std::max(cpu.value_or(*c), *c);
      if (const auto b = integer(*s, "peak_tensor_bytes")) peak = std::max(peak.value_or(*b), *b);
      samples += static_cast<std::uint64_t>(integer(*s, "samples").value_or(0));
      tokens += static_cast<std::uint64_t>(integer(*s, "tokens").value_or(0));
      warmup = warmup ||
               (s->contains("warmup") && (*s)["warmup"].is_boolean() && (*s)["warmup"].get<bool>());
      if (const auto l = num(*s, "loss")) {
        loss_sum += *l;
        ++loss_n;
      }
      if (s->contains("energy_j")) energy_seen = true;
      if (const auto e = num(*s, "energy_j"))
        energy += *e;
      else
        energy_all = false;
      const Rank* k = by_rank[r];
      const auto off = integer(*s, "start_offset_ns");
      if (k->start_unix_ns && off)
        abs_start =
            std::min(abs_start.value_or(*k->start_unix_ns + *off), *k->start_unix_ns + *off);
    }
    const bool multi = a.per_rank.size() >= 2;
    std::int64_t offset = integer(*a.per_rank.front().second, "start_offset_ns").value_or(0);
    if (abs_start && run_start_ns) offset = *abs_start - *run_start_ns;
    json s = {{"index", i},
              {"phase", a.phase},
              {"start_offset_ns", offset},
              {"wall_ns", wall_max},
              {"cpu_ns", cpu ? json(*cpu) : json(nullptr)},
              {"samples", samples},
              {"tokens", tokens},
              {"warmup", warmup},
              {"loss", loss_n > 0 ? json(loss_sum / loss_n) : json(nullptr)},
              {"peak_tensor_bytes", peak ? json(*peak) : json(nullptr)},
              {"ranks", a.per_rank.size()},
              {"slowest_rank", slowest},
              {"spread_ns", multi ? json(wall_max - wall_min) : json(nullptr)},
              {"rank_wall_ns", std::move(rank_wall)}};
    if (energy_seen) s["energy_j"] = energy_all ? json(energy) : json(nullptr);
    steps.push_back(std::move(s));

    PhaseAcc& pa = acc[a.phase];
    ++pa.steps;
    if (warmup) {
      ++pa.warmup;
      continue;
    }
    pa.samples += samples;
    pa.tokens += tokens;
    pa.wall.push_back(double(wall_max));
    if (multi) {
      ++pa.multi;
      ++multi_total;
      const double spread = double(wall_max - wall_min);
      pa.spread_sum += spread;
      pa.spread_max = std::max(pa.spread_max, spread);
      ++pa.slowest[slowest];
      ++slowest_total[slowest];
    }
  }

  auto counts_json = [](const std::map<int, std::uint64_t>& m) {
    json j = json::object();
    for (const auto& [r, n] : m) j[std::to_string(r)] = n;
    return j;
  };
  auto most_often = [](const std::map<int, std::uint64_t>& m) -> json {
    if (m.empty()) return nullptr;
    auto it =
        std::max_element(m.begin(), m.end(), [](auto& x, auto& y) { return x.second < y.second; });
    return it->first;
  };

  // --- phases ----------------------------------------------------------------------------------
  json phases = json::object();
  for (const std::string& p : phase_order) {
    std::vector<const json*> rank_phases;
    for (const Rank& k : ranks) {
      const json& ph = section(k.in->report, "phases");
      if (ph.is_object() && ph.contains(p) && ph[p].is_object()) rank_phases.push_back(&ph[p]);
    }
    json out;
    const auto it = acc.find(p);
    if (it != acc.end() && it->second.steps > 0) {
      const PhaseAcc& pa = it->second;
      double dur_ns = 0;
      for (double w : pa.wall) dur_ns += w;
      const double duration_s = 1e-9 * dur_ns;
      out = {
          {"steps", pa.steps},
          {"warmup_steps", pa.warmup},
          {"samples", pa.samples},
          {"tokens", pa.tokens},
          {"duration_s", duration_s},
          {"step_time_ns", duration_stats(pa.wall)},
          {"cpu_time_ns", nullptr},
          {"samples_per_s", pa.samples > 0 && duration_s > 0 ? json(double(pa.samples) / duration_s)
                                                             : json(nullptr)},
          {"tokens_per_s",
           pa.tokens > 0 && duration_s > 0 ? json(double(pa.tokens) / duration_s) : json(nullptr)},
          {"loss", nullptr},
          {"step_time_basis", "slowest rank per aligned step"},
          {"spread_ns",
           pa.multi > 0 ? json({{"mean", pa.spread_sum / double(pa.multi)}, {"max", pa.spread_max}})
                        : json(nullptr)},
          {"slowest_rank_counts", counts_json(pa.slowest)},
          {"straggler_rank", most_often(pa.slowest)}};
    } else {
      // No retained steps of this phase anywhere: only the ranks' own aggregates are known.
      std::uint64_t steps_n = 0, warm = 0, samples = 0, tokens = 0;
      double duration_s = 0;
      for (const json* ph : rank_phases) {
        steps_n = std::max<std::uint64_t>(steps_n, integer(*ph, "steps").value_or(0));
        warm = std::max<std::uint64_t>(warm, integer(*ph, "warmup_steps").value_or(0));
        samples += static_cast<std::uint64_t>(integer(*ph, "samples").value_or(0));
        tokens += static_cast<std::uint64_t>(integer(*ph, "tokens").value_or(0));
        duration_s = std::max(duration_s, num(*ph, "duration_s").value_or(0));
      }
      out = {{"steps", steps_n},
             {"warmup_steps", warm},
             {"samples", samples},
             {"tokens", tokens},
             {"duration_s", duration_s},
             {"step_time_ns", nullptr},
             {"cpu_time_ns", nullptr},
             {"samples_per_s",
              samples > 0 && duration_s > 0 ? json(double(samples) / duration_s) : json(nullptr)},
             {"tokens_per_s",
              tokens > 0 && duration_s > 0 ? json(double(tokens) / duration_s) : json(nullptr)},
             {"loss", nullptr},
             {"step_time_basis", "no retained steps: duration_s is the slowest rank's phase total"},
             {"spread_ns", nullptr},
             {"slowest_rank_counts", json::object()},
             {"straggler_rank", nullptr}};
    }
    bool energy_seen = false;
    for (const json* ph : rank_phases) energy_seen = energy_seen || ph->contains("energy_j");
    if (energy_seen)
      out["energy_j"] = rank_phases.size() == ranks.size()
                            ? nullable(sum_all(rank_phases, "energy_j"))
                            : json(nullptr);
    phases[p] = std::move(out);
  }

  // --- energy: attributed shares summed, machine counters once per host and source ---------------
  json energy = nullptr;
  std::vector<const json*> rank_energy;
  for (const Rank& k : ranks)
    if (section(k.in->report, "energy").is_object())
      rank_energy.push_back(&section(k.in->report, "energy"));
  if (!rank_energy.empty()) {
    energy = *rank_energy.front();
    struct Group {
      std::string host, name, source;
      json first;
      std::vector<int> ranks;
      std::vector<const json*> parts;
    };
    std::vector<Group> groups;
    for (const Rank& k : ranks) {
      const json& e = section(k.in->report, "energy");
      if (!e.is_object() || !e.contains("components") || !e["components"].is_array()) continue;
      for (const json& c : e["components"]) {
        const std::string name = text(c, "name"), source = text(c, "source");
        auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) {
          return x.host == k.host && x.name == name && x.source == source;
        });
        if (g == groups.end()) {
          groups.push_back({k.host, name, source, c, {}, {}});
          g = groups.end() - 1;
        }
        g->ranks.push_back(k.rank);
        g->parts.push_back(&c);
      }
    }
    json components = json::array();
    std::optional<double> machine_total = 0.0;
    json per_host = json::object();
    for (const Group& g : groups) {
      json c = g.first;
      const auto attributed = sum_all(g.parts, "energy_j");
      std::optional<double> machine;
      for (const json* p : g.parts)
        if (const auto m = num(*p, "machine_energy_j"))
          machine = std::max(machine.value_or(*m), *m);
      std::optional<double> machine_power;
      for (const json* p : g.parts)
        if (const auto m = num(*p, "machine_average_power_w"))
          machine_power = std::max(machine_power.value_or(*m), *m);
      std::uint64_t samples = 0, discarded = 0, failed = 0;
      for (const json* p : g.parts) {
        samples += static_cast<std::uint64_t>(integer(*p, "samples").value_or(0));
        discarded += static_cast<std::uint64_t>(integer(*p, "discarded_intervals").value_or(0));
        failed += static_cast<std::uint64_t>(integer(*p, "failed_reads").value_or(0));
      }
      c["host"] = g.host;
      c["ranks"] = g.ranks;
      c["energy_j"] = nullable(attributed);
      if (c.contains("machine_energy_j")) c["machine_energy_j"] = nullable(machine);
      if (c.contains("attributed_share"))
        // Ranks read the counter over slightly different windows: keep the share a fraction.
        c["attributed_share"] = attributed && machine && *machine > 0
                                    ? json(std::min(*attributed / *machine, 1.0))
                                    : json(nullptr);
      if (c.contains("average_power_w"))
        c["average_power_w"] = nullable(sum_all(g.parts, "average_power_w"));
      if (c.contains("machine_average_power_w"))
        c["machine_average_power_w"] = nullable(machine_power);
      if (c.contains("samples")) c["samples"] = samples;
      if (c.contains("discarded_intervals")) c["discarded_intervals"] = discarded;
      if (c.contains("failed_reads")) c["failed_reads"] = failed;
      if (g.ranks.size() > 1) {
        json notes = c.contains("notes") && c["notes"].is_array() ? c["notes"] : json::array();
        notes.push_back(machine
                            ? fmt::format("merged over ranks on host {}: energy_j summed; the "
                                          "machine counter counted once (largest reading)",
                                          g.host)
                            : fmt::format("merged over ranks on host {}: energy_j summed", g.host));
        c["notes"] = std::move(notes);
      }
      const std::optional<double> counted = machine ? machine : attributed;
      if (counted && machine_total)
        *machine_total += *counted;
      else
        machine_total.reset();
      json& h = per_host[g.host];
      if (!h.is_object())
        h = {{"ranks", json::array()}, {"energy_j", 0.0}, {"machine_energy_j", 0.0}};
      for (int r : g.ranks)
        if (std::find(h["ranks"].begin(), h["ranks"].end(), json(r)) == h["ranks"].end())
          h["ranks"].push_back(r);
      if (h["energy_j"].is_number() && attributed)
        h["energy_j"] = h["energy_j"].get<double>() + *attributed;
      else
        h["energy_j"] = nullptr;
      if (h["machine_energy_j"].is_number() && counted)
        h["machine_energy_j"] = h["machine_energy_j"].get<double>() + *counted;
      else
        h["machine_energy_j"] = nullptr;
      components.push_back(std::move(c));
    }
    energy["components"] = std::move(components);
    const bool all_ranks = rank_energy.size() == ranks.size();
    const auto total = all_ranks ? sum_all(rank_energy, "total_j") : std::nullopt;
    energy["total_j"] = nullable(total);
    energy["total_kwh"] = total ? json(*total / kJoulesPerKwh) : json(nullptr);
    if (energy.contains("total_kwh_with_pue"))
      energy["total_kwh_with_pue"] =
          all_ranks ? nullable(sum_all(rank_energy, "total_kwh_with_pue")) : json(nullptr);
    energy["machine_total_j"] = nullable(machine_total);
    energy["per_host"] = std::move(per_host);
    std::uint64_t ticks = 0;
    for (const json* e : rank_energy)
      ticks += static_cast<std::uint64_t>(integer(*e, "samples").value_or(0));
    if (energy.contains("samples")) energy["samples"] = ticks;
    energy["merge"] =
        "total_j sums every rank's attributed energy (each process's share of machine-level "
        "counters, plus per-process estimates); machine_total_j counts each host's machine-level "
        "counters (RAPL package/DRAM, GPU boards) once, whichever ranks read them, plus components "
        "without a machine figure. sources_tried and timeline are the lowest rank's.";
  }

  // --- carbon and cost -------------------------------------------------------------------------
  json carbon = section(base, "carbon");
  if (carbon.is_object()) {
    std::vector<const json*> parts;
    bool same = true;
    json per_rank = json::array();
    for (const Rank& k : ranks) {
      const json& c = section(k.in->report, "carbon");
      if (!c.is_object()) continue;
      parts.push_back(&c);
      same = same && num(c, "intensity_g_per_kwh") == num(carbon, "intensity_g_per_kwh") &&
             num(c, "pue") == num(carbon, "pue");
      per_rank.push_back({{"rank", k.rank},
                          {"intensity_g_per_kwh", nullable(num(c, "intensity_g_per_kwh"))},
                          {"pue", nullable(num(c, "pue"))},
                          {"co2e_kg", nullable(num(c, "co2e_kg"))}});
    }
    const bool all = parts.size() == ranks.size();
    const auto kwh = all ? sum_all(parts, "energy_kwh") : std::nullopt;
    const auto kwh_pue = all ? sum_all(parts, "energy_kwh_with_pue") : std::nullopt;
    const auto kg = all ? sum_all(parts, "co2e_kg") : std::nullopt;
    carbon["energy_kwh"] = nullable(kwh);
    carbon["energy_kwh_with_pue"] = nullable(kwh_pue);
    carbon["co2e_kg"] = nullable(kg);
    carbon["equivalents"] = equivalents_json(kg);
    if (!same && kg && kwh_pue && *kwh_pue > 0) {
      // Ranks in different grids: the merged intensity is the energy-weighted mean.
      carbon["intensity_g_per_kwh"] = *kg * 1000.0 / *kwh_pue;
      carbon["pue"] = *kwh_pue / *kwh;
    }
    carbon["per_rank"] = std::move(per_rank);
  }
  json cost = section(base, "cost");
  if (cost.is_object()) {
    std::map<std::string, std::optional<double>> compute_by_host;
    std::vector<const json*> parts;
    std::optional<double> duration_h;
    bool compute_known = true;
    for (const Rank& k : ranks) {
      const json& c = section(k.in->report, "cost");
      if (!c.is_object()) continue;
      parts.push_back(&c);
      const auto v = num(c, "compute");
      if (!v) compute_known = false;
      if (v) compute_by_host[k.host] = std::max(compute_by_host[k.host].value_or(*v), *v);
      if (const auto d = num(section(c, "inputs"), "duration_h"))
        duration_h = std::max(duration_h.value_or(*d), *d);
    }
    const bool all = parts.size() == ranks.size();
    const bool compute_priced = num(section(cost, "inputs"), "price_per_hour").has_value();
    const bool energy_priced = num(section(cost, "inputs"), "energy_price_per_kwh").has_value();
    // Plain doubles with flags: GCC 12 misreports std::optional<double> here as uninitialised.
    const bool compute_ok = compute_priced && compute_known && all;
    double compute = 0;
    for (const auto& [h, v] : compute_by_host) compute += v.value_or(0);
    const std::optional<double> energy_sum = sum_all(parts, "energy");
    const bool energy_ok = energy_priced && all && energy_sum.has_value();
    const double energy_cost = energy_sum.value_or(0.0);
    // compute_cost()'s rule: an unpriced part is left out, a priced but unknown part makes the
    // total unknown.
    const bool total_ok = (!compute_priced || compute_ok) && (!energy_priced || energy_ok);
    const double total = (compute_priced ? compute : 0.0) + (energy_priced ? energy_cost : 0.0);
    cost["compute"] = compute_ok ? json(compute) : json(nullptr);
    cost["energy"] = energy_ok ? json(energy_cost) : json(nullptr);
    cost["total"] = total_ok ? json(total) : json(nullptr);
    if (cost["inputs"].is_object()) {
      cost["inputs"]["duration_h"] = nullable(duration_h);
      std::vector<const json*> inputs;
      for (const json* c : parts) inputs.push_back(&(*c)["inputs"]);
      cost["inputs"]["energy_kwh"] = all ? nullable(sum_all(inputs, "energy_kwh")) : json(nullptr);
    }
    cost["formula"] = text(cost, "formula") +
                      " Merged over ranks: the instance price counts once per host (the longest "
                      "rank's compute cost on that host); energy cost is summed over ranks.";
  }

  // --- memory: the largest of each peak; every rank's own in ranks.per_rank --------------------
  json memory = section(base, "memory");
  if (memory.is_object()) {
    std::vector<const json*> mems;
    for (const Rank& k : ranks)
      if (section(k.in->report, "memory").is_object())
        mems.push_back(&section(k.in->report, "memory"));
    max_bytes(memory, mems, false);
    memory["merge"] = fmt::format(
        "every *_bytes figure is the largest over ranks (per-rank figures in ranks.per_rank); "
        "non-byte fields and timelines are rank {}'s",
        ranks[0].rank);
  }

  // --- ranks section ---------------------------------------------------------------------------
  json per_rank = json::array();
  std::map<std::string, std::vector<int>> hosts;
  for (const Rank& k : ranks) {
    const json& rep = k.in->report;
    const json& run = section(rep, "run");
    hosts[k.host].push_back(k.rank);
    json mem = section(rep, "memory");
    if (mem.is_object()) mem.erase("timeline");
    const auto steps_it = slowest_total.find(k.rank);
    json phase_stats = json::object();
    for (auto& [name, ph] : section(rep, "phases").items()) {
      if (!ph.is_object()) continue;
      phase_stats[name] = {{"steps", ph.value("steps", json(nullptr))},
                           {"warmup_steps", ph.value("warmup_steps", json(nullptr))},
                           {"samples", ph.value("samples", json(nullptr))},
                           {"duration_s", ph.value("duration_s", json(nullptr))},
                           {"step_time_ns", ph.value("step_time_ns", json(nullptr))},
                           {"samples_per_s", ph.value("samples_per_s", json(nullptr))},
                           {"energy_j", ph.value("energy_j", json(nullptr))}};
    }
    per_rank.push_back(
        {{"rank", k.rank},
         {"local_rank",
          integer(run, "local_rank") ? json(*integer(run, "local_rank")) : json(nullptr)},
         {"hostname", k.host},
         {"origin", k.in->origin},
         {"run_id", text(run, "id")},
         {"status", text(run, "status", "completed")},
         {"start_utc", text(run, "start_utc")},
         {"duration_s", nullable(num(run, "duration_s"))},
         {"steps_recorded",
          integer(run, "steps_recorded") ? json(*integer(run, "steps_recorded")) : json(nullptr)},
         {"steps_complete", k.steps_complete},
         {"slowest_steps", steps_it != slowest_total.end() ? steps_it->second : 0},
         {"phases", std::move(phase_stats)},
         {"memory", std::move(mem)},
         {"energy_j", nullable(num(section(rep, "energy"), "total_j"))},
         {"co2e_kg", nullable(num(section(rep, "carbon"), "co2e_kg"))}});
  }
  json hosts_json = json::object();
  for (const auto& [h, rs] : hosts) hosts_json[h] = rs;
  json present_json = json::array();
  for (int r : present) present_json.push_back(r);
  json ranks_section = {
      {"world_size", world_size},
      {"present", present_json},
      {"missing", std::move(missing)},
      {"merged_by", options.merged_by},
      {"hosts", std::move(hosts_json)},
      {"step_alignment",
       "the k-th step of each phase on every rank is one step of the run; its wall_ns is the "
       "slowest rank's, spread_ns = slowest - fastest"},
      {"aligned_steps", aligned.size()},
      {"compared_steps", multi_total},
      {"slowest_rank_counts", counts_json(slowest_total)},
      {"straggler_rank", most_often(slowest_total)},
      {"per_rank", std::move(per_rank)},
      {"gather", options.gather}};

  // --- run -------------------------------------------------------------------------------------
  json run = base_run;
  std::string status = "completed";
  double cpu_user = 0, cpu_sys = 0;
  std::uint64_t recorded = 0, dropped = 0, retained = 0;
  std::string start_utc = text(base_run, "start_utc"), end_utc = text(base_run, "end_utc");
  double max_duration = 0;
  for (const Rank& k : ranks) {
    const json& r = section(k.in->report, "run");
    const std::string st = text(r, "status", "completed");
    if (status_rank(st) > status_rank(status)) status = st;
    const json& cpu = section(r, "cpu_time_s");
    cpu_user += num(cpu, "user").value_or(0);
    cpu_sys += num(cpu, "system").value_or(0);
    recorded += static_cast<std::uint64_t>(integer(r, "steps_recorded").value_or(0));
    dropped += static_cast<std::uint64_t>(integer(r, "steps_dropped").value_or(0));
    retained += static_cast<std::uint64_t>(integer(r, "steps_retained").value_or(0));
    const std::string s = text(r, "start_utc"), e = text(r, "end_utc");
    if (!s.empty() && s < start_utc) start_utc = s;
    if (!e.empty() && e > end_utc) end_utc = e;
    max_duration = std::max(max_duration, num(r, "duration_s").value_or(0));
  }
  if (!missing_ranks.empty() && status == "completed") status = "aborted";
  run["status"] = status;
  run["start_utc"] = start_utc;
  run["end_utc"] = end_utc.empty() ? json(nullptr) : json(end_utc);
  run["duration_s"] =
      run_start_ns && run_end_ns ? 1e-9 * double(*run_end_ns - *run_start_ns) : max_duration;
  run["rank"] = ranks[0].rank;
  run["world_size"] = world_size;
  run.erase("local_rank");
  run.erase("local_world_size");
  run["cpu_time_s"] = {{"user", cpu_user}, {"system", cpu_sys}};
  run["steps_recorded"] = recorded;
  run["steps_dropped"] = dropped;
  run["steps_retained"] = retained;
  run["merged"] = true;
  run["ranks_present"] = present_json;
  run["missing_ranks"] = missing_ranks;
  run["master_addr"] = options.master_addr ? json(*options.master_addr) : json(nullptr);
  run["master_port"] = options.master_port ? json(*options.master_port) : json(nullptr);

  // --- diagnostics: every rank's, prefixed with its rank, then the merge's own -----------------
  json diags = json::array();
  for (const Rank& k : ranks) {
    const json& d = section(k.in->report, "diagnostics");
    if (!d.is_array()) continue;
    for (json e : d) {
      if (!e.is_object()) continue;
      e["source"] = fmt::format("rank{}:{}", k.rank, text(e, "source"));
      diags.push_back(std::move(e));
    }
  }
  for (json& d : diagnostics) diags.push_back(std::move(d));

  json doc = json::object();
  doc["schema_version"] = base.value("schema_version", json(1));
  doc["trainmeter"] = {{"version", TRAINMETER_VERSION_STRING}, {"build", TRAINMETER_BUILD_TYPE}};
  doc["run"] = std::move(run);
  doc["host"] = section(base, "host");
  doc["config"] = section(base, "config").is_object() ? section(base, "config") : json::object();
  doc["model"] = section(base, "model");
  doc["phases"] = std::move(phases);
  doc["memory"] = std::move(memory);
  doc["energy"] = std::move(energy);
  doc["carbon"] = std::move(carbon);
  doc["cost"] = std::move(cost);
  if (base.contains("ops")) doc["ops"] = section(base, "ops");
  doc["ranks"] = std::move(ranks_section);
  doc["steps"] = std::move(steps);
  doc["diagnostics"] = std::move(diags);
  return doc;
}

}  // namespace trainmeter::detail
