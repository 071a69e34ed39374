// Intensity tables (every row parses and is in range; alpha-2 and alpha-3 agree), time-series
// parsing and its errors, UTC timestamps, and integration of energy against a series with
// hand-computed weighted means.
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "carbon/intensity.hpp"
#include "support/test_support.hpp"
#include "trainmeter/error.hpp"

using namespace trainmeter::detail;
using Catch::Matchers::Contains;
using trainmeter::Error;

namespace {

constexpr std::int64_t kSec = 1000000000;
// 2026-11-28T10:00:00Z, computed independently: 20785 days from 1970-01-01 to 2026-11-28
// (56 years of which 14 leap: 56*365 + 14 = 20454 days to 2026-01-01, + 331 days of 2026 up to
// Nov 28) -> 20785 * 86400 + 10 * 3600.
constexpr std::int64_t kT10 = (20785LL * 86400 + 36000) * kSec;

std::string data_file(const char* name) {
  return trainmeter::test::read_file(std::string(TRAINMETER_SOURCE_DIR) + "/data/" + name);
}

}  // namespace

TEST_CASE("every country row parses, is in range and has a source and year", "[carbon][tables]") {
  const auto parsed = parse_country_table(data_file("country_carbon_intensity.tsv"));
  INFO((parsed.errors.empty() ? std::string() : parsed.errors.front()));
  CHECK(parsed.errors.empty());
  REQUIRE(parsed.rows.size() >= 200);
  // The embedded copy is the same file.
  CHECK(country_table().size() == parsed.rows.size());
  std::set<std::string> iso2, iso3;
  for (const auto& row : parsed.rows) {
    CHECK(row.g_per_kwh > 0);
    CHECK(row.g_per_kwh <= 2000);
    CHECK(row.year >= 2000);
    CHECK(row.year <= 2026);
    CHECK_FALSE(row.source.empty());
    CHECK(iso2.insert(row.iso2).second);
    CHECK(iso3.insert(row.iso3).second);
  }
}

TEST_CASE("alpha-2 and alpha-3 codes find the same row", "[carbon][tables]") {
  for (const auto& row : country_table()) {
    auto a2 = lookup_country(row.iso2);
    auto a3 = lookup_country(row.iso3);
    REQUIRE(a2);
    REQUIRE(a3);
    CHECK(a2->iso3 == row.iso3);
    CHECK(a3->iso2 == row.iso2);
    CHECK(a2->g_per_kwh == a3->g_per_kwh);
  }
  // Values re-typed from the reference table (Our World in Data via CodeCarbon).
  auto fr = lookup_country("fra");
  REQUIRE(fr);
  CHECK(fr->iso2 == "FR");
  CHECK(fr->g_per_kwh == 56.039);
  CHECK(fr->year == 2023);
  auto us = lookup_country(" us ");
  REQUIRE(us);
  CHECK(us->g_per_kwh == 369.473);
  CHECK_FALSE(lookup_country("XX"));
  CHECK_FALSE(lookup_country("FRAN"));
  CHECK_FALSE(lookup_country(""));
  // Stored as 0 in the source (no data): left out rather than read as zero carbon.
  CHECK_FALSE(lookup_country("CF"));
}

TEST_CASE("every cloud-region row parses and gcp, aws and azure are covered", "[carbon][tables]") {
  const auto parsed = parse_region_table(data_file("cloud_region_carbon_intensity.tsv"));
  INFO((parsed.errors.empty() ? std::string() : parsed.errors.front()));
  CHECK(parsed.errors.empty());
  CHECK(region_table().size() == parsed.rows.size());
  std::set<std::string> keys, providers;
  for (const auto& row : parsed.rows) {
    CHECK(row.g_per_kwh > 0);
    CHECK(row.g_per_kwh <= 2000);
    CHECK(row.year >= 2015);
    CHECK(row.year <= 2026);
    CHECK_FALSE(row.source.empty());
    CHECK(keys.insert(row.region).second);
    providers.insert(row.region.substr(0, row.region.find(':')));
    // The location's country is a real code of the country table.
    CHECK(lookup_country(row.country));
  }
  CHECK(providers == std::set<std::string>{"aws", "azure", "gcp"});
  auto paris = lookup_region("gcp:europe-west9");
  REQUIRE(paris);
  CHECK(paris->g_per_kwh == 34);
  CHECK(paris->country == "FR");
  auto we = lookup_region("azure:West Europe");
  REQUIRE(we);
  CHECK(we->region == "azure:westeurope");
  CHECK(we->g_per_kwh == 374.34);
  CHECK(we->year == 2020);
  auto virginia = lookup_region("AWS:us-east-1");
  REQUIRE(virginia);
  CHECK(virginia->g_per_kwh == 308);
  CHECK_FALSE(lookup_region("gcp:mars-north1"));
  CHECK_FALSE(lookup_region("europe-west9"));
}

TEST_CASE("table parsers report malformed rows by line", "[carbon][tables]") {
  const auto c = parse_country_table(
      "# comment\niso2\tiso3\tname\tg_per_kwh\tyear\tsource\n"
      "FR\tFRA\tFrance\t56\t2023\tsrc\n"
      "DE\tDEU\tGermany\t0\t2023\tsrc\n"     // zero intensity
      "GB\tGBR\tUK\t2001\t2023\tsrc\n"       // absurd
      "ES\tESP\tSpain\t170\t\tsrc\n"         // no year
      "IT\tITA\tItaly\t300\t2023\t\n"        // no source
      "xx\tXXX\tlower\t300\t2023\tsrc\n"     // lower-case code
      "NL\tNLD\tNetherlands\t268\t2023\n");  // 5 fields
  CHECK(c.rows.size() == 1);
  REQUIRE(c.errors.size() == 6);
  CHECK_THAT(c.errors[0], Contains("line 4"));
  CHECK_THAT(c.errors[5], Contains("line 9"));
  const auto r = parse_region_table(
      "gcp:Upper\tFR\tParis\t34\t2024\tsrc\n"
      "noprovider\tFR\tParis\t34\t2024\tsrc\n");
  CHECK(r.rows.empty());
  CHECK(r.errors.size() == 2);
}

TEST_CASE("UTC timestamps parse and format exactly", "[carbon][time]") {
  CHECK(parse_utc_timestamp("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_utc_timestamp("2026-11-28T10:00:00Z") == kT10);
  CHECK(parse_utc_timestamp("2026-11-28 10:00Z") == kT10);
  CHECK(parse_utc_timestamp("2026-11-28T10:00:00") == kT10);
  CHECK(parse_utc_timestamp("2026-11-28T11:30:00+01:30") == kT10);
  CHECK(parse_utc_timestamp("2026-11-28T08:00:00-0200") == kT10);
  CHECK(parse_utc_timestamp("2026-11-28T10:00:00.25Z") == kT10 + kSec / 4);
  CHECK(parse_utc_timestamp("2024-02-29T00:00:00Z") == 19782LL * 86400 * kSec);
  CHECK_FALSE(parse_utc_timestamp("2023-02-29T00:00:00Z"));
  CHECK_FALSE(parse_utc_timestamp("2026-13-01T00:00:00Z"));
  CHECK_FALSE(parse_utc_timestamp("2026-11-28"));
  CHECK_FALSE(parse_utc_timestamp("2026-11-28T10:00:00Zjunk"));
  CHECK_FALSE(parse_utc_timestamp("yesterday"));
  CHECK(format_utc(kT10 + 123456789) == "2026-11-28T10:00:00.123Z");
  CHECK(format_utc(0) == "1970-01-01T00:00:00.000Z");
  CHECK(parse_utc_timestamp(format_utc(kT10 + 5 * kSec)) == kT10 + 5 * kSec);
}

TEST_CASE("intensity series: header, comments, CRLF", "[carbon][series]") {
  const auto s = parse_intensity_series(
      "timestamp_utc,g_per_kwh\r\n# hourly\r\n\r\n2026-11-28T10:00:00Z,100\r\n"
      "2026-11-28T10:30:00Z, 500.5 \r\n",
      "grid.csv");
  REQUIRE(s.samples.size() == 2);
  CHECK(s.file == "grid.csv");
  CHECK(s.samples[0].unix_ns == kT10);
  CHECK(s.samples[0].g_per_kwh == 100);
  CHECK(s.samples[1].unix_ns == kT10 + 1800 * kSec);
  CHECK(s.samples[1].g_per_kwh == 500.5);
  // Without a header.
  CHECK(parse_intensity_series("2026-11-28T10:00:00Z,42\n", "x").samples.size() == 1);
}

TEST_CASE("intensity series errors name the file, the line and the value", "[carbon][series]") {
  auto fails = [](const std::string& csv, const std::string& what) {
    try {
      parse_intensity_series(csv, "grid.csv");
      FAIL("no error for: " << csv);
    } catch (const Error& e) {
      CHECK_THAT(e.what(), Contains("TRAINMETER_CARBON_INTENSITY_FILE=grid.csv"));
      CHECK_THAT(e.what(), Contains(what));
    }
  };
  fails("2026-11-28T10:00:00Z,100\n2026-11-28T09:00:00Z,200\n", "line 2");
  fails("2026-11-28T10:00:00Z,100\n2026-11-28T09:00:00Z,200\n", "strictly increasing");
  fails("2026-11-28T10:00:00Z,100\n2026-11-28T10:00:00Z,200\n", "line 2");
  fails("timestamp_utc,g_per_kwh\n2026-11-28T10:00:00Z,abc\n",
        "line 2: '2026-11-28T10:00:00Z,abc'");
  fails("2026-11-28T10:00:00Z,0\n", "(0, 2000]");
  fails("2026-11-28T10:00:00Z,2500\n", "'2500'");
  fails("2026-11-28T10:00:00Z,-3\n", "line 1");
  fails("2026-11-28T10:00:00Z;100\n", "expected 2 comma-separated fields");
  fails("2026-11-28T10:00:00Z,100,7\n", "found 3");
  fails("2026-11-28T10:00:00Z,100\n28/11/2026 11:00,200\n", "is not ISO 8601");
  fails("timestamp_utc,g_per_kwh\n# nothing\n", "no samples");
  fails("", "no samples");
  // A malformed first data line is not mistaken for a header.
  fails("2026-11-2810:00,abc\n", "line 1");
}

TEST_CASE("load_intensity_series reads a file and names an unreadable one", "[carbon][series]") {
  trainmeter::test::TempDir dir;
  trainmeter::test::write_file(dir / "g.csv", "2026-11-28T10:00:00Z,250\n");
  CHECK(load_intensity_series(dir / "g.csv").samples.at(0).g_per_kwh == 250);
  CHECK_THROWS_WITH(load_intensity_series(dir / "missing.csv"),
                    Contains("TRAINMETER_CARBON_INTENSITY_FILE=" + (dir / "missing.csv")) &&
                        Contains("cannot read"));
}

TEST_CASE("integration against a step change mid-run", "[carbon][series]") {
  IntensitySeries s;
  s.file = "grid.csv";
  s.samples = {{kT10, 100.0}, {kT10 + 1800 * kSec, 500.0}};

  SECTION("uniform power over an hour: half the energy at each value") {
    auto r = integrate_series(s, {{kT10, kT10 + 3600 * kSec, 3.6e6}});
    CHECK(r.energy_j == Approx(3.6e6));
    CHECK(r.weighted_g_per_kwh == Approx(300.0));
    CHECK(r.samples_used == 2);
    CHECK(r.energy_before_series_j == 0);
    CHECK(r.energy_after_last_sample_j == Approx(1.8e6));
  }
  SECTION("one interval crossing the change: 10 min before, 20 min after") {
    // 10:20 to 10:50: 10 min at 100, 20 min at 500 -> (100 + 2 * 500) / 3.
    auto r = integrate_series(s, {{kT10 + 1200 * kSec, kT10 + 3000 * kSec, 900.0}});
    CHECK(r.weighted_g_per_kwh == Approx(1100.0 / 3.0));
  }
  SECTION("energy before the first sample takes the first value and is counted") {
    auto r = integrate_series(s, {{kT10 - 600 * kSec, kT10 + 600 * kSec, 1000.0}});
    CHECK(r.weighted_g_per_kwh == Approx(100.0));
    CHECK(r.energy_before_series_j == Approx(500.0));
    CHECK(r.samples_used == 1);
  }
  SECTION("instant intervals take the value holding at their time") {
    auto r = integrate_series(s, {{kT10 + 1800 * kSec, kT10 + 1800 * kSec, 10.0},
                                  {kT10 + 60 * kSec, kT10 + 60 * kSec, 30.0}});
    // (10 * 500 + 30 * 100) / 40 = 200
    CHECK(r.weighted_g_per_kwh == Approx(200.0));
  }
  SECTION("no energy: weighted mean 0, nothing used") {
    auto r = integrate_series(s, {{kT10, kT10 + kSec, 0.0}});
    CHECK(r.energy_j == 0);
    CHECK(r.weighted_g_per_kwh == 0);
    CHECK(r.samples_used == 0);
  }
}
