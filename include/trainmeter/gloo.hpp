// trainmeter/gloo.hpp: a Gloo process group as a c10d::ProcessGroup, on libtorch 1.13 and 2.x.
//
// libtorch 1.x's ProcessGroupGloo is a ProcessGroup; in 2.x it is a c10d::Backend that a
// ProcessGroup dispatches to. trainmeter::torch's c10d functions (distributed_config, gather)
// take the ProcessGroup, as the user's DDP code holds it; this header-only helper makes one from
// a store for programs (and our examples and tests) that build their Gloo group by hand.
#pragma once

#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "trainmeter/version.hpp"

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

inline c10::intrusive_ptr<c10d::ProcessGroup> make_gloo_group(
    const c10::intrusive_ptr<c10d::Store>& store, int rank, int world_size,
    const c10::intrusive_ptr<c10d::ProcessGroupGloo::Options>& options) {
#if TORCH_VERSION_MAJOR >= 2
  auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, rank, world_size);
  group->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  group->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, backend);
  return group;
#else
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world_size, options);
#endif
}

}  // namespace torch
TRAINMETER_END_NAMESPACE
