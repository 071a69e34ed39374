// The built-in components of every session, in the order they contribute to the report: each
// may read the sections written by those before it (carbon reads energy; exports read all).
#include "carbon/carbon.hpp"
#include "core/composition.hpp"
#include "energy/energy.hpp"
#include "export/outputs.hpp"
#include "memory/process_memory.hpp"

namespace trainmeter::detail {

std::vector<std::unique_ptr<Component>> make_builtin_components(RunContext& ctx) {
  std::vector<std::unique_ptr<Component>> out;
  out.push_back(make_process_memory_component(ctx));  // memory: first
  out.push_back(make_energy_component(ctx));          // energy: after memory, before carbon
  out.push_back(make_carbon_component(ctx));          // carbon/cost: reads energy
  out.push_back(make_outputs_component(ctx));         // stream, progress, exports: read all, last
  return out;
}

}  // namespace trainmeter::detail
