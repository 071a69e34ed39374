#include "export/merge.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "base/diagnostics.hpp"
#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "base/stats.hpp"
#include "carbon/model.hpp"
#include "report/builder.hpp"
#include "report/json_io.hpp"
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

// Diagnostics a summary carries at most (the rest are counted), and their message length.
constexpr std::size_t kSummaryDiagnostics = 8;
constexpr std::size_t kSummaryMessageChars = 240;
// Bits of the step index inside the MAX field that picks the lowest rank's index.
constexpr int kIndexBits = 40;
constexpr int kMaxRankBits = 22;

// MAX fields of an aligned step.
enum MaxField : int {
  kWallKey = 0,      // (wall_ns << rank_bits) | (mask - rank): the slowest, lowest rank wins
  kNegWallMin = 1,   // -wall_ns: the fastest
  kCpuNs = 2,        // largest cpu_ns, -1 unknown
  kPeakTensor = 3,   // largest peak_tensor_bytes, -1 unknown
  kWarmup = 4,       // 1 when any rank flagged it warm-up
  kNegAbsStart = 5,  // -(start in ns since the epoch): the earliest
  kOrderKey = 6,     // ((mask - rank) << 40) | index: the lowest rank's own index
};
// SUM fields of an aligned step.
enum SumField : int {
  kRanks = 0,
  kSamples = 1,
  kTokens = 2,
  kLossCount = 3,
  kLossMicro = 4,  // loss in millionths, so the sum is exact in any order
  kEnergySeen = 5,
  kEnergyKnown = 6,
  kEnergyMicroJ = 7,
};
static_assert(kOrderKey + 1 == kStepMaxFields && kEnergyMicroJ + 1 == kStepSumFields,
              "field lists and their sizes agree");

std::int64_t rank_mask(int bits) {
  return (std::int64_t(1) << bits) - 1;
}

// One rank's summary, validated by merge_compact().
struct Rank {
  int rank = 0;
  const json* s = nullptr;
  std::string host;  // the host key
};

json pick(const json& obj, std::initializer_list<const char*> keys) {
  if (!obj.is_object()) return nullptr;
  json out = json::object();
  for (const char* k : keys)
    if (obj.contains(k)) out[k] = obj[k];
  return out;
}

}  // namespace

namespace {

using PhaseCounts = std::vector<std::pair<std::string, std::int64_t>>;

// rank_summary() with the facts of steps[] given: whether it is an array, its elements and the
// retained steps per phase in order of first appearance.
json summary_of(const json& report, const std::string& origin, const std::string& host_key,
                bool steps_array, std::size_t elements, const PhaseCounts& step_counts) {
  const json& run = section(report, rk::run);
  const auto r = integer(run, rk::rank);
  const auto w = integer(run, rk::world_size);
  if (!report.is_object() || !run.is_object() || !r || !w || *r < 0 || *w < 1)
    throw Error(
        fmt::format("{}: not a trainmeter report with run.rank and run.world_size", origin));
  // A merged report is rank 0 of world_size N by its run section; merging it again with a rank
  // file would count that rank twice.
  const auto merged_flag = run.find(rk::merged);
  if ((merged_flag != run.end() && *merged_flag == true) || report.contains(rk::ranks))
    throw Error(fmt::format(
        "{}: already a merged report (run.merged); merge the per-rank reports instead", origin));
  const std::string hostname = text(section(report, rk::host), rk::hostname, "unknown");
  // A machine is its hostname and this boot (two machines may share a hostname); a report from
  // before host.boot_id, or from a machine without one, is known by its hostname.
  const std::string boot = text(section(report, rk::host), rk::boot_id);
  const std::string machine = boot.empty() ? hostname : hostname + "/" + boot;
  json s = {
      {rk::rank, *r},
      {rk::world_size, *w},
      {rk::local_rank, integer(run, rk::local_rank) ? json(*integer(run, rk::local_rank)) : json()},
      {rk::hostname, hostname},
      {"host_key", host_key.empty() ? machine : host_key},
      {rk::origin, origin},
      {rk::run_id, text(run, rk::id)},
      {rk::status, text(run, rk::status, "completed")},
      {rk::start_utc, text(run, rk::start_utc)},
      {rk::end_utc, text(run, rk::end_utc)},
      {rk::duration_s, json_or_null(num(run, rk::duration_s))},
      {rk::cpu_time_s, pick(section(run, rk::cpu_time_s), {rk::user, rk::system})}};
  for (const char* k : {rk::steps_recorded, rk::steps_dropped, rk::steps_retained})
    s[k] = integer(run, k) ? json(*integer(run, k)) : json(nullptr);

  // Steps retained per phase, in order of first appearance.
  bool complete = steps_array;
  if (steps_array)
    if (const auto rec = integer(run, rk::steps_recorded))
      complete = static_cast<std::size_t>(*rec) == elements;
  json counts = json::array();
  for (const auto& [phase, n] : step_counts) counts.push_back(json::array({phase, n}));
  s[rk::steps_complete] = complete;
  s["step_counts"] = std::move(counts);

  json phases = json::object();
  for (auto& [name, ph] : section(report, rk::phases).items()) {
    if (!ph.is_object()) continue;
    phases[name] = pick(ph, {rk::steps, rk::warmup_steps, rk::samples, rk::tokens, rk::duration_s,
                             rk::step_time_ns, rk::samples_per_s, rk::energy_j});
  }
  s[rk::phases] = std::move(phases);
  json mem = section(report, rk::memory);
  if (mem.is_object()) mem.erase(rk::timeline);
  s[rk::memory] = std::move(mem);

  const json& e = section(report, rk::energy);
  if (e.is_object()) {
    json comps = json::array();
    if (e.contains(rk::components) && e[rk::components].is_array())
      for (const json& c : e[rk::components])
        comps.push_back(
            pick(c, {rk::name, rk::source, rk::provenance, rk::machine_energy_j, rk::energy_j,
                     rk::attributed_share, rk::average_power_w, rk::machine_average_power_w,
                     rk::attribution, rk::samples, rk::discarded_intervals, rk::failed_reads}));
    s[rk::energy] = pick(e, {rk::total_j, rk::total_kwh_with_pue, rk::samples});
    s[rk::energy][rk::components] = std::move(comps);
  } else {
    s[rk::energy] = nullptr;
  }
  s[rk::carbon] = pick(section(report, rk::carbon), {rk::intensity_g_per_kwh, rk::pue, rk::co2e_kg,
                                                     rk::energy_kwh, rk::energy_kwh_with_pue});
  const json& cost = section(report, rk::cost);
  s[rk::cost] = pick(cost, {rk::compute, rk::energy});
  if (cost.is_object())
    s[rk::cost][rk::inputs] = pick(section(cost, rk::inputs), {rk::duration_h, rk::energy_kwh});

  json diags = json::array();
  std::size_t omitted = 0;
  const json& d = section(report, rk::diagnostics);
  if (d.is_array())
    for (const json& x : d) {
      if (!x.is_object()) continue;
      if (diags.size() >= kSummaryDiagnostics) {
        ++omitted;
        continue;
      }
      json c = pick(x, {rk::source, rk::status, rk::count, rk::message, rk::last_message});
      for (const char* k : {rk::message, rk::last_message})
        if (c.contains(k) && c[k].is_string() &&
            c[k].get<std::string>().size() > kSummaryMessageChars)
          c[k] = c[k].get<std::string>().substr(0, kSummaryMessageChars) + "...";
      diags.push_back(std::move(c));
    }
  s[rk::diagnostics] = std::move(diags);
  s["diagnostics_omitted"] = omitted;
  return s;
}

}  // namespace

json rank_summary(const json& report, const std::string& origin, const std::string& host_key) {
  const json& steps = section(report, rk::steps);
  PhaseCounts counts;
  if (steps.is_array()) {
    std::map<std::string, std::int64_t> n;
    for (const json& st : steps) {
      if (!st.is_object() || !integer(st, rk::wall_ns)) continue;
      const std::string p = text(st, rk::phase, "train");
      if (n[p]++ == 0) counts.emplace_back(p, 0);
    }
    for (auto& [phase, count] : counts) count = n[phase];
  }
  return summary_of(report, origin, host_key, steps.is_array(), steps.is_array() ? steps.size() : 0,
                    counts);
}

json rank_summary(const json& sections, const LocalSteps& steps, const std::string& origin,
                  const std::string& host_key) {
  return summary_of(sections, origin, host_key, section(sections, rk::steps).is_array(),
                    steps.elements(), steps.counts());
}

std::int64_t StepPlan::total() const {
  std::int64_t t = 0;
  for (std::int64_t c : counts) t += c;
  return t;
}

StepPlan step_plan(const std::vector<json>& summaries, int world_size) {
  StepPlan plan;
  std::vector<const json*> sorted;
  for (const json& s : summaries) sorted.push_back(&s);
  std::stable_sort(sorted.begin(), sorted.end(), [](const json* a, const json* b) {
    return integer(*a, rk::rank).value_or(0) < integer(*b, rk::rank).value_or(0);
  });
  std::map<std::string, std::int64_t> most;
  auto note = [&](const std::string& p) {
    if (std::find(plan.phases.begin(), plan.phases.end(), p) == plan.phases.end())
      plan.phases.push_back(p);
  };
  for (const json* s : sorted)
    for (auto& [name, _] : section(*s, rk::phases).items()) note(name);
  for (const json* s : sorted) {
    const json& counts = section(*s, "step_counts");
    if (!counts.is_array()) continue;
    for (const json& c : counts) {
      if (!c.is_array() || c.size() != 2 || !c[0].is_string() || !c[1].is_number_integer())
        continue;
      note(c[0].get<std::string>());
      most[c[0].get<std::string>()] =
          std::max(most[c[0].get<std::string>()], c[1].get<std::int64_t>());
    }
  }
  for (const std::string& p : plan.phases) plan.counts.push_back(most[p]);
  while (plan.rank_bits < kMaxRankBits && (std::int64_t(1) << plan.rank_bits) < world_size)
    ++plan.rank_bits;
  return plan;
}

void identity_steps(std::int64_t n, std::int64_t* max, std::int64_t* sum) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t* m = max + i * kStepMaxFields;
    m[kWallKey] = -1;
    m[kNegWallMin] = kMin;
    m[kCpuNs] = -1;
    m[kPeakTensor] = -1;
    m[kWarmup] = 0;
    m[kNegAbsStart] = kMin;
    m[kOrderKey] = -1;
    std::fill(sum + i * kStepSumFields, sum + (i + 1) * kStepSumFields, 0);
  }
}

LocalSteps::LocalSteps(const json& report, const json& summary) {
  bind(summary);
  const json& steps = section(report, rk::steps);
  if (!steps.is_array()) return;
  for (const json& s : steps) add(s);
}

void LocalSteps::bind(const json& summary) {
  rank_ = static_cast<int>(integer(summary, rk::rank).value_or(0));
  start_unix_ns_ = parse_utc(text(summary, rk::start_utc));
}

void LocalSteps::add(const json& s) {
  ++elements_;
  const auto wall = integer(s, rk::wall_ns);
  if (!s.is_object() || !wall) return;
  const std::string phase = text(s, rk::phase, "train");
  auto it = by_phase_.find(phase);
  if (it == by_phase_.end()) {
    order_.push_back(phase);
    it = by_phase_.emplace(phase, std::vector<Step>()).first;
  }
  Step st{};
  st.wall_ns = *wall;
  st.cpu_ns = std::max<std::int64_t>(integer(s, rk::cpu_ns).value_or(-1), -1);
  st.peak_tensor_bytes = std::max<std::int64_t>(integer(s, rk::peak_tensor_bytes).value_or(-1), -1);
  const auto warm = s.find(rk::warmup);
  st.warmup = warm != s.end() && warm->is_boolean() && warm->get<bool>();
  if (const auto off = integer(s, rk::start_offset_ns)) {
    st.has_start_offset = true;
    st.start_offset_ns = *off;
  }
  st.index = integer(s, rk::index).value_or(0);
  st.samples = integer(s, rk::samples).value_or(0);
  st.tokens = integer(s, rk::tokens).value_or(0);
  if (const auto l = num(s, rk::loss)) {
    st.has_loss = true;
    st.loss_micro = std::llround(std::clamp(*l, -9e12, 9e12) * 1e6);
  }
  st.energy_seen = s.contains(rk::energy_j);
  if (const auto e = num(s, rk::energy_j)) {
    st.energy_known = true;
    st.energy_micro_j = std::llround(std::clamp(*e, 0.0, 9e12) * 1e6);
  }
  it->second.push_back(st);
}

std::vector<std::pair<std::string, std::int64_t>> LocalSteps::counts() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (const std::string& p : order_)
    out.emplace_back(p, static_cast<std::int64_t>(by_phase_.at(p).size()));
  return out;
}

void LocalSteps::encode(const StepPlan& plan, std::int64_t first, std::int64_t n, std::int64_t* max,
                        std::int64_t* sum) const {
  identity_steps(n, max, sum);
  const std::int64_t mask = rank_mask(plan.rank_bits);
  const std::int64_t wall_limit = (std::int64_t(1) << (62 - plan.rank_bits)) - 1;
  const std::int64_t index_limit = (std::int64_t(1) << kIndexBits) - 1;
  const std::int64_t mine = mask - std::min<std::int64_t>(rank_, mask);
  std::int64_t base = 0;  // plan index of the phase's first step
  for (std::size_t pi = 0; pi < plan.phases.size(); ++pi) {
    const std::int64_t count = plan.counts[pi];
    const std::int64_t lo = std::max(first, base), hi = std::min(first + n, base + count);
    const auto it = by_phase_.find(plan.phases[pi]);
    for (std::int64_t t = lo; it != by_phase_.end() && t < hi; ++t) {
      const std::size_t ordinal = static_cast<std::size_t>(t - base);
      if (ordinal >= it->second.size()) break;
      const Step& s = it->second[ordinal];
      std::int64_t* m = max + (t - first) * kStepMaxFields;
      std::int64_t* u = sum + (t - first) * kStepSumFields;
      const std::int64_t w = std::clamp<std::int64_t>(s.wall_ns, 0, wall_limit);
      m[kWallKey] = (w << plan.rank_bits) | mine;
      m[kNegWallMin] = -w;
      m[kCpuNs] = s.cpu_ns;
      m[kPeakTensor] = s.peak_tensor_bytes;
      m[kWarmup] = s.warmup;
      if (start_unix_ns_ && s.has_start_offset)
        m[kNegAbsStart] = -(*start_unix_ns_ + s.start_offset_ns);
      m[kOrderKey] = (mine << kIndexBits) | std::clamp<std::int64_t>(s.index, 0, index_limit);
      u[kRanks] = 1;
      u[kSamples] = s.samples;
      u[kTokens] = s.tokens;
      if (s.has_loss) {
        u[kLossCount] = 1;
        u[kLossMicro] = s.loss_micro;
      }
      u[kEnergySeen] = s.energy_seen;
      if (s.energy_known) {
        u[kEnergyKnown] = 1;
        u[kEnergyMicroJ] = s.energy_micro_j;
      }
    }
    base += count;
  }
}

MergedSteps::MergedSteps(const StepPlan& plan, const ReducedSteps& reduced,
                         const std::vector<json>& summaries)
    : plan_(&plan), reduced_(&reduced) {
  for (const json& s : summaries)
    if (const auto st = parse_utc(text(s, rk::start_utc)))
      run_start_ns_ = std::min(run_start_ns_.value_or(*st), *st);
  std::int64_t t = 0;
  const std::size_t cells = reduced.max.size() / kStepMaxFields;
  for (std::size_t pi = 0; pi < plan.phases.size(); ++pi)
    for (std::int64_t i = 0; i < plan.counts[pi] && static_cast<std::size_t>(t) < cells; ++i, ++t) {
      const std::int64_t* m = &reduced.max[static_cast<std::size_t>(t * kStepMaxFields)];
      if (m[kWallKey] < 0) continue;  // no present rank retained it
      aligned_.push_back({t, pi, m[kOrderKey] & ((std::int64_t(1) << kIndexBits) - 1)});
    }
  std::stable_sort(aligned_.begin(), aligned_.end(), [](const Aligned& a, const Aligned& b) {
    if (a.sort_index != b.sort_index) return a.sort_index < b.sort_index;
    return a.phase_order < b.phase_order;
  });
}

MergedSteps::Step MergedSteps::decode(std::size_t i) const {
  const Aligned& a = aligned_[i];
  const std::int64_t* m = &reduced_->max[static_cast<std::size_t>(a.t * kStepMaxFields)];
  const std::int64_t* u = &reduced_->sum[static_cast<std::size_t>(a.t * kStepSumFields)];
  const std::int64_t mask = rank_mask(plan_->rank_bits);
  Step s{};
  s.phase = &plan_->phases[a.phase_order];
  s.wall_max = m[kWallKey] >> plan_->rank_bits;
  s.slowest = static_cast<int>(mask - (m[kWallKey] & mask));
  s.wall_min = -m[kNegWallMin];
  s.multi = u[kRanks] >= 2;
  s.warmup = m[kWarmup] > 0;
  s.samples = static_cast<std::uint64_t>(u[kSamples]);
  s.tokens = static_cast<std::uint64_t>(u[kTokens]);
  s.offset = 0;
  if (m[kNegAbsStart] != std::numeric_limits<std::int64_t>::min() && run_start_ns_)
    s.offset = -m[kNegAbsStart] - *run_start_ns_;
  s.cpu_ns = m[kCpuNs];
  s.peak_tensor_bytes = m[kPeakTensor];
  s.ranks = u[kRanks];
  s.loss_count = u[kLossCount];
  s.loss_micro = u[kLossMicro];
  s.energy_seen = u[kEnergySeen];
  s.energy_known = u[kEnergyKnown];
  s.energy_micro_j = u[kEnergyMicroJ];
  return s;
}

json MergedSteps::at(std::size_t i) const {
  const Step st = decode(i);
  json s = {
      {rk::index, i},
      {rk::phase, *st.phase},
      {rk::start_offset_ns, st.offset},
      {rk::wall_ns, st.wall_max},
      {rk::cpu_ns, st.cpu_ns >= 0 ? json(st.cpu_ns) : json(nullptr)},
      {rk::samples, st.samples},
      {rk::tokens, st.tokens},
      {rk::warmup, st.warmup},
      {rk::loss, st.loss_count > 0 ? json(1e-6 * double(st.loss_micro) / double(st.loss_count))
                                   : json(nullptr)},
      {rk::peak_tensor_bytes,
       st.peak_tensor_bytes >= 0 ? json(st.peak_tensor_bytes) : json(nullptr)},
      {rk::ranks, st.ranks},
      {"slowest_rank", st.slowest},
      {"spread_ns", st.multi ? json(st.wall_max - st.wall_min) : json(nullptr)}};
  if (st.energy_seen > 0)
    s[rk::energy_j] =
        st.energy_known == st.ranks ? json(1e-6 * double(st.energy_micro_j)) : json(nullptr);
  return s;
}

json merge_compact(const json& base, const std::vector<json>& summaries, const StepPlan& plan,
                   const ReducedSteps& reduced, const MergeOptions& options, bool with_steps) {
  if (summaries.empty()) throw Error("cannot merge: no reports given");
  std::vector<Rank> ranks;
  for (const json& s : summaries)
    ranks.push_back({static_cast<int>(integer(s, rk::rank).value_or(0)), &s, text(s, "host_key")});
  std::sort(ranks.begin(), ranks.end(),
            [](const Rank& a, const Rank& b) { return a.rank < b.rank; });
  auto origin = [](const Rank& k) { return text(*k.s, rk::origin); };

  std::string problems;
  int world_size = options.world_size;
  const std::int64_t first_world = integer(*ranks[0].s, rk::world_size).value_or(1);
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    const json& s = *ranks[i].s;
    if (i > 0 && ranks[i].rank == ranks[i - 1].rank)
      problems += fmt::format("; {} and {} are both rank {}", origin(ranks[i - 1]),
                              origin(ranks[i]), ranks[i].rank);
    if (integer(s, rk::world_size).value_or(0) != first_world)
      problems +=
          fmt::format("; {}: world_size {} differs from {}'s {}", origin(ranks[i]),
                      integer(s, rk::world_size).value_or(0), origin(ranks[0]), first_world);
    if (!options.allow_mixed_run_ids && text(s, rk::run_id) != text(*ranks[0].s, rk::run_id))
      problems += fmt::format(
          "; {}: run.id '{}' differs from {}'s '{}' (not the same run; "
          "--allow-mixed-ids merges anyway)",
          origin(ranks[i]), text(s, rk::run_id), origin(ranks[0]), text(*ranks[0].s, rk::run_id));
  }
  if (world_size <= 0) world_size = static_cast<int>(first_world);
  for (const Rank& k : ranks)
    if (k.rank >= world_size)
      problems +=
          fmt::format("; {}: rank {} is outside world_size {}", origin(k), k.rank, world_size);
  const std::int64_t total = plan.total();
  if (static_cast<std::int64_t>(reduced.max.size()) != total * kStepMaxFields ||
      static_cast<std::int64_t>(reduced.sum.size()) != total * kStepSumFields)
    problems += "; the reduced steps do not match the step plan";
  if (!problems.empty()) throw Error("cannot merge:" + problems.substr(1));

  const json& base_run = section(base, rk::run);
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
    missing.push_back({{rk::rank, r}, {rk::reason, reason}});
    missing_ranks.push_back(r);
  }
  if (!missing_ranks.empty()) {
    std::string list;
    for (const json& m : missing)
      list += fmt::format("{}rank {} ({})", list.empty() ? "" : "; ", m[rk::rank].get<int>(),
                          m[rk::reason].get<std::string>());
    diagnostics.push_back({{rk::source, "merge"},
                           {rk::status, diag::kUnavailable},
                           {rk::count, missing_ranks.size()},
                           {rk::message, "missing from the merged report: " + list},
                           {rk::last_message, nullptr}});
  }
  std::string incomplete;
  for (const Rank& k : ranks)
    if (!section(*k.s, rk::steps_complete).is_boolean() || !(*k.s)[rk::steps_complete].get<bool>())
      incomplete += fmt::format("{}{}", incomplete.empty() ? "" : ", ", k.rank);
  if (!incomplete.empty())
    diagnostics.push_back(
        {{rk::source, "merge"},
         {rk::status, diag::kSkipped},
         {rk::count, 1},
         {rk::message, "rank(s) " + incomplete +
                           " did not retain every step: per-step figures (slowest rank, spread, "
                           "merged phase statistics) cover the retained steps only"},
         {rk::last_message, nullptr}});

  // --- aligned steps, from the reduced fields --------------------------------------------------
  const MergedSteps merged(plan, reduced, summaries);
  std::optional<std::int64_t> run_start_ns = merged.run_start_ns_, run_end_ns;
  for (const Rank& k : ranks)
    if (const auto end = parse_utc(text(*k.s, rk::end_utc)))
      run_end_ns = std::max(run_end_ns.value_or(*end), *end);

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
  for (std::size_t i = 0; i < merged.size(); ++i) {
    const MergedSteps::Step st = merged.decode(i);
    const std::string& phase = *st.phase;
    const std::int64_t wall_max = st.wall_max, wall_min = st.wall_min;
    const int slowest = st.slowest;
    const bool multi = st.multi, warmup = st.warmup;
    const std::uint64_t samples = st.samples, tokens = st.tokens;
    if (with_steps) steps.push_back(merged.at(i));

    PhaseAcc& pa = acc[phase];
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

  const int base_rank = static_cast<int>(integer(base_run, rk::rank).value_or(ranks[0].rank));
  // Hosts are told apart by their key (hostname + boot id); they are shown by hostname, with the
  // key where two machines share one.
  std::map<std::string, std::string> label;
  {
    std::map<std::string, std::set<std::string>> keys_of;
    for (const Rank& k : ranks) keys_of[text(*k.s, rk::hostname)].insert(k.host);
    for (const Rank& k : ranks) {
      const std::string h = text(*k.s, rk::hostname);
      label[k.host] = keys_of[h].size() > 1 ? k.host : h;
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
  for (const std::string& p : plan.phases) {
    std::vector<const json*> rank_phases;
    for (const Rank& k : ranks) {
      const json& ph = section(*k.s, rk::phases);
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
          {rk::steps, pa.steps},
          {rk::warmup_steps, pa.warmup},
          {rk::samples, pa.samples},
          {rk::tokens, pa.tokens},
          {rk::duration_s, duration_s},
          {rk::step_time_ns, exact_stats_json(pa.wall)},
          {rk::cpu_time_ns, nullptr},
          {rk::samples_per_s, pa.samples > 0 && duration_s > 0
                                  ? json(double(pa.samples) / duration_s)
                                  : json(nullptr)},
          {rk::tokens_per_s,
           pa.tokens > 0 && duration_s > 0 ? json(double(pa.tokens) / duration_s) : json(nullptr)},
          {rk::loss, nullptr},
          {"step_time_basis", "slowest rank per aligned step"},
          {"spread_ns", pa.multi > 0 ? json({{rk::mean, pa.spread_sum / double(pa.multi)},
                                             {rk::max, pa.spread_max}})
                                     : json(nullptr)},
          {rk::slowest_rank_counts, counts_json(pa.slowest)},
          {rk::straggler_rank, most_often(pa.slowest)}};
    } else {
      // No retained steps of this phase anywhere: only the ranks' own aggregates are known.
      std::uint64_t steps_n = 0, warm = 0, samples = 0, tokens = 0;
      double duration_s = 0;
      for (const json* ph : rank_phases) {
        steps_n = std::max<std::uint64_t>(steps_n, integer(*ph, rk::steps).value_or(0));
        warm = std::max<std::uint64_t>(warm, integer(*ph, rk::warmup_steps).value_or(0));
        samples += static_cast<std::uint64_t>(integer(*ph, rk::samples).value_or(0));
        tokens += static_cast<std::uint64_t>(integer(*ph, rk::tokens).value_or(0));
        duration_s = std::max(duration_s, num(*ph, rk::duration_s).value_or(0));
      }
      out = {{rk::steps, steps_n},
             {rk::warmup_steps, warm},
             {rk::samples, samples},
             {rk::tokens, tokens},
             {rk::duration_s, duration_s},
             {rk::step_time_ns, nullptr},
             {rk::cpu_time_ns, nullptr},
             {rk::samples_per_s,
              samples > 0 && duration_s > 0 ? json(double(samples) / duration_s) : json(nullptr)},
             {rk::tokens_per_s,
              tokens > 0 && duration_s > 0 ? json(double(tokens) / duration_s) : json(nullptr)},
             {rk::loss, nullptr},
             {"step_time_basis", "no retained steps: duration_s is the slowest rank's phase total"},
             {"spread_ns", nullptr},
             {rk::slowest_rank_counts, json::object()},
             {rk::straggler_rank, nullptr}};
    }
    bool energy_seen = false;
    for (const json* ph : rank_phases) energy_seen = energy_seen || ph->contains(rk::energy_j);
    if (energy_seen)
      out[rk::energy_j] = rank_phases.size() == ranks.size()
                              ? json_or_null(sum_all(rank_phases, rk::energy_j))
                              : json(nullptr);
    phases[p] = std::move(out);
  }

  // --- energy: attributed shares summed, machine counters once per host and source ---------------
  json energy = nullptr;
  std::vector<const json*> rank_energy;
  for (const Rank& k : ranks)
    if (section(*k.s, rk::energy).is_object()) rank_energy.push_back(&section(*k.s, rk::energy));
  if (!rank_energy.empty() && section(base, rk::energy).is_object()) {
    energy = section(base, rk::energy);
    const json& base_components = section(energy, rk::components);
    struct Group {
      std::string host, name, source;
      json first;
      std::vector<int> ranks;
      std::vector<const json*> parts;
    };
    std::vector<Group> groups;
    for (const Rank& k : ranks) {
      const json& e = section(*k.s, rk::energy);
      if (!e.is_object() || !e.contains(rk::components) || !e[rk::components].is_array()) continue;
      for (const json& c : e[rk::components]) {
        const std::string name = text(c, rk::name), source = text(c, rk::source);
        auto g = std::find_if(groups.begin(), groups.end(), [&](const Group& x) {
          return x.host == k.host && x.name == name && x.source == source;
        });
        if (g == groups.end()) {
          // The base rank's own component (with its inputs and notes) where it has one.
          json first = c;
          if (k.rank == base_rank && base_components.is_array())
            for (const json& b : base_components)
              if (text(b, rk::name) == name && text(b, rk::source) == source) first = b;
          groups.push_back({k.host, name, source, std::move(first), {}, {}});
          g = groups.end() - 1;
        }
        g->ranks.push_back(k.rank);
        g->parts.push_back(&c);
      }
    }
    json components = json::array();
    // A plain sum and a flag, not an optional (GCC 12 -O2 reports a maybe-uninitialized payload).
    double machine_sum = 0.0;
    bool machine_known = true;
    json per_host = json::object();
    for (const Group& g : groups) {
      json c = g.first;
      const auto attributed = sum_all(g.parts, rk::energy_j);
      std::optional<double> machine;
      for (const json* p : g.parts)
        if (const auto m = num(*p, rk::machine_energy_j))
          machine = std::max(machine.value_or(*m), *m);
      std::optional<double> machine_power;
      for (const json* p : g.parts)
        if (const auto m = num(*p, rk::machine_average_power_w))
          machine_power = std::max(machine_power.value_or(*m), *m);
      std::uint64_t samples = 0, discarded = 0, failed = 0;
      for (const json* p : g.parts) {
        samples += static_cast<std::uint64_t>(integer(*p, rk::samples).value_or(0));
        discarded += static_cast<std::uint64_t>(integer(*p, rk::discarded_intervals).value_or(0));
        failed += static_cast<std::uint64_t>(integer(*p, rk::failed_reads).value_or(0));
      }
      c[rk::host] = label.at(g.host);
      c[rk::ranks] = g.ranks;
      c[rk::energy_j] = json_or_null(attributed);
      if (c.contains(rk::machine_energy_j)) c[rk::machine_energy_j] = json_or_null(machine);
      if (c.contains(rk::attributed_share))
        // Ranks read the counter over slightly different windows: keep the share a fraction.
        c[rk::attributed_share] = attributed && machine && *machine > 0
                                      ? json(std::min(*attributed / *machine, 1.0))
                                      : json(nullptr);
      if (c.contains(rk::average_power_w))
        c[rk::average_power_w] = json_or_null(sum_all(g.parts, rk::average_power_w));
      if (c.contains(rk::machine_average_power_w))
        c[rk::machine_average_power_w] = json_or_null(machine_power);
      if (c.contains(rk::samples)) c[rk::samples] = samples;
      if (c.contains(rk::discarded_intervals)) c[rk::discarded_intervals] = discarded;
      if (c.contains(rk::failed_reads)) c[rk::failed_reads] = failed;
      if (g.ranks.size() > 1) {
        json notes =
            c.contains(rk::notes) && c[rk::notes].is_array() ? c[rk::notes] : json::array();
        notes.push_back(machine ? fmt::format("merged over ranks on host {}: energy_j summed; the "
                                              "machine counter counted once (largest reading)",
                                              label.at(g.host))
                                : fmt::format("merged over ranks on host {}: energy_j summed",
                                              label.at(g.host)));
        c[rk::notes] = std::move(notes);
      }
      const std::optional<double> counted = machine ? machine : attributed;
      if (counted)
        machine_sum += *counted;
      else
        machine_known = false;
      json& h = per_host[label.at(g.host)];
      if (!h.is_object())
        h = {{rk::ranks, json::array()}, {rk::energy_j, 0.0}, {rk::machine_energy_j, 0.0}};
      for (int r : g.ranks)
        if (std::find(h[rk::ranks].begin(), h[rk::ranks].end(), json(r)) == h[rk::ranks].end())
          h[rk::ranks].push_back(r);
      if (h[rk::energy_j].is_number() && attributed)
        h[rk::energy_j] = h[rk::energy_j].get<double>() + *attributed;
      else
        h[rk::energy_j] = nullptr;
      if (h[rk::machine_energy_j].is_number() && counted)
        h[rk::machine_energy_j] = h[rk::machine_energy_j].get<double>() + *counted;
      else
        h[rk::machine_energy_j] = nullptr;
      components.push_back(std::move(c));
    }
    energy[rk::components] = std::move(components);
    const bool all_ranks = rank_energy.size() == ranks.size();
    const auto total = all_ranks ? sum_all(rank_energy, rk::total_j) : std::nullopt;
    energy[rk::total_j] = json_or_null(total);
    energy[rk::total_kwh] = total ? json(*total / kJoulesPerKwh) : json(nullptr);
    if (energy.contains(rk::total_kwh_with_pue))
      energy[rk::total_kwh_with_pue] =
          all_ranks ? json_or_null(sum_all(rank_energy, rk::total_kwh_with_pue)) : json(nullptr);
    energy["machine_total_j"] = machine_known ? json_or_null(machine_sum) : json(nullptr);
    energy["per_host"] = std::move(per_host);
    std::uint64_t ticks = 0;
    for (const json* e : rank_energy)
      ticks += static_cast<std::uint64_t>(integer(*e, rk::samples).value_or(0));
    if (energy.contains(rk::samples)) energy[rk::samples] = ticks;
    energy["merge"] =
        "total_j sums every rank's attributed energy (each process's share of machine-level "
        "counters, plus per-process estimates); machine_total_j counts each host's machine-level "
        "counters (RAPL package/DRAM, GPU boards) once, whichever ranks read them, plus components "
        "without a machine figure. sources_tried and timeline are the lowest rank's.";
  }

  // --- carbon and cost -------------------------------------------------------------------------
  json carbon = section(base, rk::carbon);
  if (carbon.is_object()) {
    std::vector<const json*> parts;
    bool same = true;
    json per_rank = json::array();
    for (const Rank& k : ranks) {
      const json& c = section(*k.s, rk::carbon);
      if (!c.is_object()) continue;
      parts.push_back(&c);
      same = same && num(c, rk::intensity_g_per_kwh) == num(carbon, rk::intensity_g_per_kwh) &&
             num(c, rk::pue) == num(carbon, rk::pue);
      per_rank.push_back({{rk::rank, k.rank},
                          {rk::intensity_g_per_kwh, json_or_null(num(c, rk::intensity_g_per_kwh))},
                          {rk::pue, json_or_null(num(c, rk::pue))},
                          {rk::co2e_kg, json_or_null(num(c, rk::co2e_kg))}});
    }
    const bool all = parts.size() == ranks.size();
    // Assigned, not `all ? sum : nullopt` (GCC 12 -O2 then warns maybe-uninitialized).
    std::optional<double> kwh, kwh_pue, kg;
    if (all) {
      kwh = sum_all(parts, rk::energy_kwh);
      kwh_pue = sum_all(parts, rk::energy_kwh_with_pue);
      kg = sum_all(parts, rk::co2e_kg);
    }
    carbon[rk::energy_kwh] = json_or_null(kwh);
    carbon[rk::energy_kwh_with_pue] = json_or_null(kwh_pue);
    carbon[rk::co2e_kg] = json_or_null(kg);
    carbon[rk::equivalents] = equivalents_json(kg);
    if (!same && kg && kwh_pue && *kwh_pue > 0) {
      // Ranks in different grids: the merged intensity is the energy-weighted mean.
      carbon[rk::intensity_g_per_kwh] = *kg * 1000.0 / *kwh_pue;
      carbon[rk::pue] = *kwh_pue / *kwh;
    }
    carbon[rk::per_rank] = std::move(per_rank);
  }
  json cost = section(base, rk::cost);
  if (cost.is_object()) {
    std::map<std::string, std::optional<double>> compute_by_host;
    std::vector<const json*> parts;
    std::optional<double> duration_h;
    bool compute_known = true;
    for (const Rank& k : ranks) {
      const json& c = section(*k.s, rk::cost);
      if (!c.is_object()) continue;
      parts.push_back(&c);
      const auto v = num(c, rk::compute);
      if (!v) compute_known = false;
      if (v) compute_by_host[k.host] = std::max(compute_by_host[k.host].value_or(*v), *v);
      if (const auto d = num(section(c, rk::inputs), rk::duration_h))
        duration_h = std::max(duration_h.value_or(*d), *d);
    }
    const bool all = parts.size() == ranks.size();
    const bool compute_priced = num(section(cost, rk::inputs), rk::price_per_hour).has_value();
    const bool energy_priced = num(section(cost, rk::inputs), rk::energy_price_per_kwh).has_value();
    // Plain doubles with flags: GCC 12 misreports std::optional<double> here as uninitialised.
    const bool compute_ok = compute_priced && compute_known && all;
    double compute = 0;
    for (const auto& [h, v] : compute_by_host) compute += v.value_or(0);
    const std::optional<double> energy_sum = sum_all(parts, rk::energy);
    const bool energy_ok = energy_priced && all && energy_sum.has_value();
    const double energy_cost = energy_sum.value_or(0.0);
    // compute_cost()'s rule: an unpriced part is left out, a priced but unknown part makes the
    // total unknown.
    const bool total_ok = (!compute_priced || compute_ok) && (!energy_priced || energy_ok);
    const double total = (compute_priced ? compute : 0.0) + (energy_priced ? energy_cost : 0.0);
    cost[rk::compute] = compute_ok ? json(compute) : json(nullptr);
    cost[rk::energy] = energy_ok ? json(energy_cost) : json(nullptr);
    cost[rk::total] = total_ok ? json(total) : json(nullptr);
    if (cost[rk::inputs].is_object()) {
      cost[rk::inputs][rk::duration_h] = json_or_null(duration_h);
      std::vector<const json*> inputs;
      for (const json* c : parts) inputs.push_back(&(*c)[rk::inputs]);
      cost[rk::inputs][rk::energy_kwh] =
          all ? json_or_null(sum_all(inputs, rk::energy_kwh)) : json(nullptr);
    }
    cost[rk::formula] = text(cost, rk::formula) +
                        " Merged over ranks: the instance price counts once per host (the longest "
                        "rank's compute cost on that host); energy cost is summed over ranks.";
  }

  // --- memory: the largest of each peak; every rank's own in ranks.per_rank --------------------
  json memory = section(base, rk::memory);
  if (memory.is_object()) {
    std::vector<const json*> mems;
    for (const Rank& k : ranks)
      if (section(*k.s, rk::memory).is_object()) mems.push_back(&section(*k.s, rk::memory));
    max_bytes(memory, mems, false);
    memory["merge"] = fmt::format(
        "every *_bytes figure is the largest over ranks (per-rank figures in ranks.per_rank); "
        "non-byte fields and timelines are rank {}'s",
        base_rank);
  }

  // --- ranks section ---------------------------------------------------------------------------
  json per_rank = json::array();
  std::map<std::string, std::vector<int>> hosts;
  for (const Rank& k : ranks) {
    const json& run = *k.s;
    hosts[label.at(k.host)].push_back(k.rank);
    const auto steps_it = slowest_total.find(k.rank);
    json phase_stats = json::object();
    for (auto& [name, ph] : section(run, rk::phases).items()) {
      if (!ph.is_object()) continue;
      phase_stats[name] = {{rk::steps, ph.value(rk::steps, json(nullptr))},
                           {rk::warmup_steps, ph.value(rk::warmup_steps, json(nullptr))},
                           {rk::samples, ph.value(rk::samples, json(nullptr))},
                           {rk::duration_s, ph.value(rk::duration_s, json(nullptr))},
                           {rk::step_time_ns, ph.value(rk::step_time_ns, json(nullptr))},
                           {rk::samples_per_s, ph.value(rk::samples_per_s, json(nullptr))},
                           {rk::energy_j, ph.value(rk::energy_j, json(nullptr))}};
    }
    per_rank.push_back(
        {{rk::rank, k.rank},
         {rk::local_rank,
          integer(run, rk::local_rank) ? json(*integer(run, rk::local_rank)) : json(nullptr)},
         {rk::hostname, text(run, rk::hostname)},
         {rk::origin, text(run, rk::origin)},
         {rk::run_id, text(run, rk::run_id)},
         {rk::status, text(run, rk::status, "completed")},
         {rk::start_utc, text(run, rk::start_utc)},
         {rk::duration_s, json_or_null(num(run, rk::duration_s))},
         {rk::steps_recorded, integer(run, rk::steps_recorded)
                                  ? json(*integer(run, rk::steps_recorded))
                                  : json(nullptr)},
         {rk::steps_complete, run.value(rk::steps_complete, false)},
         {rk::slowest_steps, steps_it != slowest_total.end() ? steps_it->second : 0},
         {rk::phases, std::move(phase_stats)},
         {rk::memory, section(run, rk::memory)},
         {rk::energy_j, json_or_null(num(section(run, rk::energy), rk::total_j))},
         {rk::co2e_kg, json_or_null(num(section(run, rk::carbon), rk::co2e_kg))}});
  }
  json hosts_json = json::object();
  for (const auto& [h, rs] : hosts) hosts_json[h] = rs;
  json present_json = json::array();
  for (int r : present) present_json.push_back(r);
  json ranks_section = {
      {rk::world_size, world_size},
      {rk::present, present_json},
      {rk::missing, std::move(missing)},
      {rk::merged_by, options.merged_by},
      {rk::hosts, std::move(hosts_json)},
      {rk::step_alignment,
       "the k-th step of each phase on every rank is one step of the run; its wall_ns is the "
       "slowest rank's, spread_ns = slowest - fastest"},
      {rk::aligned_steps, merged.size()},
      {rk::compared_steps, multi_total},
      {rk::slowest_rank_counts, counts_json(slowest_total)},
      {rk::straggler_rank, most_often(slowest_total)},
      {rk::per_rank, std::move(per_rank)},
      {rk::gather, options.gather}};

  // --- run -------------------------------------------------------------------------------------
  json run = base_run;
  std::string status = "completed";
  double cpu_user = 0, cpu_sys = 0;
  std::uint64_t recorded = 0, dropped = 0, retained = 0;
  std::string start_utc = text(base_run, rk::start_utc), end_utc = text(base_run, rk::end_utc);
  double max_duration = 0;
  for (const Rank& k : ranks) {
    const json& r = *k.s;
    const std::string st = text(r, rk::status, "completed");
    if (status_rank(st) > status_rank(status)) status = st;
    const json& cpu = section(r, rk::cpu_time_s);
    cpu_user += num(cpu, rk::user).value_or(0);
    cpu_sys += num(cpu, rk::system).value_or(0);
    recorded += static_cast<std::uint64_t>(integer(r, rk::steps_recorded).value_or(0));
    dropped += static_cast<std::uint64_t>(integer(r, rk::steps_dropped).value_or(0));
    retained += static_cast<std::uint64_t>(integer(r, rk::steps_retained).value_or(0));
    const std::string s = text(r, rk::start_utc), e = text(r, rk::end_utc);
    if (!s.empty() && s < start_utc) start_utc = s;
    if (!e.empty() && e > end_utc) end_utc = e;
    max_duration = std::max(max_duration, num(r, rk::duration_s).value_or(0));
  }
  if (!missing_ranks.empty() && status == "completed") status = "aborted";
  run[rk::status] = status;
  run[rk::start_utc] = start_utc;
  run[rk::end_utc] = end_utc.empty() ? json(nullptr) : json(end_utc);
  run[rk::duration_s] =
      run_start_ns && run_end_ns ? 1e-9 * double(*run_end_ns - *run_start_ns) : max_duration;
  run[rk::rank] = ranks[0].rank;
  run[rk::world_size] = world_size;
  run.erase(rk::local_rank);
  run.erase(rk::local_world_size);
  run[rk::cpu_time_s] = {{rk::user, cpu_user}, {rk::system, cpu_sys}};
  run[rk::steps_recorded] = recorded;
  run[rk::steps_dropped] = dropped;
  run[rk::steps_retained] = retained;
  run[rk::merged] = true;
  run[rk::ranks_present] = present_json;
  run[rk::missing_ranks] = missing_ranks;
  run[rk::master_addr] = options.master_addr ? json(*options.master_addr) : json(nullptr);
  run[rk::master_port] = options.master_port ? json(*options.master_port) : json(nullptr);

  // --- diagnostics: every rank's, prefixed with its rank, then the merge's own -----------------
  json diags = json::array();
  for (const Rank& k : ranks) {
    const json& d = section(*k.s, rk::diagnostics);
    if (d.is_array())
      for (json e : d) {
        if (!e.is_object()) continue;
        e[rk::source] = fmt::format("rank{}:{}", k.rank, text(e, rk::source));
        diags.push_back(std::move(e));
      }
    if (const auto omitted = integer(*k.s, "diagnostics_omitted"); omitted && *omitted > 0)
      diags.push_back(
          {{rk::source, fmt::format("rank{}:merge", k.rank)},
           {rk::status, diag::kSkipped},
           {rk::count, *omitted},
           {rk::message, fmt::format("{} more diagnostic(s) of this rank are in its own "
                                     "report only (the summary carries {})",
                                     *omitted, kSummaryDiagnostics)},
           {rk::last_message, nullptr}});
  }
  for (json& d : diagnostics) diags.push_back(std::move(d));

  json doc = json::object();
  doc[rk::schema_version] = base.value(rk::schema_version, json(1));
  doc[rk::trainmeter] = {{rk::version, TRAINMETER_VERSION_STRING},
                         {rk::build, TRAINMETER_BUILD_TYPE}};
  doc[rk::run] = std::move(run);
  doc[rk::host] = section(base, rk::host);
  doc[rk::config] =
      section(base, rk::config).is_object() ? section(base, rk::config) : json::object();
  doc[rk::model] = section(base, rk::model);
  doc[rk::phases] = std::move(phases);
  doc[rk::memory] = std::move(memory);
  doc[rk::energy] = std::move(energy);
  doc[rk::carbon] = std::move(carbon);
  doc[rk::cost] = std::move(cost);
  if (base.contains(rk::ops)) doc[rk::ops] = section(base, rk::ops);
  doc[rk::ranks] = std::move(ranks_section);
  doc[rk::steps] = std::move(steps);
  doc[rk::diagnostics] = std::move(diags);
  return doc;
}

namespace {

// Steps reduced at a time by merge_reports() and write_merged_files(), as gather() does in
// blocks: the temporary encoding of one rank is this many steps, not the whole run.
constexpr std::int64_t kReduceBlock = 4096;

// The elementwise MAX and SUM over ranks of every aligned step of `plan`.
ReducedSteps reduce_ranks(const std::vector<const LocalSteps*>& ranks, const StepPlan& plan) {
  const std::int64_t total = plan.total();
  ReducedSteps reduced;
  reduced.max.resize(static_cast<std::size_t>(total * kStepMaxFields));
  reduced.sum.resize(static_cast<std::size_t>(total * kStepSumFields));
  identity_steps(total, reduced.max.data(), reduced.sum.data());
  std::vector<std::int64_t> max(static_cast<std::size_t>(kReduceBlock * kStepMaxFields));
  std::vector<std::int64_t> sum(static_cast<std::size_t>(kReduceBlock * kStepSumFields));
  for (const LocalSteps* rank : ranks)
    for (std::int64_t first = 0; first < total; first += kReduceBlock) {
      const std::int64_t n = std::min(kReduceBlock, total - first);
      rank->encode(plan, first, n, max.data(), sum.data());
      std::int64_t* rm = reduced.max.data() + first * kStepMaxFields;
      std::int64_t* rs = reduced.sum.data() + first * kStepSumFields;
      for (std::int64_t j = 0; j < n * kStepMaxFields; ++j) rm[j] = std::max(rm[j], max[j]);
      for (std::int64_t j = 0; j < n * kStepSumFields; ++j) rs[j] += sum[j];
    }
  return reduced;
}

int world_of(const std::vector<json>& summaries, const MergeOptions& options) {
  int world = options.world_size;
  for (const json& s : summaries)
    world = std::max(world, static_cast<int>(integer(s, rk::world_size).value_or(1)));
  return world;
}

}  // namespace

json merge_reports(const std::vector<RankReport>& inputs, const MergeOptions& options) {
  if (inputs.empty()) throw Error("cannot merge: no reports given");
  std::vector<json> summaries;
  std::vector<const json*> reports;
  std::string problems;
  for (const RankReport& in : inputs) {
    try {
      summaries.push_back(rank_summary(in.report, in.origin));
      reports.push_back(&in.report);
    } catch (const Error& e) {
      problems += std::string("; ") + e.what();
    }
  }
  if (!problems.empty()) throw Error("cannot merge:" + problems.substr(1));
  const StepPlan plan = step_plan(summaries, world_of(summaries, options));
  std::vector<LocalSteps> local;
  std::vector<const LocalSteps*> ranks;
  std::size_t base = 0;
  for (std::size_t i = 0; i < summaries.size(); ++i) {
    local.emplace_back(*reports[i], summaries[i]);
    if (integer(summaries[i], rk::rank) < integer(summaries[base], rk::rank)) base = i;
  }
  for (const LocalSteps& l : local) ranks.push_back(&l);
  return merge_compact(*reports[base], summaries, plan, reduce_ranks(ranks, plan), options);
}

RankFiles read_rank_files(const std::vector<std::string>& paths, const RankFileLoader& load) {
  RankFiles out;
  std::optional<std::int64_t> base_rank;
  for (const std::string& path : paths) {
    LocalSteps steps;
    json sections = load(path, [&](const json& element, std::size_t) { steps.add(element); });
    const json& run = section(sections, rk::run);
    if (const auto w = integer(run, rk::world_size))
      out.world_size = std::max<long long>(out.world_size, *w);
    json summary;
    try {
      summary = rank_summary(sections, steps, path);
    } catch (const Error& e) {
      out.problems += std::string("; ") + e.what();
      continue;
    }
    steps.bind(summary);
    // Only the lowest rank's sections are kept (the first file of that rank, as merge_reports()).
    const std::int64_t rank = integer(summary, rk::rank).value_or(0);
    if (!base_rank || rank < *base_rank) {
      base_rank = rank;
      out.base = std::move(sections);
    }
    out.summaries.push_back(std::move(summary));
    out.steps.push_back(std::move(steps));
  }
  return out;
}

json write_merged_files(RankFiles files, const MergeOptions& options, const std::string& out_path) {
  if (files.summaries.empty() && files.problems.empty())
    throw Error("cannot merge: no reports given");
  if (!files.problems.empty()) throw Error("cannot merge:" + files.problems.substr(1));
  const StepPlan plan = step_plan(files.summaries, world_of(files.summaries, options));
  ReducedSteps reduced;
  {
    std::vector<const LocalSteps*> ranks;
    for (const LocalSteps& l : files.steps) ranks.push_back(&l);
    reduced = reduce_ranks(ranks, plan);
    std::vector<LocalSteps>().swap(files.steps);  // the compact steps are reduced: free them
  }
  json doc = merge_compact(files.base, files.summaries, plan, reduced, options, false);
  files.base = nullptr;
  const MergedSteps merged(plan, reduced, files.summaries);
  AtomicFile file;
  std::string error;
  if (file.open(out_path)) {
    constexpr auto kReplace = json::error_handler_t::replace;
    stream_report_text(
        doc, merged.size(),
        [&](std::size_t i, std::string& text) {
          text += merged.at(i).dump(-1, ' ', false, kReplace);
        },
        [&](const std::string& text) { file.append(text); });
    if (!file.commit()) error = file.error();
  } else {
    error = file.error();
  }
  if (!error.empty()) throw Error(error);
  return doc;
}

}  // namespace trainmeter::detail
