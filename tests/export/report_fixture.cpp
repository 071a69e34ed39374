#include "export/report_fixture.hpp"

#include <algorithm>

#include "base/stats.hpp"
#include "report/json_io.hpp"
#include "support/test_support.hpp"

namespace trainmeter::test {

using nlohmann::json;

nlohmann::json make_report(const FixtureOptions& o) {
  json steps = json::array();
  std::vector<double> kept;
  double sum = 0;
  detail::RunningStats rs;
  std::int64_t t = 0;
  for (std::size_t i = 0; i < o.walls_ns.size(); ++i) {
    const auto w = static_cast<std::int64_t>(o.walls_ns[i]);
    steps.push_back({{"index", i},
                     {"phase", "train"},
                     {"thread", 0},
                     {"start_offset_ns", t},
                     {"wall_ns", w},
                     {"cpu_ns", nullptr},
                     {"samples", 4},
                     {"tokens", 0},
                     {"warmup", i == 0},
                     {"loss", 1.0 / double(i + 1)},
                     {"peak_tensor_bytes", 1000 + i},
                     {"energy_j", 0.5}});
    t += w;
    if (i > 0) {
      kept.push_back(double(w));
      sum += double(w);
      rs.add(double(w));
    }
  }
  std::sort(kept.begin(), kept.end());
  auto q = [&](double p) {
    return static_cast<std::int64_t>(std::llround(detail::exact_quantile_sorted(kept, p)));
  };
  json stats =
      kept.empty()
          ? json(nullptr)
          : json{{"mean", rs.mean()}, {"stddev", rs.stddev()}, {"min", rs.min()},
                 {"p50", q(0.5)},     {"p90", q(0.9)},         {"p95", q(0.95)},
                 {"p99", q(0.99)},    {"max", rs.max()},       {"percentiles_exact", true}};
  const double duration_s = sum * 1e-9;
  json components = json::array();
  auto comp = [&](const char* name, std::optional<double> j, const char* source) {
    if (!j) return;
    components.push_back(
        {{"name", name},
         {"source", source},
         {"provenance", "measured"},
         {"machine_energy_j", *j},
         {"energy_j", *j},
         {"attributed_share", 1.0},
         {"average_power_w", *j / 100.0},
         {"machine_average_power_w", *j / 100.0},
         {"attribution", std::string(name) == "gpu:0" ? "device" : "cpu-time-share"},
         {"samples", 10},
         {"discarded_intervals", 0},
         {"failed_reads", 0},
         {"notes", json::array()}});
  };
  comp("cpu", o.cpu_j, "rapl");
  comp("dram", o.dram_j, "rapl");
  comp("gpu:0", o.gpu_j, "nvml");
  double total = 0;
  for (const auto& c : components) total += c["energy_j"].get<double>();
  json energy =
      components.empty()
          ? json(nullptr)
          : json{{"components", components},  {"total_j", total}, {"total_kwh", total / 3.6e6},
                 {"sample_interval_ms", 100}, {"samples", 10},    {"sources_tried", json::array()},
                 {"step_attribution", "test"}};
  json carbon = nullptr;
  if (o.co2e_kg)
    carbon = {{"intensity_g_per_kwh", 56.0},
              {"intensity_source", "country"},
              {"region", o.country},
              {"region_name", "France"},
              {"data_source", "OWID"},
              {"data_year", 2022},
              {"pue", o.pue},
              {"energy_kwh", total / 3.6e6},
              {"energy_kwh_with_pue", total / 3.6e6 * o.pue},
              {"co2e_kg", *o.co2e_kg},
              {"formula", "energy_kwh x pue x intensity"},
              {"equivalents",
               {{"car_km", 4.75},
                {"car_g_per_km", 120.0},
                {"car_source", "CodeCarbon"},
                {"car_lifetime_fraction", 1e-5},
                {"car_lifetime_kg", 57000.0},
                {"car_lifetime_lb", 126000.0},
                {"car_lifetime_source", "Strubell 2019"}}},
              {"time_series", nullptr}};
  return {
      {"schema_version", 1},
      {"trainmeter", {{"version", "test"}, {"build", "test"}}},
      {"run",
       {{"name", o.name},
        {"id", "id-" + o.name},
        {"status", "completed"},
        {"start_utc", "2024-05-01T10:00:00.000Z"},
        {"end_utc", "2024-05-01T10:00:01.000Z"},
        {"duration_s", 100.0},
        {"rank", 0},
        {"world_size", 1},
        {"command_line", {"train"}},
        {"tags", {{"experiment_id", "exp \"1\""}}},
        {"steps_recorded", steps.size()},
        {"steps_dropped", 0},
        {"steps_retained", steps.size()}}},
      {"host",
       {{"hostname", "h"},
        {"os", "Debian GNU/Linux 12 (bookworm)"},
        {"kernel", "6.1"},
        {"cpu_model", "Test CPU, 8 cores"},
        {"logical_cpus", 8},
        {"memory_bytes", 17179869184LL},
        {"gpus", json::array({{{"index", 0}, {"name", "Test GPU"}}})},
        {"torch_version", nullptr},
        {"cuda_version", nullptr}}},
      {"config", {{"pue", "1.5"}}},
      {"model",
       {{"parameters", 1000},
        {"trainable_parameters", 1000},
        {"frozen_parameters", 0},
        {"buffers", 0},
        {"bytes_by_dtype", {{"float32", 4000}}},
        {"parameter_bytes", 4000},
        {"buffer_bytes", 0},
        {"total_bytes", 4000},
        {"zero_fraction", 0.0},
        {"optimizer_state_bytes_estimate", {{"sgd_momentum", 4000}, {"adam", 8000}}}}},
      {"phases",
       {{"train",
         {{"steps", o.walls_ns.size()},
          {"warmup_steps", o.walls_ns.empty() ? 0 : 1},
          {"samples", 4 * kept.size()},
          {"tokens", 0},
          {"duration_s", duration_s},
          {"step_time_ns", stats},
          {"cpu_time_ns", nullptr},
          {"samples_per_s", duration_s > 0 ? json(4.0 * kept.size() / duration_s) : json(nullptr)},
          {"tokens_per_s", nullptr},
          {"loss", nullptr}}}}},
      {"memory",
       {{"peak_rss_bytes", 1073741824LL},
        {"peak_rss_source", "VmHWM"},
        {"current_rss_bytes", 1500000},
        {"peak_tensor_bytes", {{"cpu", 2048}}},
        {"cuda", nullptr},
        {"notes", json::array()},
        {"timeline",
         {{"interval_ms", 100},
          {"samples", 3},
          {"dropped", 0},
          {"points", {{0, 1000000}, {100000000, 2000000}, {200000000, 1500000}}}}}}},
      {"energy", energy},
      {"carbon", carbon},
      {"cost", nullptr},
      {"steps", steps},
      {"diagnostics", json::array({{{"source", "test <src>"},
                                    {"status", "unavailable"},
                                    {"count", 2},
                                    {"message", "a \"quoted\" <message> & more"}}})}};
}

void write_report(const std::string& path, const nlohmann::json& report) {
  write_file(path, detail::dump_report(report));
}

json energy_cost_section(const std::string& currency, double price_per_kwh, double energy_kwh) {
  return {{"compute", nullptr},
          {"energy", price_per_kwh * energy_kwh},
          {"total", price_per_kwh * energy_kwh},
          {"currency", currency},
          {"formula", "energy = energy_price_per_kwh * energy_kwh"},
          {"inputs",
           {{"price_per_hour", nullptr},
            {"energy_price_per_kwh", price_per_kwh},
            {"duration_h", 1.0},
            {"energy_kwh", energy_kwh}}}};
}

}  // namespace trainmeter::test
