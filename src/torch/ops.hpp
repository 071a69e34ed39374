// Internal: op accounting (per-op calls, self/total host time and FLOPs on selected steps).
// Exposed here for the tests and the benchmark; the public entry point is
// trainmeter::torch::account_ops() in trainmeter/torch_ops.hpp.
#pragma once

#include <ATen/core/ivalue.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <memory>

namespace trainmeter::detail {

/// Ops whose FLOPs we derive from input shapes. kNone: no formula (the report says null).
enum class FlopKind : std::uint8_t {
  kNone,
  kMm,           // aten::mm(a[n,k], b[k,m])
  kAddmm,        // aten::addmm(bias, a[n,k], b[k,m])
  kBmm,          // aten::bmm(a[b,n,k], b[b,k,m])
  kMatmul,       // aten::matmul, any ranks with broadcasting
  kLinear,       // aten::linear(x[..., in], w[out, in], bias)
  kConv,         // aten::conv1d/2d/3d(input, weight, bias, stride, padding, dilation, groups)
  kConvolution,  // aten::convolution/_convolution(..., transposed, output_padding, groups)
  kConvolutionBackward,  // aten::convolution_backward(grad_out, input, weight, ..., output_mask)
};

/// The formula for an op name ("aten::addmm"...); kNone for every other name.
FlopKind flop_kind(const char* name) noexcept;

/// FLOPs of one call (a multiply-add counts 2), from the boxed inputs as RecordFunction passes
/// them. -1 when the inputs do not have the expected shapes (the call is counted, its FLOPs not).
/// Conventions, as fvcore and PyTorch's own flop counter: bias additions and activations are
/// not counted; a convolution costs 2 x N x prod(output spatial) x weight.numel() (transposed:
/// input spatial); convolution_backward costs that forward figure once for grad_input and once
/// for grad_weight, as selected by output_mask (grad_bias is a reduction: not counted).
double op_flops(FlopKind kind, c10::ArrayRef<const c10::IValue> inputs) noexcept;

}  // namespace trainmeter::detail
