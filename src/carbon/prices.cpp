#include "carbon/prices.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "carbon/intensity.hpp"
#include "platform/file.hpp"
#include "platform/text.hpp"
#include "trainmeter/error.hpp"

extern const char kElectricityPricesTsv[];
extern const std::size_t kElectricityPricesTsv_size;

namespace trainmeter::detail {
namespace {

// Prices above this per kWh in any currency are taken for a typing error (the dearest retail
// prices in our sources are below 1 USD or EUR; currencies with small units such as JPY stay
// well below it).
constexpr double kMaxPricePerKwh = 1e4;

bool upper_code(const std::string& s, std::size_t min, std::size_t max, bool dash) {
  if (s.size() < min || s.size() > max) return false;
  for (char c : s)
    if (!(std::isupper(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || (dash && c == '-')))
      return false;
  return true;
}

}  // namespace

ParsedPrices parse_price_table(std::string_view tsv) {
  ParsedPrices out;
  for_each_tsv_line(
      tsv, "code", [&](std::size_t line_no, const std::vector<std::string_view>& fields) {
        std::vector<std::string> f;
        for (std::string_view v : fields) f.emplace_back(trim_view(v));
        if (f.size() != 6) {
          out.errors.push_back(
              fmt::format("line {}: {} fields, expected 6 (code, name, "
                          "price_per_kwh, currency, year, source)",
                          line_no, f.size()));
          return;
        }
        ElectricityPrice row{f[0], f[1], 0, f[3], 0, f[5]};
        char* stop = nullptr;
        errno = 0;
        row.price_per_kwh = std::strtod(f[2].c_str(), &stop);
        const bool price_ok = !f[2].empty() && stop == f[2].c_str() + f[2].size() && errno == 0 &&
                              std::isfinite(row.price_per_kwh) && row.price_per_kwh > 0 &&
                              row.price_per_kwh <= kMaxPricePerKwh;
        const auto year = parse_int64(f[4].data(), f[4].data() + f[4].size());
        std::string bad;
        if (!upper_code(row.code, 2, 6, true))
          bad = "code \"" + row.code + "\" (ISO 3166, upper case)";
        else if (row.name.empty())
          bad = "empty name";
        else if (!price_ok)
          bad =
              fmt::format("price_per_kwh \"{}\" (a number > 0 and <= {:g})", f[2], kMaxPricePerKwh);
        else if (!upper_code(row.currency, 3, 3, false))
          bad = "currency \"" + row.currency + "\" (an ISO 4217 code such as USD or EUR)";
        else if (!year || *year < 1900 || *year > 2100)
          bad = "year \"" + f[4] + "\" (1900-2100)";
        else if (row.source.empty())
          bad = "empty source";
        if (bad.empty()) {
          row.year = static_cast<int>(*year);
          out.rows.push_back(std::move(row));
        } else {
          out.errors.push_back(fmt::format("line {}: {}", line_no, bad));
        }
      });
  return out;
}

const std::vector<ElectricityPrice>& price_table() {
  // The tests check that every embedded row parses, so no error can be dropped here.
  static const std::vector<ElectricityPrice> table =
      parse_price_table(std::string_view(kElectricityPricesTsv, kElectricityPricesTsv_size)).rows;
  return table;
}

std::vector<ElectricityPrice> load_price_table(const std::string& path, const std::string& what) {
  int err = 0;
  const auto text = read_text_file(path, std::size_t(16) << 20, &err);
  if (!text)
    throw Error(fmt::format("{}={}: cannot read the file: {}", what, path, errno_text(err)));
  ParsedPrices parsed = parse_price_table(*text);
  if (!parsed.errors.empty()) {
    std::string all;
    for (const std::string& e : parsed.errors) all += (all.empty() ? "" : "; ") + e;
    throw Error(fmt::format("{}={}: {}", what, path, all));
  }
  if (parsed.rows.empty())
    throw Error(
        fmt::format("{}={}: no price rows (columns: code, name, price_per_kwh, currency, "
                    "year, source)",
                    what, path));
  return std::move(parsed.rows);
}

}  // namespace trainmeter::detail
