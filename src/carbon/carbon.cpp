#include "carbon/carbon.hpp"

#include <cmath>
#include <exception>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "base/report_keys.hpp"

namespace trainmeter::detail {

namespace {

class CarbonComponent final : public Component {
 public:
  explicit CarbonComponent(RunContext& ctx)
      : ctx_(ctx), settings_(carbon_settings_from_config(ctx.config)) {}

  const char* name() const noexcept override { return rk::carbon; }

  // The steps' energy at their times, for an intensity time series (energy-weighted mean).
  void step_columns(const std::vector<StepRecord>& records, StepTable& table) noexcept override {
    try {
      step_energy_.reset();
      const std::vector<double>* energy = table.find_numbers(rk::energy_j);
      if (energy == nullptr) return;
      step_energy_.emplace();
      for (std::size_t i = 0; i < records.size() && i < energy->size(); ++i) {
        const double e = (*energy)[i];
        if (!std::isfinite(e) || e < 0 || records[i].wall_ns < 0) continue;
        const std::int64_t start = ctx_.start_unix_ns + (records[i].start_ns - ctx_.start_ns);
        step_energy_->push_back({start, start + records[i].wall_ns, e});
      }
    } catch (...) {
      step_energy_.reset();
    }
  }

  void contribute(nlohmann::json& report) noexcept override {
    try {
      apply_carbon(report, settings_, ctx_.start_unix_ns, &ctx_.diagnostics,
                   step_energy_ ? &*step_energy_ : nullptr);
    } catch (const std::exception& e) {
      ctx_.diagnostics.add(rk::carbon, diag::kError,
                           fmt::format("carbon and cost not computed: {}", e.what()));
    } catch (...) {
      ctx_.diagnostics.add(rk::carbon, diag::kError, "carbon and cost not computed");
    }
  }

 private:
  RunContext& ctx_;
  CarbonSettings settings_;
  // From step_columns(); without them (a component driven alone) steps[] of the report are read.
  std::optional<std::vector<EnergyInterval>> step_energy_;
};

}  // namespace

std::unique_ptr<Component> make_carbon_component(RunContext& ctx) {
  return std::make_unique<CarbonComponent>(ctx);
}

}  // namespace trainmeter::detail
