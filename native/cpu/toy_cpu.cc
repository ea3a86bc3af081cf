// Toy data generation on the CPU: samples in parallel chunks, each sample from its own random
// stream, so the stream is one deterministic sequence whatever the thread count and however it
// is cut into calls.
//
// Cost per sample: activity costs about one log per candidate feature (geometric jumps between
// candidates, see ActivityRun) rather than a draw per feature, plus r normals and, per
// candidate, an r-term dot product and a comparison with Phi for correlated activity. Then one
// axpy of length dim per active feature, and dim normals when there is noise.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/buffer.h"
#include "../core/ceil_div.h"
#include "../core/normal.h"
#include "../core/rng.h"
#include "../core/thread_pool.h"
#include "../core/toy.h"
#include "../core/ziggurat.h"
#include "kernels.h"

namespace saekit {
namespace {

constexpr int64_t kSampleChunk = 32;  // samples per task


uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// The seed of sample `index`'s stream. Rng runs it through splitmix64 again, so consecutive
// indices give unrelated streams; the dataset seed is mixed first so that nearby seeds do too.
uint64_t sampleSeed(uint64_t seed, uint64_t index) {
  return mix64(seed + 0x9e3779b97f4a7c15ULL) ^ index;
}

// A run of consecutive features whose probabilities lie between bound / 2 and bound. Active
// features in it are found by thinning: candidates come at geometric gaps as if every feature
// had probability `bound`, and each candidate is kept with probability p_i / bound. That costs
// a log per candidate, and candidates are at most twice the active features, instead of a
// uniform draw per feature (selection 9x faster for 512 features at p = 5/512). Dense runs (bound of
// 1/4 or more) and short ones take a Bernoulli draw per feature instead.
struct ActivityRun {
  int64_t begin;
  int64_t end;
  double bound;
  double inverseLogMiss;  // 1 / log(1 - bound)
  bool perFeature;
};

// Calls visit(i) for each feature of [begin, end) chosen independently with the probability
// whose 1 / log(1 - rate) is given, jumping over the others: P(gap >= k) = (1 - rate)^k.
template <class Visit>
void forEachCandidate(Rng& rng, int64_t begin, int64_t end, double inverseLogMiss, const Visit& visit) {
  for (int64_t i = begin - 1;;) {
    const double gap = std::floor(std::log(1.0 - rng.uniform()) * inverseLogMiss);
    if (!(gap < static_cast<double>(end - 1 - i))) return;
    i += 1 + static_cast<int64_t>(gap);
    visit(i);
  }
}

std::vector<ActivityRun> planActivityRuns(const double* p, int64_t n) {
  std::vector<ActivityRun> runs;
  for (int64_t begin = 0; begin < n;) {
    const double bound = p[begin];
    int64_t end = begin + 1;
    while (end < n && p[end] <= bound && p[end] >= 0.5 * bound) ++end;
    const bool perFeature = bound >= 0.25 || end - begin < 8;
    runs.push_back({begin, end, bound, perFeature ? 0.0 : 1.0 / std::log1p(-bound), perFeature});
    begin = end;
  }
  return runs;
}

// Bounds over one run of features of what decides their correlated activity.
struct LatentRunBounds {
  double threshold;        // max t_i
  double loadingNorm;      // max |a_i|
  double minInverseScale;  // min 1 / s_i
  double maxInverseScale;  // max 1 / s_i
};

float drawMagnitude(ToyMagnitude kind, Rng& rng) {
  switch (kind) {
    case ToyMagnitude::Uniform:
      return static_cast<float>(rng.uniform());
    case ToyMagnitude::Exponential:
      return static_cast<float>(-std::log1p(-rng.uniform()));
    case ToyMagnitude::Constant:
      return 1.0f;
  }
  return 0.0f;
}

}  // namespace

void generateToySamplesCpu(const ToySpec& spec, int64_t first, int64_t count, float* x, float* codes,
                           int threads) {
  checkToySpec(spec);
  if (count <= 0) return;
  const cpu::Kernels& kernels = cpu::kernels();
  const int64_t dim = spec.dim;
  const int64_t n = spec.numFeatures;
  const int64_t rank = spec.rank;
  const int64_t tasks = ceilDiv(count, kSampleChunk);

  const std::vector<ActivityRun> runs = planActivityRuns(spec.probabilities, n);
  // Correlated activity: 1 / s_i, the inverse of each feature's own standard deviation in its
  // latent, and for each run what bounds its features' conditional probabilities given e.
  std::vector<double> inverseOwnScale(rank > 0 ? static_cast<size_t>(n) : 0);
  std::vector<LatentRunBounds> latentBounds(rank > 0 ? runs.size() : 0);
  for (size_t r = 0; r < latentBounds.size(); ++r) {
    LatentRunBounds& bounds = latentBounds[r];
    bounds = {-INFINITY, 0.0, INFINITY, 0.0};
    for (int64_t i = runs[r].begin; i < runs[r].end; ++i) {
      double norm2 = 0.0;
      for (int64_t k = 0; k < rank; ++k) norm2 += static_cast<double>(spec.loadings[i * rank + k]) * spec.loadings[i * rank + k];
      inverseOwnScale[i] = 1.0 / std::sqrt(1.0 - norm2);
      bounds.threshold = std::max(bounds.threshold, spec.thresholds[i]);
      bounds.loadingNorm = std::max(bounds.loadingNorm, std::sqrt(norm2));
      bounds.minInverseScale = std::min(bounds.minInverseScale, inverseOwnScale[i]);
      bounds.maxInverseScale = std::max(bounds.maxInverseScale, inverseOwnScale[i]);
    }
  }
  const Ziggurat& gaussian = Ziggurat::table();
  const NormalCdfBrackets& cdf = NormalCdfBrackets::table();
  ThreadPool pool(static_cast<int>(std::min<int64_t>(std::max(threads, 1), tasks)));
  // Each thread's shared factors e on their own cache lines.
  const int64_t factorStride = (rank + 7) / 8 * 8;
  Buffer<double> factors(static_cast<size_t>(pool.size() * factorStride));
  pool.run(static_cast<size_t>(tasks), [&](size_t task, int thread) {
    double* e = factors.data() + thread * factorStride;
    const int64_t s1 = std::min(count, static_cast<int64_t>(task + 1) * kSampleChunk);
    for (int64_t s = static_cast<int64_t>(task) * kSampleChunk; s < s1; ++s) {
      Rng rng(sampleSeed(spec.seed, static_cast<uint64_t>(first + s)));
      float* row = x + s * dim;
      float* codeRow = codes != nullptr ? codes + s * n : nullptr;
      std::memset(row, 0, static_cast<size_t>(dim) * sizeof(float));
      if (codeRow != nullptr) std::memset(codeRow, 0, static_cast<size_t>(n) * sizeof(float));
      const auto activate = [&](int64_t i) {
        const float magnitude = drawMagnitude(spec.magnitude, rng);
        if (codeRow != nullptr) codeRow[i] = magnitude;
        kernels.axpy(magnitude, spec.features + i * dim, row, dim);
      };
      if (rank == 0) {
        for (const ActivityRun& run : runs) {
          if (run.bound == 0.0) continue;
          if (run.perFeature) {
            for (int64_t i = run.begin; i < run.end; ++i) {
              if (rng.uniform() < spec.probabilities[i]) activate(i);
            }
            continue;
          }
          forEachCandidate(rng, run.begin, run.end, run.inverseLogMiss, [&](int64_t i) {
            const double p = spec.probabilities[i];
            if (p == run.bound || rng.uniform() * run.bound < p) activate(i);
          });
        }
      } else {
        double norm2 = 0.0;
        for (int64_t k = 0; k < rank; ++k) {
          e[k] = gaussian.normal(rng);
          norm2 += e[k] * e[k];
        }
        const double factorNorm = std::sqrt(norm2);
        // Given e the features are independent, with P(z_i < t_i | e) = Phi(argument(i)).
        const auto argument = [&](int64_t i) {
          const float* a = spec.loadings + i * rank;
          double shared = 0.0;
          for (int64_t k = 0; k < rank; ++k) shared += a[k] * e[k];
          return (spec.thresholds[i] - shared) * inverseOwnScale[i];
        };
        for (size_t r = 0; r < runs.size(); ++r) {
          const ActivityRun& run = runs[r];
          if (run.bound == 0.0) continue;
          // t_i - a_i . e <= t_i + |a_i| |e| (Cauchy-Schwarz) bounds every argument in the run,
          // so Phi of the bound is a rate to thin from, as for independent activity.
          const LatentRunBounds& bounds = latentBounds[r];
          const double reach = bounds.threshold + bounds.loadingNorm * factorNorm;
          const double rate = normalCdf(reach * (reach >= 0.0 ? bounds.maxInverseScale : bounds.minInverseScale));
          if (rate >= 0.25 || run.end - run.begin < 8) {
            for (int64_t i = run.begin; i < run.end; ++i) {
              if (cdf.below(rng.uniform(), argument(i))) activate(i);
            }
          } else if (rate > 0.0) {
            forEachCandidate(rng, run.begin, run.end, 1.0 / std::log1p(-rate), [&](int64_t i) {
              if (cdf.below(rng.uniform() * rate, argument(i))) activate(i);
            });
          }
        }
      }
      if (spec.noise > 0.0) {
        for (int64_t j = 0; j < dim; ++j) row[j] += static_cast<float>(spec.noise * gaussian.normal(rng));
      }
    }
  });
}

}  // namespace saekit
