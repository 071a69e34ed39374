#include "core/gpu_timing.hpp"

#include <algorithm>

namespace trainmeter::detail {

GpuStepTimer::GpuStepTimer(std::unique_ptr<GpuEventSource> source, HotState* hot,
                           std::uint32_t pairs)
    : source_(std::move(source)),
      hot_(hot),
      pairs_(std::max<std::uint32_t>(pairs, 1)),
      state_(new std::atomic<std::uint8_t>[pairs_]) {
  for (std::uint32_t i = 0; i < pairs_; ++i) state_[i].store(kFree, std::memory_order_relaxed);
  pending_.reserve(pairs_);
  hooks_ = StepHooks{&GpuStepTimer::on_begin, &GpuStepTimer::on_end, this};
}

GpuStepTimer::~GpuStepTimer() {
  if (hot_ != nullptr) remove_step_hooks(*hot_, hook_slot_, &hooks_);
}

bool GpuStepTimer::poll_prepare() noexcept {
  if (active_.load(std::memory_order_relaxed)) return true;
  if (unavailable_) return false;
  switch (source_->prepare(2 * pairs_)) {
    case GpuEventSource::Prepare::kReady:
      hook_slot_ = hot_ != nullptr ? add_step_hooks(*hot_, &hooks_) : -1;
      if (hook_slot_ < 0) {
        unavailable_ = true;
        return false;
      }
      active_.store(true, std::memory_order_release);
      return true;
    case GpuEventSource::Prepare::kUnavailable:
      unavailable_ = true;
      return false;
    case GpuEventSource::Prepare::kNotYet:
      return false;
  }
  return false;
}

std::uint32_t GpuStepTimer::on_begin(void* p) noexcept {
  auto* self = static_cast<GpuStepTimer*>(p);
  const auto pair = static_cast<std::uint32_t>(self->next_.fetch_add(1, std::memory_order_relaxed) %
                                               self->pairs_);
  std::uint8_t expected = kFree;
  if (!self->state_[pair].compare_exchange_strong(expected, kBusy, std::memory_order_acquire,
                                                  std::memory_order_relaxed)) {
    self->exhausted_.fetch_add(1, std::memory_order_relaxed);
    return kGpuSlotFailed;
  }
  if (!self->source_->record(2 * pair)) {
    self->state_[pair].store(kFree, std::memory_order_release);
    self->record_errors_.fetch_add(1, std::memory_order_relaxed);
    return kGpuSlotFailed;
  }
  return pair;
}

void GpuStepTimer::on_end(void* p, std::uint32_t token, StepRecord& r) noexcept {
  auto* self = static_cast<GpuStepTimer*>(p);
  if (token == kNoGpuSlot || token == kGpuSlotFailed) {
    r.gpu_slot = token;
    return;
  }
  if (!self->source_->record(2 * token + 1)) {
    self->state_[token].store(kFree, std::memory_order_release);
    self->record_errors_.fetch_add(1, std::memory_order_relaxed);
    r.gpu_slot = kGpuSlotFailed;
    return;
  }
  r.gpu_slot = token;
}

void GpuStepTimer::release(std::uint32_t pair) noexcept {
  state_[pair].store(kFree, std::memory_order_release);
}

void GpuStepTimer::track(const StepRecord& r, bool warmup, std::size_t retained) noexcept {
  if (r.gpu_slot == kNoGpuSlot) {
    ++counts_.before_active;
    return;
  }
  if (r.gpu_slot == kGpuSlotFailed || r.gpu_slot >= pairs_) return;  // counted on the hot path
  // At most one pending step per pair (a busy pair is never claimed again), so at most
  // `pairs_` entries: the reserve() in the constructor means no allocation here.
  pending_.push_back(GpuPending{r.gpu_slot, r.wall_ns, r.phase, warmup, retained});
}

void GpuStepTimer::resolve(const std::function<void(const GpuPending&, std::int64_t)>& done,
                           bool give_up) noexcept {
  std::size_t keep = 0;
  for (std::size_t i = 0; i < pending_.size(); ++i) {
    const GpuPending p = pending_[i];
    std::int64_t ns = -1;
    GpuEventSource::Status st = source_->query(2 * p.pair + 1);
    if (st == GpuEventSource::Status::kReady)
      st = source_->elapsed_ns(2 * p.pair, 2 * p.pair + 1, ns);
    if (st == GpuEventSource::Status::kPending && !give_up) {
      pending_[keep++] = p;
      continue;
    }
    if (st == GpuEventSource::Status::kReady && ns >= 0) {
      ++counts_.timed;
      counts_.busy_ns += ns;
    } else if (st == GpuEventSource::Status::kPending) {
      ++counts_.unresolved;
      ns = -1;
    } else {
      ++counts_.query_errors;
      ns = -1;
    }
    release(p.pair);
    done(p, ns);
  }
  pending_.resize(keep);
}

GpuTimingCounts GpuStepTimer::counts() const noexcept {
  GpuTimingCounts c = counts_;
  c.pool_exhausted = exhausted_.load(std::memory_order_relaxed);
  c.record_errors = record_errors_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace trainmeter::detail
