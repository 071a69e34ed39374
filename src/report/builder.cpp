#include "report/builder.hpp"

#include <algorithm>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "carbon/settings.hpp"
#include "core/log.hpp"
#include "platform/host.hpp"
#include "platform/text.hpp"
#include "report/findings.hpp"
#include "report/json_io.hpp"
#include "report/step_json.hpp"
#include "trainmeter/version.hpp"

#ifndef TRAINMETER_BUILD_TYPE
#define TRAINMETER_BUILD_TYPE "unknown"
#endif

namespace trainmeter::detail {

namespace {

using nlohmann::json;

// Duration statistics: moments from the running stats; percentiles exact from the retained
// steps when every counted step is retained (or there is no sketch), else from the sketch.
std::optional<StepTimeStats> duration_stats(const RunningStats& stats, const QuantileSketch* sketch,
                                            std::vector<double> retained, bool exact) {
  if (stats.count() == 0) return std::nullopt;
  exact = exact || sketch == nullptr;
  StepTimeStats s;
  s.mean_ns = stats.mean();
  s.stddev_ns = stats.stddev();
  s.min_ns = static_cast<std::int64_t>(stats.min());
  s.max_ns = static_cast<std::int64_t>(stats.max());
  s.percentiles_exact = exact;
  auto q = [&](double p) -> std::int64_t {
    const double v = exact ? exact_quantile_sorted(retained, p) : sketch->quantile(p);
    // A sketch answer is a bucket midpoint: keep it inside the exact min/max.
    return static_cast<std::int64_t>(std::llround(std::clamp(v, stats.min(), stats.max())));
  };
  if (exact) std::sort(retained.begin(), retained.end());
  s.p50_ns = q(0.50);
  s.p90_ns = q(0.90);
  s.p95_ns = q(0.95);
  s.p99_ns = q(0.99);
  return s;
}

json stats_json(const std::optional<StepTimeStats>& s, double relative_accuracy) {
  if (!s) return nullptr;
  json j = {{rk::mean, s->mean_ns},
            {rk::stddev, s->stddev_ns},
            {rk::min, s->min_ns},
            {rk::p50, s->p50_ns},
            {rk::p90, s->p90_ns},
            {rk::p95, s->p95_ns},
            {rk::p99, s->p99_ns},
            {rk::max, s->max_ns},
            {rk::percentiles_exact, s->percentiles_exact}};
  if (!s->percentiles_exact) j[rk::percentile_relative_error] = relative_accuracy;
  return j;
}

}  // namespace

// Time between consecutive steps of a thread (phases.*.between_steps); null without a gap.
json between_steps_json(const PhaseAggregate& p) {
  if (p.gap.count() == 0) return nullptr;
  const double covered = p.gap_sum_ns + p.gap_step_wall_ns;
  return {{rk::count, p.gap.count()},
          {rk::total_ns, static_cast<std::int64_t>(p.gap_sum_ns)},
          {rk::share_of_wall, covered > 0 ? json(p.gap_sum_ns / covered) : json(nullptr)},
          {rk::p50_ns, json_or_null(p.gap_sketch.quantile(0.5))},
          {rk::p90_ns, json_or_null(p.gap_sketch.quantile(0.9))},
          {rk::max_ns, json_or_null(p.gap.max())},
          {rk::relative_accuracy, p.gap_sketch.relative_accuracy()}};
}

json exact_stats_json(std::vector<double> values) {
  RunningStats stats;
  for (double v : values) stats.add(v);
  return stats_json(duration_stats(stats, nullptr, std::move(values), true), 0);
}

json host_section(const HostInfo& host) {
  return {{rk::hostname, json_or_null(host.hostname)},
          {rk::boot_id, json_or_null(host.boot_id)},
          {rk::os, json_or_null(host.os)},
          {rk::kernel, json_or_null(host.kernel)},
          {rk::cpu_model, json_or_null(host.cpu_model)},
          {rk::logical_cpus, json_or_null(host.logical_cpus)},
          {rk::memory_bytes, json_or_null(host.memory_bytes)},
          {rk::gpus, json::array()},
          {rk::torch_version, nullptr},
          {rk::cuda_version, nullptr}};
}

json build_report(const RunContext& ctx, const RunState& state, Report* out) {
  const Config& c = ctx.config;
  json doc = json::object();
  doc[rk::schema_version] = kReportSchemaVersion;
  doc[rk::trainmeter] = {{rk::version, TRAINMETER_VERSION_STRING},
                         {rk::build, TRAINMETER_BUILD_TYPE}};

  const double duration_s = 1e-9 * double(state.end_ns - ctx.start_ns);
  json run = {{rk::name, c.run_name},
              {rk::id, c.run_id},
              {rk::status, state.status},
              {rk::start_utc, iso_utc(ctx.start_unix_ns)},
              {rk::end_utc, iso_utc(state.end_unix_ns)},
              {rk::duration_s, duration_s},
              {rk::rank, c.rank},
              {rk::world_size, c.world_size},
              {rk::local_rank, c.local_rank},
              {rk::local_world_size, c.local_world_size},
              {rk::command_line, state.command_line},
              {rk::tags, state.tags},
              {rk::cpu_time_s, {{rk::user, state.cpu_user_s}, {rk::system, state.cpu_system_s}}},
              {rk::steps_recorded, state.steps_recorded},
              {rk::steps_dropped, state.steps_dropped + state.open_at_finish},
              {rk::steps_retained, state.records.size()}};
  if (state.total_steps > 0) run["total_steps_expected"] = state.total_steps;
  run[rk::gpu_timing] = nullptr;
  if (state.gpu) {
    const GpuTimingCounts& n = state.gpu->counts;
    run[rk::gpu_timing] = {
        {rk::method, state.gpu->method},
        {rk::active, state.gpu->active},
        {rk::device, state.gpu->active ? json(state.gpu->device) : json(nullptr)},
        {rk::unavailable_reason, state.gpu->unavailable_reason.empty()
                                     ? json(nullptr)
                                     : json(state.gpu->unavailable_reason)},
        {rk::steps_timed, n.timed},
        {rk::steps_before_active, n.before_active},
        {rk::steps_pool_exhausted, n.pool_exhausted},
        {rk::steps_failed, n.record_errors + n.query_errors},
        {rk::steps_unresolved, n.unresolved},
        {rk::busy_ns, n.busy_ns},
        {rk::busy_fraction, duration_s > 0 && n.timed > 0
                                ? json(1e-9 * double(n.busy_ns) / duration_s)
                                : json(nullptr)}};
  }
  doc[rk::run] = std::move(run);

  const HostInfo host = read_host_info(c.proc_root);
  doc[rk::host] = host_section(host);

  json config = json::object();
  for (const ConfigKey& key : config_keys()) config[key.name] = c.get(key.name);
  doc[rk::config] = std::move(config);
  doc[rk::model] = nullptr;

  // Phases, in first-use order.
  json phases = json::object();
  std::vector<std::vector<double>> wall_by_phase(state.phases.size()),
      cpu_by_phase(state.phases.size()), gpu_by_phase(state.phases.size());
  for (const StepRecord& r : state.records) {
    if ((r.flags & kStepWarmup) != 0 || r.phase >= state.phases.size()) continue;
    wall_by_phase[r.phase].push_back(double(r.wall_ns));
    if (r.cpu_ns >= 0) cpu_by_phase[r.phase].push_back(double(r.cpu_ns));
    if (r.gpu_ns >= 0) gpu_by_phase[r.phase].push_back(double(r.gpu_ns));
  }
  for (std::size_t i = 0; i < state.phases.size(); ++i) {
    const PhaseAggregate& p = state.phases[i];
    if (p.steps == 0) continue;
    PhaseSummary s;
    s.name = p.name;
    s.steps = p.steps;
    s.warmup_steps = p.warmup_steps;
    s.samples = p.samples;
    s.tokens = p.tokens;
    s.duration_s = 1e-9 * p.wall_sum_ns;
    const bool exact = p.retained == p.wall.count();
    s.step_time = duration_stats(p.wall, &p.wall_sketch, std::move(wall_by_phase[i]), exact);
    const bool cpu_exact = cpu_by_phase[i].size() == p.cpu.count();
    auto cpu = duration_stats(p.cpu, &p.cpu_sketch, std::move(cpu_by_phase[i]), cpu_exact);
    const bool gpu_exact = p.gpu_retained == p.gpu.count();
    auto gpu = duration_stats(p.gpu, &p.gpu_sketch, std::move(gpu_by_phase[i]), gpu_exact);
    if (s.duration_s > 0 && p.wall.count() > 0) {
      if (p.samples > 0) s.samples_per_s = double(p.samples) / s.duration_s;
      if (p.tokens > 0) s.tokens_per_s = double(p.tokens) / s.duration_s;
    }
    json loss = nullptr;
    if (p.loss.count() > 0)
      loss = {{rk::first, json_or_null(p.first_loss)},
              {rk::last, json_or_null(p.last_loss)},
              {rk::min, json_or_null(p.loss.min())},
              {rk::mean, json_or_null(p.loss.mean())}};
    phases[p.name] = {
        {rk::steps, s.steps},
        {rk::warmup_steps, s.warmup_steps},
        {rk::samples, s.samples},
        {rk::tokens, s.tokens},
        {rk::duration_s, s.duration_s},
        {rk::step_time_ns, stats_json(s.step_time, p.wall_sketch.relative_accuracy())},
        {rk::cpu_time_ns, stats_json(cpu, p.cpu_sketch.relative_accuracy())},
        {rk::gpu_time_ns, stats_json(gpu, p.gpu_sketch.relative_accuracy())},
        {rk::gpu_busy_fraction,
         p.gpu_wall_sum_ns > 0 ? json(p.gpu_sum_ns / p.gpu_wall_sum_ns) : json(nullptr)},
        {rk::samples_per_s, json_or_null(s.samples_per_s)},
        {rk::tokens_per_s, json_or_null(s.tokens_per_s)},
        {rk::loss, loss},
        {rk::between_steps, between_steps_json(p)}};
    if (out != nullptr) out->phases.push_back(std::move(s));
  }
  doc[rk::phases] = std::move(phases);

  doc[rk::memory] = nullptr;
  doc[rk::energy] = nullptr;
  doc[rk::carbon] = nullptr;
  doc[rk::cost] = nullptr;

  // steps[] is streamed by write_run_report from the records and the components' columns.
  doc[rk::steps] = json::array();
  doc[rk::diagnostics] = json::array();

  if (out != nullptr) {
    out->status = state.status;
    out->steps_recorded = state.steps_recorded;
    out->steps_dropped = state.steps_dropped + state.open_at_finish;
  }
  return doc;
}

void finalize_report(RunContext& ctx, nlohmann::json& doc, Report* out) {
  doc[rk::diagnostics] = ctx.diagnostics.to_json();
  if (out == nullptr) return;
  auto number_at = [&doc](const char* section, const char* key) -> std::optional<double> {
    const auto s = doc.find(section);
    if (s == doc.end() || !s->is_object()) return std::nullopt;
    const auto v = s->find(key);
    if (v == s->end() || !v->is_number()) return std::nullopt;
    return v->get<double>();
  };
  out->energy_j = number_at(rk::energy, rk::total_j);
  out->co2e_kg = number_at(rk::carbon, rk::co2e_kg);
}

namespace {

// Report::json keeps the whole text for reports of at most this many retained steps (about
// 6 MB at ~300 bytes a step) and this size; a larger report stays on disk only (its steps[] are
// the bulk), so that finish() never holds a second copy of every step.
constexpr std::size_t kReportStepsInMemoryMax = 20'000;
constexpr std::size_t kReportTextInMemoryMax = std::size_t(8) << 20;

// Writes `doc` as dump_report() would (stream_report_text(): one writer of the layout), with
// steps[] made from the records one at a time. `text` receives a copy of everything written while
// it stays under kReportTextInMemoryMax.
std::string stream_report(AtomicFile* file, const json& doc, const StepWriter& steps,
                          const std::vector<StepRecord>& records, std::string* text,
                          bool* text_complete) {
  *text_complete = records.size() <= kReportStepsInMemoryMax;
  stream_report_text(
      doc, records.size(),
      [&](std::size_t i, std::string& chunk) { steps.append(chunk, records[i], i); },
      [&](const std::string& chunk) {
        if (file != nullptr) file->append(chunk);
        if (!*text_complete) return;
        if (text->size() + chunk.size() <= kReportTextInMemoryMax) {
          text->append(chunk);
        } else {
          *text_complete = false;
          text->clear();
          text->shrink_to_fit();
        }
      });
  return file != nullptr ? file->error() : std::string();
}

// The findings section, from every other section and the retained records (no steps[] DOM).
void add_run_findings(RunContext& ctx, const RunState& state,
                      const std::vector<std::string>& phase_names, json& doc) {
  FindingsOptions options;
  std::vector<StepView> views;
  try {
    views.reserve(state.records.size());
    static const std::string kOther = "other";
    for (const StepRecord& r : state.records)
      views.push_back({double(r.seq), double(r.wall_ns),
                       r.phase < phase_names.size() ? phase_names[r.phase] : kOther,
                       (r.flags & kStepWarmup) != 0});
    options.steps = &views;
    if (!ctx.config.carbon_intensity_file.empty())
      options.series = carbon_settings_from_config(ctx.config).intensity.series;
  } catch (const std::exception& e) {
    ctx.diagnostics.add(rk::findings, diag::kError,
                        std::string("findings computed without the step rules: ") + e.what());
    options.steps = nullptr;
  }
  if (options.steps == nullptr) views.clear();
  add_findings(doc, options);
}

}  // namespace

void write_run_report(RunContext& ctx, const RunState& state,
                      const std::vector<std::unique_ptr<Component>>& components, Report* out) {
  // Per-step values first (components read each other's columns), then the sections.
  StepTable table(state.records.size());
  for (auto& c : components) c->step_columns(state.records, table);
  json doc = build_report(ctx, state, out);
  for (auto& c : components) c->contribute(doc, table);

  std::vector<std::string> phase_names;
  for (const PhaseAggregate& p : state.phases) phase_names.push_back(p.name);
  add_run_findings(ctx, state, phase_names, doc);
  finalize_report(ctx, doc, out);
  const StepWriter steps(ctx.start_ns, phase_names, state.metric_names, &table);
  bool text_complete = true;
  std::string error;
  {
    AtomicFile file;
    if (file.open(ctx.report_path)) {
      error = stream_report(&file, doc, steps, state.records, &out->json, &text_complete);
      if (error.empty() && !file.commit()) error = file.error();
    } else {
      error = file.error();
    }
  }
  if (error.empty()) {
    out->written = true;
    out->path = ctx.report_path;
  } else {
    ctx.diagnostics.add("report", diag::kIoError, error);
    log(LogLevel::kError, "report not written: " + error);
    // The report text still carries this diagnostic for callers of finish().
    doc[rk::diagnostics] = ctx.diagnostics.to_json();
    out->json.clear();
    stream_report(nullptr, doc, steps, state.records, &out->json, &text_complete);
  }
  if (!text_complete) {
    out->json = dump_report(doc);  // every section; steps[] only in the file
    out->json_steps_omitted = true;
  }
  // The written steps, one at a time (the exports read them; no document of every step).
  const StepSource step_source = [&](const StepVisitor& visit) -> std::string {
    std::string line;
    for (std::size_t i = 0; i < state.records.size(); ++i) {
      line.clear();
      steps.append(line, state.records[i], i);
      visit(json::parse(line), i);
    }
    return "";
  };
  for (auto& c : components) c->after_write(doc, step_source);
}

}  // namespace trainmeter::detail
