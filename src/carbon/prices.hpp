// Electricity prices per kWh for the cost what-if: the table compiled into the library
// (data/electricity_prices.tsv, each row with its source and year) or a user's file of the same
// columns. Pure functions, shared by the findings rule and the CLI.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace trainmeter::detail {

/// One price row. Thread-safe to read once returned.
struct ElectricityPrice {
  std::string code;          ///< ISO 3166-2 ("US-VA") or ISO 3166-1 alpha-2 ("FI"), upper case
  std::string name;          ///< English name of the place
  double price_per_kwh = 0;  ///< in `currency`, > 0
  std::string currency;      ///< ISO 4217 code, upper case ("USD", "EUR")
  int year = 0;              ///< data year
  std::string source;        ///< citation
};

/// Parses TSV text with the columns code, name, price_per_kwh, currency, year, source ('#'
/// comments and the header line skipped). Every problem is returned, one per bad line
/// ("line N: ..."); `errors` empty means every data line parsed.
struct ParsedPrices {
  std::vector<ElectricityPrice> rows;
  std::vector<std::string> errors;
};
ParsedPrices parse_price_table(std::string_view tsv);

/// The embedded table (data/electricity_prices.tsv), parsed once on first use.
const std::vector<ElectricityPrice>& price_table();

/// A user's price file. Throws trainmeter::Error naming `what` (the option or key that gave the
/// path) and every bad line when the file cannot be read, has no rows or has a bad line.
std::vector<ElectricityPrice> load_price_table(const std::string& path, const std::string& what);

}  // namespace trainmeter::detail
