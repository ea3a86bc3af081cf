#include "lbfgs.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/ceil_div.h"
#include "../core/thread_pool.h"

namespace saekit::cpu {
namespace {

// Math.max's rule, which the TypeScript followed: once NaN, always NaN.
double largerOrNan(double a, double b) { return std::isnan(a) || !(b > a || std::isnan(b)) ? a : b; }

// Blocks of kLbfgsBlock values on a pool of at most one thread a block. `each` runs
// body(block, begin, end) on every block; `pass` runs body(begin, end) -> partial result and
// returns the blocks' results in block order.
class Blocks {
 public:
  Blocks(int64_t n, int threads)
      : n_(n), count_(ceilDiv(n, kLbfgsBlock)),
        pool_(static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, count_)))) {}

  template <class Body>
  void each(const Body& body) {
    pool_.run(static_cast<size_t>(count_), [&](size_t block, int) {
      const int64_t begin = static_cast<int64_t>(block) * kLbfgsBlock;
      body(block, begin, std::min(n_, begin + kLbfgsBlock));
    });
  }

  template <class Body>
  auto pass(const Body& body) {
    std::vector<decltype(body(int64_t{}, int64_t{}))> partials(static_cast<size_t>(count_));
    each([&](size_t block, int64_t begin, int64_t end) { partials[block] = body(begin, end); });
    return partials;
  }

 private:
  int64_t n_;
  int64_t count_;
  ThreadPool pool_;
};

}  // namespace

double lbfgsDirection(const double* g, int64_t n, const LbfgsPairs& pairs, double gamma, double* direction,
                      int threads) {
  const int m = pairs.count;
  std::vector<double> alphas(static_cast<size_t>(m));
  Blocks blocks(n, threads);
  double* d = direction;
  // One pass: d[i] = update(i) for every i, and the sum of next[i] * d[i].
  const auto pass = [&](const auto& update, const double* next) {
    const std::vector<double> partials = blocks.pass([&](int64_t begin, int64_t end) {
      double sum = 0;
      for (int64_t i = begin; i < end; i++) {
        const double v = update(i);
        d[i] = v;
        sum += next[i] * v;
      }
      return sum;
    });
    double total = 0;
    for (const double blockSum : partials) total += blockSum;
    return total;
  };
  // First loop, newest pair first: alpha_j = rho_j s_j . d, then d -= alpha_j y_j.
  double sum = pass([&](int64_t i) { return -g[i]; }, pairs.s[m - 1]);
  for (int j = m - 1; j > 0; j--) {
    const double alpha = pairs.rho[j] * sum;
    alphas[static_cast<size_t>(j)] = alpha;
    const double* y = pairs.y[j];
    sum = pass([&](int64_t i) { return d[i] - alpha * y[i]; }, pairs.s[j - 1]);
  }
  // The oldest pair's update, the scaling by gamma and the second loop's first dot product.
  {
    const double alpha = pairs.rho[0] * sum;
    alphas[0] = alpha;
    const double* y = pairs.y[0];
    sum = pass([&](int64_t i) { return (d[i] - alpha * y[i]) * gamma; }, y);
  }
  // Second loop, oldest pair first: beta_j = rho_j y_j . d, then d += (alpha_j - beta_j) s_j;
  // the last pass takes the slope g . d.
  for (int j = 0; j < m; j++) {
    const double step = alphas[static_cast<size_t>(j)] - pairs.rho[j] * sum;
    const double* s = pairs.s[j];
    sum = pass([&](int64_t i) { return d[i] + step * s[i]; }, j + 1 < m ? pairs.y[j + 1] : g);
  }
  return sum;
}

LbfgsSteepest lbfgsSteepest(const double* g, int64_t n, double* direction, int threads) {
  const std::vector<LbfgsSteepest> partials = Blocks(n, threads).pass([&](int64_t begin, int64_t end) {
    LbfgsSteepest part{0, 0};
    for (int64_t i = begin; i < end; i++) {
      const double v = -g[i];
      direction[i] = v;
      part.slope += g[i] * v;
      part.l1 += std::abs(g[i]);
    }
    return part;
  });
  LbfgsSteepest total{0, 0};
  for (const LbfgsSteepest& part : partials) {
    total.slope += part.slope;
    total.l1 += part.l1;
  }
  return total;
}

void lbfgsStep(double* out, const double* origin, double alpha, const double* p, int64_t n, int threads) {
  Blocks(n, threads).each([&](size_t, int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) out[i] = origin[i] + alpha * p[i];
  });
}

LbfgsSlope lbfgsSlope(const double* g, const double* p, int64_t n, int threads) {
  const std::vector<LbfgsSlope> partials = Blocks(n, threads).pass([&](int64_t begin, int64_t end) {
    LbfgsSlope part{0, 0};
    for (int64_t i = begin; i < end; i++) {
      part.slope += g[i] * p[i];
      part.gMax = largerOrNan(part.gMax, std::abs(g[i]));
    }
    return part;
  });
  LbfgsSlope total{0, 0};
  for (const LbfgsSlope& part : partials) {
    total.slope += part.slope;
    total.gMax = largerOrNan(total.gMax, part.gMax);
  }
  return total;
}

LbfgsPairProducts lbfgsPair(double* s, double* y, const double* x0, const double* x1, const double* g0,
                            const double* g1, int64_t n, int threads) {
  const std::vector<LbfgsPairProducts> partials = Blocks(n, threads).pass([&](int64_t begin, int64_t end) {
    LbfgsPairProducts part{0, 0, 0};
    for (int64_t i = begin; i < end; i++) {
      const double si = x1[i] - x0[i];
      const double yi = g1[i] - g0[i];
      s[i] = si;
      y[i] = yi;
      part.sy += si * yi;
      part.ss += si * si;
      part.yy += yi * yi;
    }
    return part;
  });
  LbfgsPairProducts total{0, 0, 0};
  for (const LbfgsPairProducts& part : partials) {
    total.sy += part.sy;
    total.ss += part.ss;
    total.yy += part.yy;
  }
  return total;
}

}  // namespace saekit::cpu
