#include "base/diagnostics.hpp"

#include "base/report_keys.hpp"

namespace trainmeter::detail {

void Diagnostics::add(const std::string& source, const std::string& status,
                      const std::string& message) noexcept {
  add_count(source, status, 1, message);
}

void Diagnostics::add_count(const std::string& source, const std::string& status,
                            std::uint64_t count, const std::string& message) noexcept {
  if (count == 0) return;
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    for (Entry& e : entries_) {
      if (e.source == source && e.status == status) {
        e.count += count;
        e.last_message = message;
        return;
      }
    }
    entries_.push_back(Entry{source, status, message, message, count});
  } catch (...) {
    // Out of memory while recording a diagnostic: nothing sensible left to do but go on.
  }
}

std::uint64_t Diagnostics::count(const std::string& source,
                                 const std::string& status) const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const Entry& e : entries_)
    if (e.source == source && e.status == status) return e.count;
  return 0;
}

nlohmann::json Diagnostics::to_json() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json out = nlohmann::json::array();
  for (const Entry& e : entries_) {
    nlohmann::json j = {{rk::source, e.source},
                        {rk::status, e.status},
                        {rk::count, e.count},
                        {rk::message, e.message}};
    j[rk::last_message] =
        e.last_message != e.message ? nlohmann::json(e.last_message) : nlohmann::json();
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace trainmeter::detail
