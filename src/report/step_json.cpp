#include "report/step_json.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "base/component.hpp"
#include "base/report_keys.hpp"

namespace trainmeter::detail {

namespace {

constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

std::string json_quoted(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, kReplace);
}

template <typename Int>
void append_int(std::string& out, Int v) {
  fmt::format_to(std::back_inserter(out), "{}", v);
}

void append_count_or_null(std::string& out, std::int64_t v) {
  if (v >= 0)
    append_int(out, v);
  else
    out += "null";
}

}  // namespace

void append_json_double(std::string& out, double x) {
  if (!std::isfinite(x)) {
    out += "null";
    return;
  }
  // The same digits as nlohmann's serializer (Grisu2, shortest round trip, ".0" when integral).
  std::array<char, 64> buf{};
  char* end = nlohmann::detail::to_chars(buf.data(), buf.data() + buf.size(), x);
  out.append(buf.data(), static_cast<std::size_t>(end - buf.data()));
}

StepWriter::StepWriter(std::int64_t run_start_ns, const std::vector<std::string>& phase_names,
                       const std::vector<std::string>& metric_names, const StepTable* table)
    : run_start_ns_(run_start_ns), other_phase_(json_quoted("other")), table_(table) {
  for (const std::string& p : phase_names) phases_.push_back(json_quoted(p));
  const std::size_t n_metrics = std::min(metric_names.size(), std::size_t(kMaxMetrics));
  std::vector<std::pair<std::string, std::size_t>> by_name;
  for (std::size_t k = 0; k < n_metrics; ++k) by_name.emplace_back(metric_names[k], k);
  // nlohmann objects are std::maps: keys in byte order, a repeated key keeps its first value.
  std::stable_sort(by_name.begin(), by_name.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 0; i < by_name.size(); ++i) {
    if (i > 0 && by_name[i].first == by_name[i - 1].first) continue;
    metrics_.emplace_back(json_quoted(by_name[i].first) + ":", by_name[i].second);
  }

  std::vector<std::pair<std::string, Field>> fields;
  const auto base = [&](const char* key, Base b) { fields.push_back({key, {"", b, 0}}); };
  base(rk::cpu_ns, Base::kCpuNs);
  base(rk::gpu_ns, Base::kGpuNs);
  base(rk::index, Base::kIndex);
  base(rk::loss, Base::kLoss);
  if (!metrics_.empty()) base(rk::metrics, Base::kMetrics);
  base(rk::peak_cuda_tensor_bytes, Base::kPeakCuda);
  base(rk::peak_tensor_bytes, Base::kPeakTensor);
  base(rk::phase, Base::kPhase);
  base(rk::samples, Base::kSamples);
  base(rk::start_offset_ns, Base::kStartOffset);
  base(rk::thread, Base::kThread);
  base(rk::tokens, Base::kTokens);
  base(rk::wall_ns, Base::kWallNs);
  base(rk::warmup, Base::kWarmup);
  if (table_ != nullptr) {
    const auto& columns = table_->columns();
    for (std::size_t i = 0; i < columns.size(); ++i) {
      // A column named like a record field replaces it.
      const std::string& key = columns[i].key;
      fields.erase(std::remove_if(fields.begin(), fields.end(),
                                  [&key](const auto& f) { return f.first == key; }),
                   fields.end());
      fields.push_back({key, {"", Base::kColumn, i}});
    }
  }
  std::stable_sort(fields.begin(), fields.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [key, f] : fields) {
    f.key = json_quoted(key) + ":";
    fields_.push_back(std::move(f));
  }
}

void StepWriter::append_column(std::string& out, const StepTable::Column& c, std::size_t row,
                               const std::string& key, bool& first) const {
  const bool have_row = row != kNoRow && row < table_->rows();
  const auto start = [&] {
    if (!first) out += ',';
    first = false;
    out += key;
  };
  const auto unset = [&] {
    if (c.unset == StepTable::Unset::kOmit) return;
    start();
    out += "null";
  };
  if (!have_row) return unset();
  switch (c.kind) {
    case StepTable::Kind::kNumber: {
      const double v = c.numbers[row];
      if (!std::isfinite(v)) return unset();
      start();
      append_json_double(out, v);
      return;
    }
    case StepTable::Kind::kInteger: {
      const std::int64_t v = c.integers[row];
      if (v == StepTable::kUnsetInteger) return unset();
      start();
      append_int(out, v);
      return;
    }
    case StepTable::Kind::kBool: {
      const std::int8_t v = c.bools[row];
      if (v == StepTable::kUnsetBool) return unset();
      start();
      out += v != 0 ? "true" : "false";
      return;
    }
    case StepTable::Kind::kJson: {
      const std::string& v = c.json[row];
      if (v.empty()) return unset();
      start();
      out += v;
      return;
    }
  }
}

void StepWriter::append(std::string& out, const StepRecord& r, std::size_t row) const {
  out += '{';
  bool first = true;
  for (const Field& f : fields_) {
    if (f.base == Base::kColumn) {
      append_column(out, table_->columns()[f.column], row, f.key, first);
      continue;
    }
    if (!first) out += ',';
    first = false;
    out += f.key;
    switch (f.base) {
      case Base::kCpuNs:
        append_count_or_null(out, r.cpu_ns);
        break;
      case Base::kGpuNs:
        append_count_or_null(out, r.gpu_ns);
        break;
      case Base::kIndex:
        append_int(out, r.seq);
        break;
      case Base::kLoss:
        append_json_double(out, r.loss);
        break;
      case Base::kMetrics: {
        out += '{';
        for (std::size_t i = 0; i < metrics_.size(); ++i) {
          if (i > 0) out += ',';
          out += metrics_[i].first;
          append_json_double(out, r.metrics[metrics_[i].second]);
        }
        out += '}';
        break;
      }
      case Base::kPeakCuda:
        if (r.cuda_device >= 0 && r.cuda_peak_tensor_bytes >= 0)
          fmt::format_to(std::back_inserter(out), "{{\"cuda:{}\":{}}}", r.cuda_device,
                         r.cuda_peak_tensor_bytes);
        else
          out += "null";
        break;
      case Base::kPeakTensor:
        append_count_or_null(out, r.peak_tensor_bytes);
        break;
      case Base::kPhase:
        out += r.phase < phases_.size() ? phases_[r.phase] : other_phase_;
        break;
      case Base::kSamples:
        append_int(out, r.samples);
        break;
      case Base::kStartOffset:
        append_int(out, r.start_ns - run_start_ns_);
        break;
      case Base::kThread:
        append_int(out, r.thread);
        break;
      case Base::kTokens:
        append_int(out, r.tokens);
        break;
      case Base::kWallNs:
        append_int(out, r.wall_ns);
        break;
      case Base::kWarmup:
        out += (r.flags & kStepWarmup) != 0 ? "true" : "false";
        break;
      case Base::kColumn:
        break;
    }
  }
  out += '}';
}

nlohmann::json step_json(const StepRecord& r, std::int64_t run_start_ns, const std::string& phase,
                         const std::vector<std::string>& metric_names) {
  const StepWriter writer(run_start_ns, {phase}, metric_names);
  StepRecord named = r;
  named.phase = 0;
  std::string text;
  writer.append(text, named);
  return nlohmann::json::parse(text);
}

}  // namespace trainmeter::detail
