// trainmeter::torch op accounting: a thread-local RecordFunction callback added for selected
// steps only, a fixed per-op table, FLOPs from input shapes, and the component that writes the
// report's `ops` section.

// at::RecordFunction has a member that exists only without NDEBUG (inputs_valid_), so its
// inline inputs() reads a different offset in a debug translation unit than the one libtorch
// (built with NDEBUG) wrote. Compile this file's view of the struct the way libtorch was built.
#ifndef NDEBUG
#define NDEBUG 1
#endif

#include <ATen/record_function.h>
#include <torch/csrc/profiler/orchestration/observer.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/json_value.hpp"
#include "base/report_keys.hpp"
#include "core/session_impl.hpp"
#include "torch/integration.hpp"
#include "torch/ops.hpp"
#include "torch/registry.hpp"
#include "trainmeter/torch_ops.hpp"

namespace trainmeter::detail {

// --- FLOP formulas -----------------------------------------------------------------------------

FlopKind flop_kind(const char* name) noexcept {
  if (name == nullptr || std::strncmp(name, "aten::", 6) != 0) return FlopKind::kNone;
  const char* op = name + 6;
  struct Row {
    const char* op;
    FlopKind kind;
  };
  static constexpr Row kRows[] = {
      {"mm", FlopKind::kMm},
      {"addmm", FlopKind::kAddmm},
      {"bmm", FlopKind::kBmm},
      {"matmul", FlopKind::kMatmul},
      {"linear", FlopKind::kLinear},
      {"conv1d", FlopKind::kConv},
      {"conv2d", FlopKind::kConv},
      {"conv3d", FlopKind::kConv},
      {"convolution", FlopKind::kConvolution},
      {"_convolution", FlopKind::kConvolution},
      {"convolution_backward", FlopKind::kConvolutionBackward},
  };
  for (const Row& r : kRows)
    if (std::strcmp(op, r.op) == 0) return r.kind;
  return FlopKind::kNone;
}

namespace {

const at::Tensor* tensor_at(c10::ArrayRef<const c10::IValue> in, std::size_t i) noexcept {
  if (i >= in.size() || !in[i].isTensor()) return nullptr;
  const at::Tensor& t = in[i].toTensor();
  return t.defined() ? &t : nullptr;
}

// An int[] argument; a scalar int broadcasts to every spatial dimension (conv's "int[2]=1"
// arrives boxed as a list, but be lenient).
bool int_list_at(c10::ArrayRef<const c10::IValue> in, std::size_t i, std::size_t n,
                 std::int64_t out[3]) noexcept {
  if (i >= in.size() || n > 3) return false;
  const c10::IValue& v = in[i];
  if (v.isInt()) {
    for (std::size_t d = 0; d < n; ++d) out[d] = v.toInt();
    return true;
  }
  if (!v.isIntList()) return false;
  const c10::List<std::int64_t> list = v.toIntList();
  if (list.size() == 1) {
    for (std::size_t d = 0; d < n; ++d) out[d] = list.get(0);
    return true;
  }
  if (list.size() != n) return false;
  for (std::size_t d = 0; d < n; ++d) out[d] = list.get(d);
  return true;
}

double mm_flops(const at::Tensor* a, const at::Tensor* b) noexcept {
  if (a == nullptr || b == nullptr || a->dim() != 2 || b->dim() != 2) return -1;
  return 2.0 * double(a->size(0)) * double(a->size(1)) * double(b->size(1));
}

double bmm_flops(const at::Tensor* a, const at::Tensor* b) noexcept {
  if (a == nullptr || b == nullptr || a->dim() != 3 || b->dim() != 3) return -1;
  return 2.0 * double(a->size(0)) * double(a->size(1)) * double(a->size(2)) * double(b->size(2));
}

// torch.matmul's rules: 1-D operands gain a dimension that is dropped again, leading (batch)
// dimensions broadcast.
double matmul_flops(const at::Tensor* a, const at::Tensor* b) noexcept {
  if (a == nullptr || b == nullptr || a->dim() < 1 || b->dim() < 1) return -1;
  const std::int64_t da = a->dim(), db = b->dim();
  const double n = da >= 2 ? double(a->size(da - 2)) : 1.0;
  const double k = double(a->size(da - 1));
  const double m = db >= 2 ? double(b->size(db - 1)) : 1.0;
  const std::int64_t ba = std::max<std::int64_t>(da - 2, 0), bb = std::max<std::int64_t>(db - 2, 0);
  double batch = 1;
  for (std::int64_t i = 0; i < std::max(ba, bb); ++i) {
    // Align from the right: dimension i counted from the innermost batch dimension.
    const std::int64_t sa = i < ba ? a->size(ba - 1 - i) : 1;
    const std::int64_t sb = i < bb ? b->size(bb - 1 - i) : 1;
    batch *= double(std::max(sa, sb));
  }
  return 2.0 * batch * n * k * m;
}

double linear_flops(const at::Tensor* x, const at::Tensor* w) noexcept {
  if (x == nullptr || w == nullptr || x->dim() < 1 || w->dim() < 1 || w->dim() > 2) return -1;
  const double out = w->dim() == 2 ? double(w->size(0)) : 1.0;
  // x[..., in] x w[out, in]^T: numel(x) multiply-adds per output feature.
  return 2.0 * double(x->numel()) * out;
}

// 2 x N x prod(spatial) x numel(weight), the one formula for plain and grouped convolutions
// (weight is [out, in/groups, k...]) and transposed ones (weight is [in, out/groups, k...], and
// the spatial extent is the input's).
double conv_core(const at::Tensor& input, const at::Tensor& weight, const std::int64_t* spatial,
                 std::size_t dims) noexcept {
  const bool batched = input.dim() == weight.dim();
  const double n = batched ? double(input.size(0)) : 1.0;
  double s = 1;
  for (std::size_t d = 0; d < dims; ++d) s *= double(spatial[d]);
  return 2.0 * n * s * double(weight.numel());
}

// Output size of a convolution along each spatial dimension (PyTorch's formula).
bool conv_out_spatial(const at::Tensor& input, const at::Tensor& weight,
                      c10::ArrayRef<const c10::IValue> in, std::size_t stride_i, std::size_t pad_i,
                      std::size_t dil_i, std::int64_t out[3], std::size_t& dims) noexcept {
  if (weight.dim() < 3 || weight.dim() > 5) return false;
  dims = static_cast<std::size_t>(weight.dim() - 2);
  const bool batched = input.dim() == weight.dim();
  if (!batched && input.dim() != weight.dim() - 1) return false;
  const std::int64_t first = batched ? 2 : 1;
  std::int64_t stride[3], pad[3], dil[3];
  if (!int_list_at(in, stride_i, dims, stride) || !int_list_at(in, dil_i, dims, dil)) return false;
  bool same = false;
  if (pad_i < in.size() && in[pad_i].isString()) {
    const std::string& mode = in[pad_i].toStringRef();
    if (mode == "same")
      same = true;
    else if (mode == "valid")
      std::fill(pad, pad + dims, 0);
    else
      return false;
  } else if (!int_list_at(in, pad_i, dims, pad)) {
    return false;
  }
  for (std::size_t d = 0; d < dims; ++d) {
    const std::int64_t size = input.size(first + static_cast<std::int64_t>(d));
    if (same) {
      out[d] = size;  // padding="same" is only accepted with stride 1
      continue;
    }
    if (stride[d] <= 0) return false;
    const std::int64_t k = weight.size(2 + static_cast<std::int64_t>(d));
    out[d] = (size + 2 * pad[d] - dil[d] * (k - 1) - 1) / stride[d] + 1;
    if (out[d] < 0) return false;
  }
  return true;
}

double conv_flops(c10::ArrayRef<const c10::IValue> in) noexcept {
  // conv{1,2,3}d(input, weight, bias, stride, padding, dilation, groups)
  const at::Tensor* x = tensor_at(in, 0);
  const at::Tensor* w = tensor_at(in, 1);
  if (x == nullptr || w == nullptr) return -1;
  std::int64_t out[3];
  std::size_t dims = 0;
  if (!conv_out_spatial(*x, *w, in, 3, 4, 5, out, dims)) return -1;
  return conv_core(*x, *w, out, dims);
}

double convolution_flops(c10::ArrayRef<const c10::IValue> in) noexcept {
  // convolution(input, weight, bias, stride, padding, dilation, transposed, output_padding,
  // groups); _convolution adds flags after these.
  const at::Tensor* x = tensor_at(in, 0);
  const at::Tensor* w = tensor_at(in, 1);
  if (x == nullptr || w == nullptr || in.size() < 9 || !in[6].isBool()) return -1;
  if (in[6].toBool()) {
    if (w->dim() < 3 || w->dim() > 5) return -1;
    const std::size_t dims = static_cast<std::size_t>(w->dim() - 2);
    const bool batched = x->dim() == w->dim();
    std::int64_t spatial[3];
    for (std::size_t d = 0; d < dims; ++d)
      spatial[d] = x->size((batched ? 2 : 1) + static_cast<std::int64_t>(d));
    return conv_core(*x, *w, spatial, dims);
  }
  std::int64_t out[3];
  std::size_t dims = 0;
  if (!conv_out_spatial(*x, *w, in, 3, 4, 5, out, dims)) return -1;
  return conv_core(*x, *w, out, dims);
}

double convolution_backward_flops(c10::ArrayRef<const c10::IValue> in) noexcept {
  // convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
  // transposed, output_padding, groups, output_mask)
  const at::Tensor* go = tensor_at(in, 0);
  const at::Tensor* x = tensor_at(in, 1);
  const at::Tensor* w = tensor_at(in, 2);
  if (go == nullptr || x == nullptr || w == nullptr || in.size() < 11 || !in[7].isBool()) return -1;
  if (w->dim() < 3 || w->dim() > 5) return -1;
  const std::size_t dims = static_cast<std::size_t>(w->dim() - 2);
  // The forward's output is grad_output's shape; a transposed forward's cost runs over its input.
  const at::Tensor& spatial_src = in[7].toBool() ? *x : *go;
  if (spatial_src.dim() != w->dim() && spatial_src.dim() != w->dim() - 1) return -1;
  const bool batched = spatial_src.dim() == w->dim();
  std::int64_t spatial[3];
  for (std::size_t d = 0; d < dims; ++d)
    spatial[d] = spatial_src.size((batched ? 2 : 1) + static_cast<std::int64_t>(d));
  const double forward = conv_core(spatial_src, *w, spatial, dims);
  int passes = 2;  // grad_input and grad_weight
  if (in[10].isBoolList()) {
    const c10::List<bool> mask = in[10].toBoolList();
    if (mask.size() >= 2) passes = int(mask.get(0)) + int(mask.get(1));
  }
  return forward * passes;
}

}  // namespace

double op_flops(FlopKind kind, c10::ArrayRef<const c10::IValue> in) noexcept {
  try {
    switch (kind) {
      case FlopKind::kNone:
        return -1;
      case FlopKind::kMm:
        return mm_flops(tensor_at(in, 0), tensor_at(in, 1));
      case FlopKind::kAddmm:
        return mm_flops(tensor_at(in, 1), tensor_at(in, 2));
      case FlopKind::kBmm:
        return bmm_flops(tensor_at(in, 0), tensor_at(in, 1));
      case FlopKind::kMatmul:
        return matmul_flops(tensor_at(in, 0), tensor_at(in, 1));
      case FlopKind::kLinear:
        return linear_flops(tensor_at(in, 0), tensor_at(in, 1));
      case FlopKind::kConv:
        return conv_flops(in);
      case FlopKind::kConvolution:
        return convolution_flops(in);
      case FlopKind::kConvolutionBackward:
        return convolution_backward_flops(in);
    }
  } catch (...) {
    // IValue accessors throw on type mismatches we did not foresee: the call's FLOPs are unknown.
  }
  return -1;
}

// --- accounting state -------------------------------------------------------------------------

namespace {

constexpr const char* kSource = rk::ops;
constexpr int kMaxDepth = 64;
constexpr std::size_t kTableSize = 1024;  // power of two; distinct op names in practice: < 200
constexpr std::size_t kMaxName = 95;
constexpr std::size_t kTopOps = 100;  // a training step of a real model has 40-150 distinct ops

// Ops on threads that are not accounting, while a callback is installed on some thread
// (process-wide: the callback has no user pointer). Read as a difference around each step.
std::atomic<std::uint64_t> g_other_thread_ops{0};

struct OpEntry {
  std::uint64_t hash = 0;
  std::uint64_t calls = 0;
  std::int64_t self_ns = 0;
  std::int64_t total_ns = 0;
  double flops = 0;
  std::uint64_t flops_unknown_calls = 0;
  FlopKind kind = FlopKind::kNone;
  bool used = false;
  std::uint8_t len = 0;
  char name[kMaxName + 1] = {};
};

struct Frame {
  const void* fn;
  std::int64_t start_ns;
  std::int64_t child_ns;
  std::uint32_t entry;
  bool counts_flops;
};

struct StepSlot {
  std::int64_t start_ns;
  std::uint16_t thread;
  std::uint64_t calls;
  double flops;
  std::int64_t covered_ns;
};

std::uint64_t fnv1a(const char* s, std::size_t& len) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  std::size_t n = 0;
  for (; s[n] != '\0'; ++n) h = (h ^ static_cast<unsigned char>(s[n])) * 1099511628211ull;
  len = n;
  return h;
}

}  // namespace

struct OpsState;
namespace {
thread_local OpsState* tls_active = nullptr;  // the state accounting the current step, if any
std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction& fn);
void on_op_end(const at::RecordFunction& fn, at::ObserverContext* ctx);
std::uint32_t on_step_begin(void* p) noexcept;
void on_step_end(void* p, std::uint32_t token, StepRecord& r) noexcept;
}  // namespace

struct OpsState {
  OpsState(std::uint64_t every_, std::uint64_t warmup_, std::size_t max_slots)
      : every(every_ == 0 ? 1 : every_),
        warmup(warmup_),
        callback(at::RecordFunctionCallback(&on_op_start, &on_op_end)
                     .needsInputs(true)
                     .scopes({at::RecordScope::FUNCTION, at::RecordScope::BACKWARD_FUNCTION})),
        table(new OpEntry[kTableSize]),
        slots(max_slots) {
    hooks = StepHooks{&on_step_begin, &on_step_end, this};
  }

  // Set at creation, read-only afterwards.
  const std::uint64_t every;
  const std::uint64_t warmup;
  const at::RecordFunctionCallback callback;
  std::thread::id owner;
  StepHooks hooks{};
  int hook_slot = -1;  // our slot in the session's step hooks (-1: none)

  std::mutex mutex;  // guards the three pointers below (guard vs. component lifetime)
  SessionImpl* session = nullptr;
  RunContext* ctx = nullptr;
  HotState* hot = nullptr;

  // Training thread only (the component reads them after the last step closed).
  std::unique_ptr<OpEntry[]> table;
  std::size_t entries = 0;
  std::uint64_t table_full_calls = 0;
  Frame stack[kMaxDepth];
  int depth = 0;
  int overflow_depth = 0;  // frames beyond kMaxDepth, not recorded
  int flop_depth = 0;      // open frames whose FLOPs were counted
  int scope_depth = 0;     // open step scopes on the owner thread
  bool selected = false;
  at::CallbackHandle handle = 0;
  std::int64_t step_covered_ns = 0;
  double step_flops = 0;
  std::uint64_t step_calls = 0;
  std::uint64_t step_other_start = 0;

  std::uint64_t steps_seen = 0;
  std::uint64_t steps_accounted = 0;
  std::uint64_t steps_skipped_profiler = 0;
  std::uint64_t install_failures = 0;
  std::int64_t install_ns = 0;  // adding + removing the callback, summed over accounted steps
  std::int64_t accounted_wall_ns = 0;
  std::int64_t covered_ns = 0;
  double flops_total = 0;
  std::uint64_t calls_total = 0;
  std::uint64_t other_thread_ops = 0;
  std::uint64_t deep_ops = 0;        // beyond kMaxDepth
  std::uint64_t unmatched_ends = 0;  // end callbacks without their start on our stack
  std::uint64_t unfinished_ops = 0;  // still open when the step ended
  std::vector<StepSlot> slots;
  std::size_t slots_used = 0;

  std::uint32_t lookup(const char* name) noexcept {
    std::size_t len = 0;
    const std::uint64_t h = fnv1a(name, len);
    const std::size_t stored = std::min(len, kMaxName);
    std::size_t i = static_cast<std::size_t>(h) & (kTableSize - 1);
    for (std::size_t probe = 0; probe < kTableSize; ++probe, i = (i + 1) & (kTableSize - 1)) {
      OpEntry& e = table[i];
      if (!e.used) {
        // Keep one slot free: it collects the ops of a full table.
        if (entries + 1 >= kTableSize) break;
        e.used = true;
        e.hash = h;
        e.len = static_cast<std::uint8_t>(stored);
        std::memcpy(e.name, name, stored);
        e.name[stored] = '\0';
        e.kind = flop_kind(name);
        ++entries;
        return static_cast<std::uint32_t>(i);
      }
      if (e.hash == h && e.len == stored && std::memcmp(e.name, name, stored) == 0)
        return static_cast<std::uint32_t>(i);
    }
    ++table_full_calls;
    return overflow_entry();
  }

  std::uint32_t overflow_entry() noexcept {
    for (std::size_t i = 0; i < kTableSize; ++i)
      if (!table[i].used || std::strcmp(table[i].name, "(other)") == 0) {
        OpEntry& e = table[i];
        if (!e.used) {
          e.used = true;
          std::memcpy(e.name, "(other)", 8);
          e.len = 7;
          ++entries;
        }
        return static_cast<std::uint32_t>(i);
      }
    return 0;
  }

  void op_start(const at::RecordFunction& fn) noexcept {
    if (depth >= kMaxDepth) {
      ++overflow_depth;
      ++deep_ops;
      return;
    }
    const std::uint32_t idx = lookup(fn.name());
    OpEntry& e = table[idx];
    Frame& f = stack[depth++];
    f.fn = &fn;
    f.entry = idx;
    f.child_ns = 0;
    f.counts_flops = false;
    if (e.kind != FlopKind::kNone) {
      const double fl = op_flops(e.kind, fn.inputs());
      if (fl >= 0) {
        e.flops += fl;
        // Nested formula ops (linear -> addmm, matmul -> mm, conv2d -> convolution) did the
        // same work: the step's total counts the outermost only.
        if (flop_depth == 0) step_flops += fl;
        ++flop_depth;
        f.counts_flops = true;
      } else {
        ++e.flops_unknown_calls;
      }
    }
    // Last, so the bookkeeping above is not charged to the op.
    f.start_ns = now_ns();
  }

  void op_end(const at::RecordFunction& fn) noexcept {
    const std::int64_t now = now_ns();
    if (overflow_depth > 0) {
      --overflow_depth;
      return;
    }
    // Normally the top frame. If an end went missing (an op whose end ran on another thread),
    // unwind to the matching frame; an end we never saw start is ignored.
    int i = depth - 1;
    while (i >= 0 && stack[i].fn != &fn) --i;
    if (i < 0) {
      ++unmatched_ends;
      return;
    }
    while (depth - 1 > i) {
      ++unfinished_ops;
      if (stack[depth - 1].counts_flops) --flop_depth;
      --depth;
    }
    const Frame& f = stack[--depth];
    const std::int64_t total = now - f.start_ns;
    OpEntry& e = table[f.entry];
    ++e.calls;
    ++step_calls;
    e.total_ns += total;
    e.self_ns += total - f.child_ns;
    if (f.counts_flops) --flop_depth;
    if (depth > 0)
      stack[depth - 1].child_ns += total;
    else
      step_covered_ns += total;
  }

  void begin_step() noexcept {
    if (std::this_thread::get_id() != owner) return;
    if (scope_depth++ > 0) return;  // a scope nested in a step is part of that step
    const std::uint64_t n = steps_seen++;
    if (n < warmup || (n - warmup) % every != 0) return;
    // A libtorch profiler on this thread owns the op stream; two observers would each distort
    // the other's timings.
    if (::torch::profiler::impl::profilerEnabled()) {
      ++steps_skipped_profiler;
      return;
    }
    const std::int64_t t0 = now_ns();
    try {
      handle = at::addThreadLocalCallback(callback);
    } catch (...) {
      ++install_failures;
      return;
    }
    install_ns += now_ns() - t0;
    selected = true;
    depth = overflow_depth = flop_depth = 0;
    step_covered_ns = 0;
    step_flops = 0;
    step_calls = 0;
    step_other_start = g_other_thread_ops.load(std::memory_order_relaxed);
    tls_active = this;
  }

  void end_step(StepRecord& r) noexcept {
    if (std::this_thread::get_id() != owner || scope_depth == 0) return;
    if (--scope_depth > 0 || !selected) return;
    selected = false;
    tls_active = nullptr;
    const std::int64_t t0 = now_ns();
    try {
      at::removeCallback(handle);
    } catch (...) {
      ++install_failures;
    }
    install_ns += now_ns() - t0;
    unfinished_ops += static_cast<std::uint64_t>(depth + overflow_depth);
    depth = overflow_depth = flop_depth = 0;
    other_thread_ops += g_other_thread_ops.load(std::memory_order_relaxed) - step_other_start;
    ++steps_accounted;
    accounted_wall_ns += r.wall_ns;
    covered_ns += step_covered_ns;
    flops_total += step_flops;
    calls_total += step_calls;
    if (slots_used < slots.size())
      slots[slots_used++] = StepSlot{r.start_ns, r.thread, step_calls, step_flops, step_covered_ns};
  }

  /// Stops accounting on the owner thread (guard reset): removes a callback left installed by a
  /// step that is still open.
  void stop_on_owner() noexcept {
    if (!selected) return;
    selected = false;
    tls_active = nullptr;
    try {
      at::removeCallback(handle);
    } catch (...) {
      ++install_failures;
    }
  }
};

namespace {

std::unique_ptr<at::ObserverContext> on_op_start(const at::RecordFunction& fn) {
  if (OpsState* s = tls_active)
    s->op_start(fn);
  else
    g_other_thread_ops.fetch_add(1, std::memory_order_relaxed);
  return nullptr;  // no per-op allocation: our own stack carries the start times
}

void on_op_end(const at::RecordFunction& fn, at::ObserverContext* /*ctx*/) {
  if (OpsState* s = tls_active) s->op_end(fn);
}

std::uint32_t on_step_begin(void* p) noexcept {
  static_cast<OpsState*>(p)->begin_step();
  return 0;
}

void on_step_end(void* p, std::uint32_t /*token*/, StepRecord& r) noexcept {
  static_cast<OpsState*>(p)->end_step(r);
}

class OpsComponent final : public Component {
 public:
  OpsComponent(std::shared_ptr<OpsState> state, RunContext* ctx)
      : state_(std::move(state)), ctx_(ctx) {}
  ~OpsComponent() override {
    std::lock_guard<std::mutex> lock(state_->mutex);
    // The session (its HotState and context) goes away with us; a guard that outlives it must
    // not touch them.
    state_->ctx = nullptr;
    state_->hot = nullptr;
    state_->session = nullptr;
  }

  const char* name() const noexcept override { return kSource; }

  void contribute(nlohmann::json& report) noexcept override {
    try {
      report[rk::ops] = build();
      const OpsState& s = *state_;
      if (s.steps_skipped_profiler > 0)
        ctx_->diagnostics.add_count(
            kSource, diag::kSkipped, s.steps_skipped_profiler,
            "a libtorch profiler was active on the training thread: op accounting stepped aside "
            "for the steps it would have accounted");
      if (s.install_failures > 0)
        ctx_->diagnostics.add_count(
            kSource, diag::kError, s.install_failures,
            "libtorch refused to add or remove the RecordFunction callback");
      if (s.table_full_calls > 0)
        ctx_->diagnostics.add_count(kSource, diag::kDropped, s.table_full_calls,
                                    fmt::format("more than {} distinct op names: calls of further "
                                                "names were counted under \"(other)\"",
                                                kTableSize - 2));
      if (s.deep_ops > 0)
        ctx_->diagnostics.add_count(
            kSource, diag::kDropped, s.deep_ops,
            fmt::format("ops nested deeper than {} levels were not timed", kMaxDepth));
      if (s.unmatched_ends + s.unfinished_ops > 0)
        ctx_->diagnostics.add_count(
            kSource, diag::kInvalidReading, s.unmatched_ends + s.unfinished_ops,
            "op start and end callbacks did not pair up on the training "
            "thread (ops finished on another thread, or a step ended inside an op)");
    } catch (...) {
      ctx_->diagnostics.add(kSource, diag::kError, "could not build the ops section");
    }
  }

 private:
  nlohmann::json build() const {
    using nlohmann::json;
    const OpsState& s = *state_;
    std::vector<const OpEntry*> rows;
    for (std::size_t i = 0; i < kTableSize; ++i)
      if (s.table[i].used && s.table[i].calls > 0) rows.push_back(&s.table[i]);
    std::sort(rows.begin(), rows.end(), [](const OpEntry* a, const OpEntry* b) {
      if (a->self_ns != b->self_ns) return a->self_ns > b->self_ns;
      return std::strcmp(a->name, b->name) < 0;
    });
    const bool any = s.steps_accounted > 0;
    const double steps = double(s.steps_accounted);
    json top = json::array();
    for (std::size_t i = 0; i < rows.size() && i < kTopOps; ++i) {
      const OpEntry& e = *rows[i];
      const bool flops_known = e.kind != FlopKind::kNone && e.flops_unknown_calls == 0;
      top.push_back({
          {rk::name, std::string(e.name, e.len)},
          {rk::calls, e.calls},
          {rk::calls_per_step, double(e.calls) / steps},
          {rk::self_cpu_ns, e.self_ns},
          {rk::total_cpu_ns, e.total_ns},
          {rk::flops, json_or_null(e.flops, flops_known)},
      });
    }
    std::uint64_t unknown = 0;
    for (const OpEntry* e : rows) unknown += e->flops_unknown_calls;
    json out = {
        {rk::enabled, true},
        {rk::every, s.every},
        {rk::warmup_steps, s.warmup},
        {rk::steps_seen, s.steps_seen},
        {rk::steps_accounted, s.steps_accounted},
        {rk::steps_skipped_profiler, s.steps_skipped_profiler},
        {rk::distinct_ops, rows.size()},
        {rk::calls_per_step, json_or_null(double(s.calls_total) / steps, any)},
        {rk::top, std::move(top)},
        {rk::flops_per_step, json_or_null(s.flops_total / steps, any)},
        {rk::achieved_flops_per_s,
         json_or_null(s.flops_total / (1e-9 * double(s.accounted_wall_ns)),
                      any && s.accounted_wall_ns > 0)},
        {rk::coverage, json_or_null(double(s.covered_ns) / double(s.accounted_wall_ns),
                                    any && s.accounted_wall_ns > 0)},
        {rk::accounted_wall_ns, s.accounted_wall_ns},
        {rk::covered_ns, s.covered_ns},
        {rk::flops_unknown_calls, unknown},
        {rk::ops_on_other_threads, s.other_thread_ops},
        {rk::callback_install_ns_per_step, json_or_null(double(s.install_ns) / steps, any)},
        {rk::notes,
         {"time: host-side elapsed time around each op on the training thread (steady clock), like "
          "the 'CPU time' columns of libtorch's profiler; self = total minus nested ops",
          "top: up to 100 ops sorted by self time over all accounted steps; flops: FLOPs of the "
          "op's own "
          "calls including work of nested ops (linear -> addmm), null where no formula applies",
          "flops_per_step: outermost counted ops only, a multiply-add counts 2; bias and "
          "activation work not counted; convolution_backward = forward FLOPs for grad_input plus "
          "for grad_weight",
          "achieved_flops_per_s: flops of the accounted steps / their wall time (which includes "
          "the accounting's own per-op cost); coverage: share of that wall time inside "
          "top-level ops"}},
    };
    return out;
  }

  // The accounted steps' op counts, matched to the retained records by start time and thread.
  void step_columns(const std::vector<StepRecord>& records, StepTable& table) noexcept override {
    try {
      const OpsState& s = *state_;
      if (s.slots_used == 0) return;
      std::map<std::pair<std::int64_t, int>, const StepSlot*> by_step;
      for (std::size_t i = 0; i < s.slots_used; ++i)
        by_step[{s.slots[i].start_ns, s.slots[i].thread}] = &s.slots[i];
      auto& accounted = table.bools("ops_accounted", StepTable::Unset::kOmit);
      auto& calls = table.integers("ops_calls", StepTable::Unset::kOmit);
      auto& flops = table.numbers("ops_flops", StepTable::Unset::kOmit);
      auto& covered = table.integers("ops_covered_ns", StepTable::Unset::kOmit);
      for (std::size_t i = 0; i < records.size(); ++i) {
        const auto it = by_step.find({records[i].start_ns, records[i].thread});
        if (it == by_step.end()) continue;
        accounted[i] = 1;
        calls[i] = static_cast<std::int64_t>(it->second->calls);
        flops[i] = it->second->flops;
        covered[i] = it->second->covered_ns;
      }
    } catch (...) {
      ctx_->diagnostics.add(kSource, diag::kError, "out of memory writing per-step op counts");
    }
  }

  std::shared_ptr<OpsState> state_;
  RunContext* ctx_;
};

}  // namespace

void stop_op_accounting(torch::Instrumentation::Installed& inst) noexcept {
  if (!inst.ops) return;
  const std::shared_ptr<OpsState> state = std::move(inst.ops);
  OpsState& s = *state;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (std::this_thread::get_id() == s.owner) {
    s.stop_on_owner();
  } else if (s.ctx != nullptr) {
    s.ctx->diagnostics.add(kSource, diag::kError,
                           "the trainmeter::torch guard was destroyed on another thread than the "
                           "one that created it: op accounting stopped counting");
  }
  if (s.hot != nullptr) remove_step_hooks(*s.hot, s.hook_slot, &s.hooks);
  s.hook_slot = -1;
  // The component keeps the state (and what was counted) for the report.
}

bool start_op_accounting(Session& session, torch::Instrumentation::Installed& inst) noexcept {
  if (inst.ops || !session.enabled() || session.impl() == nullptr || !session.config().ops)
    return false;
  SessionImpl* impl = session.impl();
  try {
    const Config& cfg = session.config();
    bool made = false;
    auto state = find_or_make_session_state<OpsState>(
        impl,
        [&]() -> std::shared_ptr<OpsState> {
          const std::size_t slots = static_cast<std::size_t>(std::min<std::uint64_t>(
              cfg.max_retained_steps / std::max<std::uint64_t>(cfg.ops_every, 1) + 1, 100000));
          auto made_state = std::make_shared<OpsState>(cfg.ops_every, cfg.warmup_steps, slots);
          made_state->owner = std::this_thread::get_id();
          made_state->session = impl;
          made_state->ctx = &impl->context();
          made_state->hot = impl->hot();
          if (!impl->add_component(std::make_unique<OpsComponent>(made_state, &impl->context())))
            return nullptr;
          return made_state;
        },
        made);
    if (!state) return false;
    if (!made) {
      impl->context().diagnostics.add(kSource, diag::kSkipped,
                                      "op accounting was started again for a session that "
                                      "already accounts ops: the first call's thread keeps "
                                      "accounting");
      return false;
    }
    // Our own hook slot: independent of other integrations' hooks and of their order.
    state->hook_slot = add_step_hooks(*state->hot, &state->hooks);
    if (state->hook_slot < 0) {
      impl->context().diagnostics.add(kSource, diag::kError,
                                      "no free step-hook slot: op accounting is off");
      return false;
    }
    inst.ops = std::move(state);
    return true;
  } catch (...) {
    impl->context().diagnostics.add(kSource, diag::kError, "could not start op accounting");
    return false;
  }
}

}  // namespace trainmeter::detail
