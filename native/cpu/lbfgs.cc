#include "lbfgs.h"

#include <algorithm>
#include <vector>

#include "../core/ceil_div.h"
#include "../core/thread_pool.h"

namespace saekit::cpu {

double lbfgsDirection(const double* g, int64_t n, const LbfgsPairs& pairs, double gamma, double* direction,
                      int threads) {
  const int m = pairs.count;
  const int64_t blocks = ceilDiv(n, kLbfgsBlock);
  std::vector<double> partial(static_cast<size_t>(blocks));
  std::vector<double> alphas(static_cast<size_t>(m));
  ThreadPool pool(static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, blocks))));
  double* d = direction;
  // One pass: d[i] = update(i) for every i, and the sum of next[i] * d[i].
  const auto pass = [&](const auto& update, const double* next) {
    pool.run(static_cast<size_t>(blocks), [&](size_t block, int) {
      const int64_t begin = static_cast<int64_t>(block) * kLbfgsBlock;
      const int64_t end = std::min(n, begin + kLbfgsBlock);
      double sum = 0;
      for (int64_t i = begin; i < end; i++) {
        const double v = update(i);
        d[i] = v;
        sum += next[i] * v;
      }
      partial[block] = sum;
    });
    double total = 0;
    for (const double blockSum : partial) total += blockSum;
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

}  // namespace saekit::cpu
