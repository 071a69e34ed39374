#include "carbon/carbon.hpp"

#include <exception>

#include <fmt/format.h>

namespace trainmeter::detail {

namespace {

class CarbonComponent final : public Component {
 public:
  explicit CarbonComponent(RunContext& ctx)
      : ctx_(ctx), settings_(carbon_settings_from_config(ctx.config)) {}

  const char* name() const noexcept override { return "carbon"; }

  void contribute(nlohmann::json& report) noexcept override {
    try {
      apply_carbon(report, settings_, ctx_.start_unix_ns, &ctx_.diagnostics);
    } catch (const std::exception& e) {
      ctx_.diagnostics.add("carbon", diag::kError,
                           fmt::format("carbon and cost not computed: {}", e.what()));
    } catch (...) {
      ctx_.diagnostics.add("carbon", diag::kError, "carbon and cost not computed");
    }
  }

 private:
  RunContext& ctx_;
  CarbonSettings settings_;
};

}  // namespace

std::unique_ptr<Component> make_carbon_component(RunContext& ctx) {
  return std::make_unique<CarbonComponent>(ctx);
}

}  // namespace trainmeter::detail
