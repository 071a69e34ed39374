// Per-step values the components add to the report's steps[]: one column per key, one row per
// retained step record (row i is the session's i-th retained record, report order). Components
// fill their columns once the collector has stopped (Component::step_columns) and read each
// other's (carbon reads energy_j); the report writer merges the columns with the record's own
// fields as it streams each step. Nothing searches or edits a finished document.
#pragma once

#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace trainmeter::detail {

class StepTable {
 public:
  enum class Kind : std::uint8_t { kNumber, kInteger, kBool, kJson };
  /// How a row without a value is written: as null, or not at all (the key is absent).
  enum class Unset : std::uint8_t { kNull, kOmit };
  static constexpr std::int64_t kUnsetInteger = std::numeric_limits<std::int64_t>::min();
  static constexpr std::int8_t kUnsetBool = -1;

  struct Column {
    std::string key;
    Kind kind = Kind::kNumber;
    Unset unset = Unset::kNull;
    std::vector<double> numbers;         ///< kNumber; NaN: unset (non-finite values are unset)
    std::vector<std::int64_t> integers;  ///< kInteger; kUnsetInteger: unset
    std::vector<std::int8_t> bools;      ///< kBool; kUnsetBool, 0 false, 1 true
    std::vector<std::string> json;       ///< kJson: compact JSON text; empty: unset
  };

  explicit StepTable(std::size_t rows = 0) : rows_(rows) {}
  std::size_t rows() const noexcept { return rows_; }

  /// The column `key`, created with every row unset on first use. Throws std::bad_alloc.
  std::vector<double>& numbers(std::string_view key, Unset unset) {
    return column(key, Kind::kNumber, unset).numbers;
  }
  std::vector<std::int64_t>& integers(std::string_view key, Unset unset) {
    return column(key, Kind::kInteger, unset).integers;
  }
  std::vector<std::int8_t>& bools(std::string_view key, Unset unset) {
    return column(key, Kind::kBool, unset).bools;
  }
  std::vector<std::string>& json(std::string_view key, Unset unset) {
    return column(key, Kind::kJson, unset).json;
  }

  /// A number column another component filled, or nullptr.
  const std::vector<double>* find_numbers(std::string_view key) const noexcept {
    for (const Column& c : columns_)
      if (c.key == key && c.kind == Kind::kNumber) return &c.numbers;
    return nullptr;
  }
  const std::deque<Column>& columns() const noexcept { return columns_; }

 private:
  Column& column(std::string_view key, Kind kind, Unset unset) {
    for (Column& c : columns_)
      if (c.key == key && c.kind == kind) return c;
    Column& c = columns_.emplace_back();
    c.key = std::string(key);
    c.kind = kind;
    c.unset = unset;
    switch (kind) {
      case Kind::kNumber:
        c.numbers.assign(rows_, std::nan(""));
        break;
      case Kind::kInteger:
        c.integers.assign(rows_, kUnsetInteger);
        break;
      case Kind::kBool:
        c.bools.assign(rows_, kUnsetBool);
        break;
      case Kind::kJson:
        c.json.assign(rows_, std::string());
        break;
    }
    return c;
  }

  std::size_t rows_;
  std::deque<Column> columns_;  // a deque: references handed out stay valid as columns are added
};

}  // namespace trainmeter::detail
