// trainmeter::torch::describe: the model footprint (counts, bytes by dtype, sparsity, optimizer
// state estimate).
#include <torch/nn/module.h>

#include <unordered_set>

#include "base/report_keys.hpp"
#include "core/session_impl.hpp"
#include "torch/torch_state.hpp"
#include "trainmeter/torch.hpp"

namespace trainmeter::detail {

struct TorchState;
void store_model(TorchState& state, nlohmann::json model) noexcept;

namespace {

// PyTorch's Python names (torch.float32...), which dashboards and users know, rather than c10's
// "Float", "Half".
const char* dtype_name(c10::ScalarType t) noexcept {
  switch (t) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::Double:
      return "float64";
    case c10::ScalarType::Half:
      return "float16";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    case c10::ScalarType::Byte:
      return "uint8";
    case c10::ScalarType::Char:
      return "int8";
    case c10::ScalarType::Short:
      return "int16";
    case c10::ScalarType::Int:
      return "int32";
    case c10::ScalarType::Long:
      return "int64";
    case c10::ScalarType::Bool:
      return "bool";
    case c10::ScalarType::ComplexHalf:
      return "complex32";
    case c10::ScalarType::ComplexFloat:
      return "complex64";
    case c10::ScalarType::ComplexDouble:
      return "complex128";
    case c10::ScalarType::QInt8:
      return "qint8";
    case c10::ScalarType::QUInt8:
      return "quint8";
    case c10::ScalarType::QInt32:
      return "qint32";
    default:
      return c10::toString(t);
  }
}

}  // namespace
}  // namespace trainmeter::detail

TRAINMETER_BEGIN_NAMESPACE
namespace torch {

ModelFootprint describe(const ::torch::nn::Module& module) {
  ModelFootprint f;
  ::torch::NoGradGuard no_grad;
  std::unordered_set<const void*> seen;
  auto account = [&](const at::Tensor& t, bool parameter) {
    if (!t.defined()) {
      ++f.undefined_tensors;
      return;
    }
    if (!seen.insert(t.unsafeGetTensorImpl()).second) {
      ++f.shared_tensors;
      return;
    }
    const std::int64_t n = t.numel();
    const std::int64_t bytes = n * static_cast<std::int64_t>(t.element_size());
    f.bytes_by_dtype[detail::dtype_name(t.scalar_type())] += bytes;
    if (parameter) {
      ++f.parameter_tensors;
      f.parameters += n;
      f.parameter_bytes += bytes;
      if (t.requires_grad()) {
        f.trainable_parameters += n;
        f.trainable_parameter_bytes += bytes;
      } else {
        f.frozen_parameters += n;
      }
      // Works for any layout and dtype (half included); a temporary bool tensor, outside steps.
      if (n > 0 && !t.is_sparse()) f.zero_parameters += t.eq(0).sum().item<std::int64_t>();
    } else {
      ++f.buffer_tensors;
      f.buffers += n;
      f.buffer_bytes += bytes;
    }
  };
  // Each module's own entries, then its descendants'. modules(include_self=true) would throw for
  // a top-level module that is not held by a shared_ptr (a module on the stack), so the module
  // itself is visited directly.
  auto visit = [&](const ::torch::nn::Module& m) {
    for (const auto& item : m.named_parameters(/*recurse=*/false)) account(item.value(), true);
    for (const auto& item : m.named_buffers(/*recurse=*/false)) account(item.value(), false);
  };
  visit(module);
  for (const auto& child : module.modules(/*include_self=*/false)) visit(*child);
  f.total_bytes = f.parameter_bytes + f.buffer_bytes;
  f.zero_fraction = f.parameters > 0 ? double(f.zero_parameters) / double(f.parameters) : 0.0;
  f.sgd_momentum_state_bytes = f.trainable_parameter_bytes;
  f.adam_state_bytes = 2 * f.trainable_parameter_bytes;
  return f;
}

ModelFootprint describe(Session& session, const ::torch::nn::Module& module,
                        const std::string& name) noexcept {
  ModelFootprint f;
  std::shared_ptr<detail::TorchState> state =
      session.enabled() ? detail::torch_state_for(session.impl()) : nullptr;
  try {
    f = describe(module);
  } catch (const std::exception& e) {
    if (state) {
      try {
        detail::store_model(*state, nlohmann::json(nullptr));
      } catch (...) {
      }
    }
    if (session.enabled() && session.impl() != nullptr)
      session.impl()->context().diagnostics.add(rk::model, detail::diag::kError,
                                                std::string("describe() failed: ") + e.what());
    return f;
  }
  if (!state) return f;
  try {
    nlohmann::json m = {
        {rk::name, name.empty() ? nlohmann::json(module.name()) : nlohmann::json(name)},
        {rk::parameters, f.parameters},
        {rk::parameter_tensors, f.parameter_tensors},
        {rk::trainable_parameters, f.trainable_parameters},
        {rk::frozen_parameters, f.frozen_parameters},
        {rk::buffers, f.buffers},
        {rk::buffer_tensors, f.buffer_tensors},
        {rk::bytes_by_dtype, f.bytes_by_dtype},
        {rk::parameter_bytes, f.parameter_bytes},
        {rk::buffer_bytes, f.buffer_bytes},
        {rk::total_bytes, f.total_bytes},
        {rk::zero_parameters, f.zero_parameters},
        {rk::zero_fraction, f.zero_fraction},
        {rk::optimizer_state_bytes_estimate,
         {{rk::sgd_momentum, f.sgd_momentum_state_bytes},
          {rk::adam, f.adam_state_bytes},
          {rk::method,
           "estimate: SGD momentum keeps one buffer per trainable parameter, Adam two (exp_avg, "
           "exp_avg_sq), each of the parameter's dtype and size; step counters and amsgrad's "
           "third buffer excluded"}}},
        {rk::undefined_tensors, f.undefined_tensors},
        {rk::shared_tensors, f.shared_tensors},
    };
    detail::store_model(*state, std::move(m));
  } catch (...) {
    session.impl()->context().diagnostics.add(rk::model, detail::diag::kError,
                                              "could not store the model footprint");
  }
  return f;
}

}  // namespace torch
TRAINMETER_END_NAMESPACE
