// Kernel-level tests of the CPU backend, run for every kernel set this CPU supports:
// the matrix product against a plain double-precision loop for awkward shapes, the vector
// kernels against scalar formulas, and the thread pool's contract. Built by CMakeLists.txt
// and run with ctest; exits non-zero on the first failing check.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../core/normal.h"
#include "../core/rng.h"
#include "../core/thread_pool.h"
#include "../core/ziggurat.h"
#include "../cpu/activation.h"
#include "../cpu/gemm.h"
#include "../cpu/kernels.h"
#include "../cuda/gemm_tf32_layout.h"
#include "check.h"

using namespace saekit;
using namespace saekit::cpu;

namespace {

using testing::failures;

std::vector<float> randomVector(size_t n, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal());
  return v;
}

void testGemm(const Kernels& k, ThreadPool& pool) {
  struct Shape { int64_t m, n, kk; };
  const Shape shapes[] = {{1, 1, 1}, {5, 7, 3}, {6, 16, 256}, {13, 17, 300}, {100, 33, 257}, {7, 130, 513}, {200, 64, 64}};
  for (const Shape& s : shapes) {
    for (int layout = 0; layout < 2; ++layout) {
      for (int variant = 0; variant < 3; ++variant) {
        const bool shifted = variant == 1;
        const bool transposedA = variant == 2;
        const auto a = randomVector(s.m * s.kk, 1);
        const auto b = randomVector(s.n * s.kk, 2);
        const auto shift = randomVector(s.kk, 3);
        const bool rowsAreN = layout == 0;
        PackedB packed;
        packB(k, pool, b.data(), rowsAreN ? s.kk : s.n, rowsAreN ? Layout::RowsAreColumnsOfC : Layout::RowsAreK, s.n, s.kk, packed);
        std::vector<float> direct(s.m * s.n, -7.0f), viaScratch(s.m * s.n, -7.0f);
        GemmScratch scratch;
        const RowBlocking blocking = chooseRowBlocking(s.m, pool.size(), k.mr);
        const float* sh = shifted ? shift.data() : nullptr;
        std::vector<int> seen(blocking.count, 0);
        // The same values of A, stored [k, m] when transposed.
        std::vector<float> aT(s.m * s.kk);
        for (int64_t i = 0; i < s.m; ++i)
          for (int64_t q = 0; q < s.kk; ++q) aT[q * s.m + i] = a[i * s.kk + q];
        const OperandA opA = transposedA ? OperandA{aT.data(), s.m, true, sh} : OperandA{a.data(), s.kk, false, sh};
        gemm(k, pool, scratch, opA, s.m, packed, direct.data(), s.n, blocking,
             [&](int, int64_t block, int64_t, int64_t, float*, int64_t) { seen[block]++; });
        gemm(k, pool, scratch, opA, s.m, packed, nullptr, 0, blocking,
             [&](int, int64_t, int64_t row0, int64_t rows, float* c, int64_t ldc) {
               for (int64_t i = 0; i < rows; ++i)
                 for (int64_t j = 0; j < s.n; ++j) viaScratch[(row0 + i) * s.n + j] = c[i * ldc + j];
             });
        for (int count : seen) CHECK(count == 1, "%s: each row block reported once", k.name);
        double worst = 0;
        for (int64_t i = 0; i < s.m; ++i) {
          for (int64_t j = 0; j < s.n; ++j) {
            double expected = 0, scale = 0;
            for (int64_t q = 0; q < s.kk; ++q) {
              const double av = a[i * s.kk + q] - (sh ? sh[q] : 0.0f);
              const double bv = rowsAreN ? b[j * s.kk + q] : b[q * s.n + j];
              expected += av * bv;
              scale += std::fabs(av * bv);
            }
            worst = std::fmax(worst, std::fabs(direct[i * s.n + j] - expected) / (scale + 1e-30));
            CHECK(direct[i * s.n + j] == viaScratch[i * s.n + j], "%s: same result into C or scratch", k.name);
          }
        }
        CHECK(worst < 1e-6, "%s gemm m=%lld n=%lld k=%lld layout=%d variant=%d: relative error %g", k.name,
              (long long)s.m, (long long)s.n, (long long)s.kk, layout, variant, worst);
      }
    }
  }
}

void testVectorKernels(const Kernels& k) {
  for (int64_t n = 0; n <= 70; ++n) {
    const auto x = randomVector(n + 1, 10 + n);
    const auto y = randomVector(n + 1, 20 + n);
    double dot = 0, scale = 0;
    for (int64_t i = 0; i < n; ++i) {
      dot += double(x[i]) * y[i];
      scale += std::fabs(double(x[i]) * y[i]);
    }
    CHECK(std::fabs(k.dot(x.data(), y.data(), n) - dot) <= 1e-6 * (scale + 1), "%s dot n=%lld", k.name, (long long)n);

    std::vector<float> z = y;
    k.axpy(0.75f, x.data(), z.data(), n);
    for (int64_t i = 0; i < n; ++i) CHECK(std::fabs(z[i] - (y[i] + 0.75f * x[i])) < 1e-6, "%s axpy n=%lld", k.name, (long long)n);
    CHECK(z[n] == y[n], "%s axpy wrote past n=%lld", k.name, (long long)n);

    for (const float above : {0.0f, 0.4f, -0.3f}) {
      std::vector<int32_t> indices(n + 1, -1);
      std::vector<float> values(n + 1, -1.0f);
      const int64_t count = k.extractAbove(x.data(), y.data(), n, above, indices.data(), values.data());
      int64_t expectedCount = 0;
      for (int64_t j = 0; j < n; ++j) {
        const float z2 = x[j] + y[j];
        if (z2 > above) {
          CHECK(indices[expectedCount] == j && values[expectedCount] == z2, "%s extractAbove %g n=%lld", k.name, above,
                (long long)n);
          ++expectedCount;
        }
      }
      CHECK(count == expectedCount, "%s extractAbove %g count n=%lld", k.name, above, (long long)n);
    }

    std::vector<float> row = x;
    k.reluBias(row.data(), y.data(), n);
    for (int64_t j = 0; j < n; ++j) CHECK(row[j] == std::fmax(x[j] + y[j], 0.0f), "%s reluBias", k.name);

    for (int64_t bad = 0; bad < n; bad += 7) {
      std::vector<float> v = x;
      v[bad] = (bad % 2) ? NAN : -INFINITY;
      CHECK(k.firstNonFinite(v.data(), n) == bad, "%s firstNonFinite n=%lld bad=%lld", k.name, (long long)n, (long long)bad);
    }
    CHECK(k.firstNonFinite(x.data(), n) == n, "%s firstNonFinite clean n=%lld", k.name, (long long)n);

    // firstAbove at thresholds that put the first hit in the vector body, in the tail, and
    // nowhere; the scan must not read past n (the sentinel past it is above every threshold).
    for (const float threshold : {-10.0f, 0.0f, 0.5f, 1.5f, 100.0f}) {
      std::vector<float> pre = x, bias = y;
      pre[n] = 1000.0f;
      int64_t expected = n;
      for (int64_t j = 0; j < n; ++j) {
        if (pre[j] + bias[j] > threshold) {
          expected = j;
          break;
        }
      }
      CHECK(k.firstAbove(pre.data(), bias.data(), n, threshold) == expected, "%s firstAbove n=%lld threshold %g", k.name,
            (long long)n, threshold);
    }

    // topkExtract against sorting the whole row, with ties: values on a coarse grid.
    for (const int64_t kk : {int64_t{1}, int64_t{3}, n / 2 + 1, n + 2}) {
      std::vector<float> pre(n + 1), bias(n + 1, 0.0f);
      for (int64_t j = 0; j < n; ++j) pre[j] = std::round(x[j] * 4.0f) / 4.0f;
      std::vector<int64_t> order(n);
      for (int64_t j = 0; j < n; ++j) order[j] = j;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return pre[a] > pre[b]; });
      std::vector<int64_t> expected;
      for (int64_t i = 0; i < std::min(kk, n); ++i) {
        if (pre[order[i]] > 0.0f) expected.push_back(order[i]);
      }
      std::sort(expected.begin(), expected.end());
      TopkScratch scratch;
      std::vector<int32_t> topIndices(n + 1, -1);
      std::vector<float> topValues(n + 1, -1.0f);
      const int64_t found = topkExtract(k, pre.data(), bias.data(), n, kk, topIndices.data(), topValues.data(), scratch);
      bool same = found == static_cast<int64_t>(expected.size());
      for (int64_t i = 0; same && i < found; ++i) same = topIndices[i] == expected[i] && topValues[i] == pre[expected[i]];
      CHECK(same, "%s topkExtract n=%lld k=%lld: %lld found, %zu expected", k.name, (long long)n, (long long)kk,
            (long long)found, expected.size());
    }

    std::vector<float> p = x, m = y, v(n + 1, 0.5f), g = randomVector(n + 1, 30 + n);
    for (auto& vi : v) vi = std::fabs(vi);
    const AdamStep step{0.9f, 0.999f, 1e-8f, 0.01f, 0.3f};
    std::vector<float> p0 = p, m0 = m, v0 = v;
    k.adam(p.data(), m.data(), v.data(), g.data(), n, step);
    for (int64_t i = 0; i < n; ++i) {
      const double mi = 0.9 * m0[i] + 0.1 * g[i];
      const double vi = 0.999 * v0[i] + 0.001 * double(g[i]) * g[i];
      const double pi = p0[i] - 0.01 * mi / (std::sqrt(vi) / 0.3 + 1e-8);
      CHECK(std::fabs(p[i] - pi) < 1e-5 && std::fabs(m[i] - mi) < 1e-6 && std::fabs(v[i] - vi) < 1e-6, "%s adam i=%lld", k.name, (long long)i);
    }
  }
}

void testFistaKernels(const Kernels& k) {
  // combineRows: a sparse vector times a dense matrix, against a double-precision sum.
  const int64_t ld = 75;
  const auto matrix = randomVector(20 * ld, 40);
  for (int64_t n = 0; n <= 70; n += 1) {
    for (int64_t count : {0, 1, 3, 4, 5, 9}) {
      std::vector<int32_t> index(count);
      std::vector<float> coef = randomVector(count + 1, 50 + n + count);
      for (int64_t e = 0; e < count; ++e) index[e] = static_cast<int32_t>((7 * e + n) % 20);
      std::vector<float> out(n + 1, -3.0f);
      k.combineRows(matrix.data(), ld, index.data(), coef.data(), count, out.data(), n);
      for (int64_t j = 0; j < n; ++j) {
        double expected = 0, scale = 0;
        for (int64_t e = 0; e < count; ++e) {
          expected += double(coef[e]) * matrix[index[e] * ld + j];
          scale += std::fabs(double(coef[e]) * matrix[index[e] * ld + j]);
        }
        CHECK(std::fabs(out[j] - expected) <= 1e-6 * (scale + 1e-30), "%s combineRows n=%lld count=%lld j=%lld", k.name,
              (long long)n, (long long)count, (long long)j);
      }
      CHECK(out[n] == -3.0f, "%s combineRows wrote past n=%lld", k.name, (long long)n);
    }
  }

  // subtractRows: the same sparse product in double, subtracted, against a long-double sum.
  for (int64_t n = 0; n <= 21; ++n) {
    for (int64_t count : {0, 1, 2, 5}) {
      std::vector<int32_t> index(count);
      std::vector<double> values(count);
      for (int64_t e = 0; e < count; ++e) {
        index[e] = static_cast<int32_t>((5 * e + n) % 20);
        values[e] = 0.37 * (e + 1) - 0.8;
      }
      std::vector<double> out(n + 1, -3.0);
      for (int64_t j = 0; j < n; ++j) out[j] = 0.1 * j - 1.0;
      const std::vector<double> before = out;
      k.subtractRows(matrix.data(), ld, index.data(), values.data(), count, out.data(), n);
      for (int64_t j = 0; j < n; ++j) {
        long double expected = before[j];
        for (int64_t e = 0; e < count; ++e) expected -= static_cast<long double>(values[e]) * matrix[index[e] * ld + j];
        CHECK(std::fabs(out[j] - static_cast<double>(expected)) <= 1e-14, "%s subtractRows n=%lld count=%lld j=%lld", k.name,
              (long long)n, (long long)count, (long long)j);
      }
      CHECK(out[n] == -3.0, "%s subtractRows wrote past n=%lld", k.name, (long long)n);
    }
  }

  // fistaStep: the proximal step and the optimality measures, against the formulas.
  for (int nonNegative = 0; nonNegative < 2; ++nonNegative) {
    for (int64_t m = 0; m <= 37; ++m) {
      Rng rng(900 + m + 100 * nonNegative);
      std::vector<double> x(m), p(m), z(m + 1, -5.0);
      std::vector<float> xG(m), pG(m), c(m);
      for (int64_t j = 0; j < m; ++j) {
        x[j] = rng.uniform() < 0.5 ? 0.0 : rng.normal() * (nonNegative ? 0.0 : 1.0) + (nonNegative ? rng.uniform() : 0.0);
        p[j] = rng.normal();
        xG[j] = static_cast<float>(rng.normal());
        pG[j] = static_cast<float>(rng.normal());
        c[j] = static_cast<float>(rng.normal());
      }
      const FistaStep step{1.3, -0.3, 0.25, 0.2, 0.8, nonNegative == 1};
      std::vector<int32_t> index(m + 1, -1);
      std::vector<float> coef(m + 1, -1.0f);
      const FistaStepResult r = k.fistaStep(step, x.data(), p.data(), xG.data(), pG.data(), c.data(), z.data(),
                                            index.data(), coef.data(), m);
      double violation = 0, largest = 0, restart = 0;
      int64_t count = 0;
      for (int64_t j = 0; j < m; ++j) {
        const double g = double(xG[j]) - c[j];
        double error;
        if (x[j] > 0) error = std::fabs(g + step.lambda);
        else if (x[j] < 0) error = std::fabs(g - step.lambda);
        else error = nonNegative ? std::fmax(-g - step.lambda, 0.0) : std::fmax(std::fabs(g) - step.lambda, 0.0);
        violation = std::fmax(violation, error);
        largest = std::fmax(largest, nonNegative ? -g : std::fabs(g));
        const double y = step.alpha * x[j] + step.beta * p[j];
        const double w = y - (step.alpha * xG[j] + step.beta * pG[j] - c[j]) * step.invL;
        double expected = 0;
        if (w > step.threshold) expected = w - step.threshold;
        else if (!nonNegative && w < -step.threshold) expected = w + step.threshold;
        CHECK(std::fabs(z[j] - expected) <= 1e-12 * (1 + std::fabs(expected)), "%s fistaStep z m=%lld j=%lld", k.name,
              (long long)m, (long long)j);
        restart += (y - expected) * (expected - x[j]);
        if (expected != 0) {
          CHECK(index[count] == j && coef[count] == static_cast<float>(z[j]), "%s fistaStep index m=%lld", k.name, (long long)m);
          ++count;
        }
      }
      CHECK(z[m] == -5.0, "%s fistaStep wrote past m=%lld", k.name, (long long)m);
      CHECK(r.count == count, "%s fistaStep count m=%lld: %lld vs %lld", k.name, (long long)m, (long long)r.count, (long long)count);
      CHECK(std::fabs(r.violation - violation) <= 1e-12 && std::fabs(r.largest - largest) <= 1e-12,
            "%s fistaStep optimality m=%lld nonNegative=%d", k.name, (long long)m, nonNegative);
      CHECK(std::fabs(r.restart - restart) <= 1e-9 * (1 + std::fabs(restart)), "%s fistaStep restart m=%lld", k.name, (long long)m);
      // largestGradient: the same largest entry of g, exactly.
      CHECK(k.largestGradient(xG.data(), c.data(), m, nonNegative == 1) == largest,
            "%s largestGradient m=%lld nonNegative=%d", k.name, (long long)m, nonNegative);

      // workingSetPriorities: the Gap Safe order, infinite for zero atoms.
      std::vector<double> inverseNorms(m), priority(m + 1, -7.0);
      for (int64_t j = 0; j < m; ++j) inverseNorms[j] = j % 5 == 3 ? 0.0 : 0.5 + rng.uniform();
      const double u = 0.7;
      k.workingSetPriorities(xG.data(), c.data(), inverseNorms.data(), u, step.lambda, nonNegative == 1, priority.data(), m);
      for (int64_t j = 0; j < m; ++j) {
        const double g = double(xG[j]) - c[j];
        const double expected = (step.lambda - u * (nonNegative ? -g : std::fabs(g))) * inverseNorms[j];
        if (inverseNorms[j] == 0.0) {
          CHECK(priority[j] == std::numeric_limits<double>::infinity(), "%s workingSetPriorities zero atom m=%lld", k.name,
                (long long)m);
        } else {
          CHECK(std::fabs(priority[j] - expected) <= 1e-15 * (1 + std::fabs(expected)), "%s workingSetPriorities m=%lld j=%lld",
                k.name, (long long)m, (long long)j);
        }
      }
      CHECK(priority[m] == -7.0, "%s workingSetPriorities wrote past m=%lld", k.name, (long long)m);

      // indicesAtOrBelow: every j whose priority is at most a limit (ties included), in order.
      for (const double limit : {-1e300, 0.0, 0.3, 1e300}) {
        std::vector<int32_t> chosen(m + 1, -9);
        if (m > 2) priority[m / 2] = limit;  // a tie
        const int64_t count = k.indicesAtOrBelow(priority.data(), limit, chosen.data(), m);
        int64_t expected = 0;
        for (int64_t j = 0; j < m; ++j) {
          if (priority[j] > limit) continue;
          CHECK(expected < count && chosen[expected] == j, "%s indicesAtOrBelow m=%lld limit=%g j=%lld", k.name, (long long)m,
                limit, (long long)j);
          ++expected;
        }
        CHECK(count == expected && chosen[count] == -9, "%s indicesAtOrBelow count m=%lld limit=%g", k.name, (long long)m, limit);
      }

      // fistaStepSums of this z (zG arbitrary), against the sums in long double.
      std::vector<float> zG(m);
      for (int64_t j = 0; j < m; ++j) zG[j] = static_cast<float>(rng.normal());
      const FistaStepSums t = k.fistaStepSums(step.alpha, step.beta, x.data(), p.data(), z.data(), xG.data(), pG.data(),
                                              zG.data(), c.data(), m);
      long double along = 0, length = 0, dotC = 0, quadratic = 0, l1 = 0, change = 0, scale = 0;
      for (int64_t j = 0; j < m; ++j) {
        const long double delta = z[j] - (step.alpha * x[j] + step.beta * p[j]);
        along += delta * (zG[j] - (step.alpha * xG[j] + step.beta * pG[j]));
        length += delta * delta;
        dotC += z[j] * c[j];
        quadratic += z[j] * zG[j];
        l1 += std::fabs(z[j]);
        change += (z[j] - x[j]) * (0.5L * (static_cast<long double>(zG[j]) + xG[j]) - c[j]);
        scale += std::fabs(delta) * (std::fabs(zG[j]) + std::fabs(xG[j]) + std::fabs(pG[j]) + std::fabs(c[j]) + 1) +
                 (std::fabs(z[j]) + std::fabs(x[j])) * (std::fabs(zG[j]) + std::fabs(xG[j]) + std::fabs(c[j]) + 1);
      }
      const double tolerance = 1e-13 * static_cast<double>(scale + 1);
      const std::pair<double, long double> pairs[] = {{t.along, along},          {t.length, length}, {t.zDotC, dotC},
                                                      {t.zQuadratic, quadratic}, {t.zL1, l1},         {t.change, change}};
      for (const auto& [got, expected] : pairs) {
        CHECK(std::fabs(got - static_cast<double>(expected)) <= tolerance, "%s fistaStepSums m=%lld nonNegative=%d: %.17g vs %.17g",
              k.name, (long long)m, nonNegative, got, static_cast<double>(expected));
      }
    }
  }
}

void testThreadPool() {
  for (int threads : {1, 2, 5}) {
    ThreadPool pool(threads);
    for (size_t tasks : {0u, 1u, 3u, 1000u}) {
      std::vector<int> hits(tasks, 0);
      pool.run(tasks, [&](size_t task, int thread) {
        CHECK(thread >= 0 && thread < pool.size(), "thread index in range");
        hits[task]++;
      });
      for (int h : hits) CHECK(h == 1, "every task runs exactly once (threads %d, tasks %zu)", threads, tasks);
    }
    bool threw = false;
    try {
      pool.run(100, [](size_t task, int) {
        if (task == 37) throw std::runtime_error("task 37");
      });
    } catch (const std::runtime_error& e) {
      threw = std::string(e.what()) == "task 37";
    }
    CHECK(threw, "a task's exception reaches the caller (threads %d)", threads);
    int after = 0;
    pool.run(10, [&](size_t, int) { __atomic_add_fetch(&after, 1, __ATOMIC_RELAXED); });
    CHECK(after == 10, "the pool still works after an exception (threads %d)", threads);
  }
}

// The toy data's distribution code: Phi^-1 inverts Phi, the bracketed test u < Phi(c) agrees
// with the direct one everywhere (also right at the brackets' edges and at infinities), and
// the ziggurat's draws have the normal's moments.
void testNormalDistribution() {
  for (double p : {1e-300, 1e-12, 1e-3, 0.02425, 0.3, 0.5, 0.8, 0.999999}) {
    const double x = normalQuantile(p);
    // Relative 1e-12: one ulp of x moves Phi(x) by a relative |x| ulp(x), 3e-13 at p = 1e-300.
    CHECK(std::fabs(normalCdf(x) / p - 1) < 1e-12, "Phi(Phi^-1(%g)) = %.17g", p, normalCdf(x));
  }
  CHECK(std::isinf(normalQuantile(0.0)) && normalQuantile(0.0) < 0 && std::isinf(normalQuantile(1.0)), "Phi^-1 at 0 and 1");
  const NormalCdfBrackets& brackets = NormalCdfBrackets::table();
  Rng rng(11);
  int mismatches = 0;
  for (int i = 0; i < 2000000; ++i) {
    const double c = i % 1000 == 0 ? (i % 2000 == 0 ? INFINITY : -INFINITY) : 24.0 * rng.uniform() - 12.0;
    // Half the probes sit within a few ulps of Phi(c) or of a bracket edge, where a wrong
    // bracket would decide differently.
    const double grid = -9.0 + std::floor((c + 9.0) * 4096.0 / 18.0) * 18.0 / 4096.0;
    double u = rng.uniform();
    if (i % 4 == 1) u = std::nextafter(normalCdf(c), (i & 8) ? 2.0 : -1.0);
    if (i % 4 == 2) u = normalCdf(grid + ((i & 8) ? 18.0 / 4096.0 : 0.0));
    if (i % 4 == 3) u = normalCdf(c);
    if (brackets.below(u, c) != (u < normalCdf(c))) ++mismatches;
  }
  CHECK(mismatches == 0, "bracketed u < Phi(c) disagrees with the direct test %d times", mismatches);
  const Ziggurat& ziggurat = Ziggurat::table();
  const int n = 4000000;
  double sum = 0, squares = 0, fourth = 0;
  for (int i = 0; i < n; ++i) {
    const double z = ziggurat.normal(rng);
    sum += z;
    squares += z * z;
    fourth += z * z * z * z;
  }
  CHECK(std::fabs(sum / n) < 5.0 / std::sqrt(n), "ziggurat mean %g", sum / n);
  CHECK(std::fabs(squares / n - 1) < 5.0 * std::sqrt(2.0 / n), "ziggurat variance %g", squares / n);
  CHECK(std::fabs(fourth / n - 3) < 5.0 * std::sqrt(96.0 / n), "ziggurat fourth moment %g", fourth / n);
}


// The TF32 encoder kernel's layout (cuda/gemm_tf32_layout.h): the loaders write
// every float of a stage once, in coalesced 128-byte rows; ldmatrix reads and the epilogue's
// float2 stores meet no bank conflicts; the accumulators cover the tile once. The kernel itself,
// with ldmatrix and mma as the PTX ISA defines them, runs in cuda_emulated_tests.
void testTf32PipelineLayout() {
  namespace tf32 = saekit::cuda::tf32;
  using tf32::RowChunk;
  constexpr int kWarps = tf32::kThreads / 32;
  constexpr int kBanks = 32;

  std::vector<int> written(tf32::kOperandFloats, 0);
  for (int t = 0; t < tf32::kThreads; ++t) {
    for (int s = 0; s < tf32::kChunksPerThread; ++s) {
      const RowChunk at = tf32::loaderChunk(t, s);
      CHECK(at.row >= 0 && at.row < tf32::kTileRows && at.chunk >= 0 && at.chunk < tf32::kChunksPerRow,
            "thread %d copy %d: row %d chunk %d", t, s, at.row, at.chunk);
      const int offset = tf32::chunkOffset(at.row, at.chunk);
      CHECK(offset % tf32::kChunkFloats == 0, "chunk offset %d is not 16-byte aligned", offset);
      for (int e = 0; e < tf32::kChunkFloats; ++e) ++written[offset + e];
    }
  }
  CHECK(std::all_of(written.begin(), written.end(), [](int w) { return w == 1; }),
        "the loaders do not write every float of a stage exactly once");
  // Coalesced reads: each 8 consecutive threads copy the 8 chunks (128 contiguous bytes) of one row.
  int scattered = 0;
  for (int t = 0; t < tf32::kThreads; ++t) {
    for (int s = 0; s < tf32::kChunksPerThread; ++s) {
      const RowChunk at = tf32::loaderChunk(t, s), first = tf32::loaderChunk(t & ~7, s);
      if (at.row != first.row || at.chunk != (t & 7)) ++scattered;
    }
  }
  CHECK(scattered == 0, "%d chunk copies are not part of a contiguous 128-byte row read", scattered);
  CHECK(tf32::validFloats(0, 45) == 4 && tf32::validFloats(44, 45) == 1 && tf32::validFloats(45, 45) == 0 &&
            tf32::validFloats(48, 45) == 0 && tf32::validFloats(42, 45) == 3,
        "validFloats");

  // Each ldmatrix phase (8 lanes naming the 8 rows of one matrix) must touch 8 different
  // groups of 4 banks; each half-warp's float2 stores, 32 different banks.
  int ldmatrixConflicts = 0, storeConflicts = 0;
  for (int warp = 0; warp < kWarps; ++warp) {
    for (int ks = 0; ks < tf32::kTileDepth / 8; ++ks) {
      for (int f = 0; f < 4; ++f) {
        for (int q = 0; q < 4; ++q) {
          unsigned aGroups = 0, bGroups = 0;
          for (int r = 0; r < 8; ++r) {
            const RowChunk at = tf32::aFragmentRow(warp, f, ks, 8 * q + r);
            aGroups |= 1u << (tf32::chunkOffset(at.row, at.chunk) % kBanks / 4);
            if (f < 2) {
              const RowChunk bt = tf32::bFragmentRow(warp, f, ks, 8 * q + r);
              bGroups |= 1u << (tf32::chunkOffset(bt.row, bt.chunk) % kBanks / 4);
            }
          }
          if (aGroups != 0xffu) ++ldmatrixConflicts;
          if (f < 2 && bGroups != 0xffu) ++ldmatrixConflicts;
        }
      }
    }
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 4; ++j) {
        for (int e = 0; e < 4; e += 2) {
          for (int half = 0; half < 2; ++half) {
            uint64_t banks = 0;
            for (int lane = 16 * half; lane < 16 * half + 16; ++lane) {
              const int offset = tf32::accumulatorRow(warp, i, lane, e) * tf32::kEpilogueLd +
                                 tf32::accumulatorCol(warp, j, lane, e);
              CHECK(offset % 2 == 0, "float2 store at odd offset %d", offset);
              banks |= 3ull << (offset % kBanks);
            }
            if (banks != 0xffffffffull) ++storeConflicts;
          }
        }
      }
    }
  }
  CHECK(ldmatrixConflicts == 0, "%d ldmatrix phases meet a bank conflict", ldmatrixConflicts);
  CHECK(storeConflicts == 0, "%d half-warps' epilogue stores meet a bank conflict", storeConflicts);

  // Every element of the finished tile comes from exactly one accumulator register.
  std::vector<int> stored(static_cast<size_t>(tf32::kTileRows) * tf32::kTileRows, 0);
  for (int warp = 0; warp < kWarps; ++warp)
    for (int lane = 0; lane < 32; ++lane)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          for (int e = 0; e < 4; ++e) {
            const int r = tf32::accumulatorRow(warp, i, lane, e), c = tf32::accumulatorCol(warp, j, lane, e);
            if (r >= 0 && r < tf32::kTileRows && c >= 0 && c < tf32::kTileRows) ++stored[r * tf32::kTileRows + c];
          }
  CHECK(std::all_of(stored.begin(), stored.end(), [](int n) { return n == 1; }),
        "the accumulators do not cover the tile exactly once");
}

}  // namespace

int main() {
  ThreadPool pool(3);
  for (const Kernels* k : availableKernels()) {
    std::printf("kernel set %s (mr %d, nr %d)\n", k->name, k->mr, k->nr);
    testGemm(*k, pool);
    testVectorKernels(*k);
    testFistaKernels(*k);
  }
  testThreadPool();
  testNormalDistribution();
  testTf32PipelineLayout();
  std::printf("%s: %d failed checks\n", failures == 0 ? "ok" : "FAILED", failures);
  return failures == 0 ? 0 : 1;
}
