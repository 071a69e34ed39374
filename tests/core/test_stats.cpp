#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "base/stats.hpp"

using namespace trainmeter::detail;

TEST_CASE("running stats match a two-pass computation", "[stats]") {
  std::mt19937_64 rng(1);
  std::lognormal_distribution<double> dist(10, 0.5);
  std::vector<double> xs(10000);
  RunningStats s;
  for (double& x : xs) {
    x = dist(rng);
    s.add(x);
  }
  double mean = 0;
  for (double x : xs) mean += x;
  mean /= double(xs.size());
  double ss = 0;
  for (double x : xs) ss += (x - mean) * (x - mean);
  const double sd = std::sqrt(ss / double(xs.size() - 1));
  CHECK(s.count() == xs.size());
  CHECK(s.mean() == Approx(mean).epsilon(1e-12));
  CHECK(s.stddev() == Approx(sd).epsilon(1e-9));
  CHECK(s.min() == *std::min_element(xs.begin(), xs.end()));
  CHECK(s.max() == *std::max_element(xs.begin(), xs.end()));
}

TEST_CASE("exact quantiles interpolate between closest ranks", "[stats]") {
  const std::vector<double> v = {10, 20, 30, 40, 50};
  CHECK(exact_quantile_sorted(v, 0.5) == 30);
  CHECK(exact_quantile_sorted(v, 0.9) == Approx(46));  // rank 3.6 -> 40 + 0.6 * 10
  CHECK(exact_quantile_sorted(v, 0.0) == 10);
  CHECK(exact_quantile_sorted(v, 1.0) == 50);
  CHECK(std::isnan(exact_quantile_sorted({}, 0.5)));
}

TEST_CASE("the sketch answers within its stated relative error on skewed data", "[stats]") {
  std::mt19937_64 rng(7);
  // Step-like times: mostly ~1 ms with a heavy tail of stalls up to 100 ms.
  std::lognormal_distribution<double> body(std::log(1e6), 0.2);
  std::uniform_real_distribution<double> tail(5e6, 1e8);
  std::bernoulli_distribution stall(0.02);
  QuantileSketch sketch(0.005);
  std::vector<double> xs;
  for (int i = 0; i < 200000; ++i) {
    const double x = std::round(stall(rng) ? tail(rng) : body(rng));
    xs.push_back(x);
    sketch.add(x);
  }
  std::sort(xs.begin(), xs.end());
  for (double q : {0.01, 0.5, 0.9, 0.95, 0.99, 0.999}) {
    INFO("q=" << q);
    // The sketch answers rank floor(q (n-1)); compare with that sample.
    const double truth = xs[static_cast<std::size_t>(std::floor(q * double(xs.size() - 1)))];
    CHECK(std::fabs(sketch.quantile(q) - truth) / truth <= 0.005 + 1e-12);
    // And against the interpolated definition the report uses when exact: within 1%.
    CHECK(std::fabs(sketch.quantile(q) - exact_quantile_sorted(xs, q)) / truth <= 0.01);
  }
  QuantileSketch with_zero;
  with_zero.add(0);
  with_zero.add(0);
  with_zero.add(5);
  CHECK(with_zero.quantile(0.0) == 0);
  CHECK(with_zero.quantile(1.0) == Approx(5).epsilon(0.005));
}
