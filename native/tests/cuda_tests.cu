// Tests of the CUDA backend that need no Node: the encoder product and its fused compaction
// against a double-precision host loop, and every operation of the CUDA SaeBackend (and RICA,
// FISTA coding and dictionary learning) against the CPU backend from the same inputs. Built
// only with CUDA (CMakeLists.txt) and run by ctest; where no GPU is usable it prints why and
// passes. Exits non-zero after the first run if any check failed, printing each failure with
// its configuration.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/fista.h"
#include "../core/rica.h"
#include "../core/rng.h"
#include "../core/sae.h"
#include "../cuda/device_buffer.cuh"
#include "../cuda/gemm.cuh"
#include "../cuda/matmul.cuh"
#include "../cuda/sparse.cuh"
#include "../cuda/status.h"
#include "check.h"

using namespace saekit;
using namespace saekit::cuda;

namespace {

using testing::checks;
using testing::failures;

std::vector<float> randomVector(size_t n, uint64_t seed, double scale = 1.0) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(scale * rng.normal());
  return v;
}

template <class T>
std::vector<T> toHost(const T* device, size_t n) {
  std::vector<T> host(n);
  if (n > 0) SAEKIT_CUDA_CHECK(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

template <class T>
void toDevice(T* device, const std::vector<T>& host) {
  if (!host.empty()) SAEKIT_CUDA_CHECK(cudaMemcpy(device, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
}

// max |a - b| / max |b|
double relativeError(const float* a, const float* b, size_t n) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale == 0 ? diff : diff / scale;
}

double relativeError(const Buffer<float>& a, const Buffer<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  return relativeError(a.data(), b.data(), a.size());
}

const char* name(GemmPrecision p) { return p == GemmPrecision::Fp32 ? "fp32" : "tf32"; }

// cuda::multiply against a double host loop, for the four transpose combinations, on shapes
// with tails past the 128-wide tiles and the 32-deep steps, an empty depth (zero, or c kept),
// and accumulation onto what c held. Each element is one fmaf chain: within 1e-5 of the
// largest value.
void testMultiply() {
  struct Shape { int64_t m, k, n; };
  const Shape shapes[] = {{1, 1, 1}, {3, 5, 2}, {129, 33, 130}, {127, 300, 31}, {257, 64, 129}, {40, 1000, 7},
                          {5, 0, 6}};
  for (const Shape& s : shapes) {
    const auto a = randomVector(static_cast<size_t>(s.m * s.k), 11);
    const auto b = randomVector(static_cast<size_t>(s.k * s.n), 12);
    const auto c0 = randomVector(static_cast<size_t>(s.m * s.n), 13);
    DeviceBuffer<float> da, db, dc;
    da.resize(std::max<size_t>(a.size(), 1));
    db.resize(std::max<size_t>(b.size(), 1));
    dc.resize(c0.size());
    for (const bool transposeA : {false, true}) {
      for (const bool transposeB : {false, true}) {
        // The same logical operands, stored as each layout needs.
        std::vector<float> storedA(a.size()), storedB(b.size());
        for (int64_t i = 0; i < s.m; ++i)
          for (int64_t q = 0; q < s.k; ++q) storedA[transposeA ? q * s.m + i : i * s.k + q] = a[i * s.k + q];
        for (int64_t q = 0; q < s.k; ++q)
          for (int64_t j = 0; j < s.n; ++j) storedB[transposeB ? j * s.k + q : q * s.n + j] = b[q * s.n + j];
        toDevice(da.data(), storedA);
        toDevice(db.data(), storedB);
        for (const bool accumulate : {false, true}) {
          toDevice(dc.data(), c0);
          multiply(da.data(), transposeA, db.data(), transposeB, s.m, s.k, s.n, dc.data(), accumulate, nullptr);
          SAEKIT_CUDA_CHECK(cudaDeviceSynchronize());
          const auto c = toHost(dc.data(), dc.size());
          std::vector<float> expected(c.size());
          for (int64_t i = 0; i < s.m; ++i)
            for (int64_t j = 0; j < s.n; ++j) {
              double sum = accumulate ? c0[i * s.n + j] : 0.0;
              for (int64_t q = 0; q < s.k; ++q) sum += static_cast<double>(a[i * s.k + q]) * b[q * s.n + j];
              expected[i * s.n + j] = static_cast<float>(sum);
            }
          const double error = relativeError(c.data(), expected.data(), c.size());
          CHECK(error < 1e-5, "multiply %ldx%ldx%ld transposeA %d transposeB %d accumulate %d: relative error %g", s.m,
                s.k, s.n, transposeA, transposeB, accumulate, error);
        }
      }
    }
  }
}

// The CUDA RICA backend against the CPU one from the same weights and rows: cost, terms and
// gradient, normalised and not; codes; Adam steps; weights and dictionary read back.
void testRicaParity(int64_t d, int64_t k, int64_t rows, bool normalizeRows) {
  char what[128];
  std::snprintf(what, sizeof what, "rica d %ld k %ld rows %ld normalizeRows %d", d, k, rows, normalizeRows);
  RicaConfig config;
  config.dIn = d;
  config.dHidden = k;
  config.lambda = 0.3f;
  config.normalizeRows = normalizeRows;
  config.lr = 1e-2f;
  config.seed = 5;
  config.threads = 2;
  auto cpu = createCpuRica(config);
  auto gpu = createCudaRica(config);
  const size_t size = static_cast<size_t>(d * k);
  std::vector<float> w0(size), w1(size);
  cpu->getWeights(w0.data());
  gpu->getWeights(w1.data());
  CHECK(w0 == w1, "%s: initial weights differ", what);
  auto w = randomVector(size, 21, 1.0 / std::sqrt(static_cast<double>(d)));
  for (int64_t j = 0; j < k; j += 3) w[j * d] *= 4.0f;  // uneven norms, so the normalisation matters
  const auto x = randomVector(static_cast<size_t>(rows * d), 22);
  std::vector<float> ga(size), gb(size);
  const RicaStats a = cpu->costGradient(w.data(), x.data(), rows, ga.data(), false);
  const RicaStats b = gpu->costGradient(w.data(), x.data(), rows, gb.data(), false);
  auto near = [](double p, double q) { return std::fabs(p - q) <= 1e-4 * std::max(std::fabs(q), 1e-30); };
  CHECK(near(b.loss, a.loss), "%s: loss %.9g vs %.9g", what, b.loss, a.loss);
  CHECK(near(b.sparsity, a.sparsity), "%s: sparsity %.9g vs %.9g", what, b.sparsity, a.sparsity);
  CHECK(near(b.reconstruction, a.reconstruction), "%s: reconstruction %.9g vs %.9g", what, b.reconstruction,
        a.reconstruction);
  CHECK(std::fabs(b.l0 - a.l0) <= 1.0 / static_cast<double>(rows), "%s: l0 %g vs %g", what, b.l0, a.l0);
  CHECK(relativeError(gb.data(), ga.data(), size) < 1e-4, "%s: gradient error %g", what,
        relativeError(gb.data(), ga.data(), size));

  cpu->setWeights(w.data());
  gpu->setWeights(w.data());
  std::vector<float> ca(static_cast<size_t>(rows * k)), cb(ca.size());
  cpu->encode(x.data(), rows, ca.data());
  gpu->encode(x.data(), rows, cb.data());
  CHECK(relativeError(cb.data(), ca.data(), ca.size()) < 1e-5, "%s: codes error %g", what,
        relativeError(cb.data(), ca.data(), ca.size()));
  cpu->dictionary(w0.data());
  gpu->dictionary(w1.data());
  CHECK(relativeError(w1.data(), w0.data(), size) < 1e-6, "%s: dictionary error %g", what,
        relativeError(w1.data(), w0.data(), size));
  for (int step = 0; step < 2; ++step) {
    const RicaStats sa = cpu->adamStep(x.data(), rows);
    const RicaStats sb = gpu->adamStep(x.data(), rows);
    CHECK(near(sb.loss, sa.loss), "%s: Adam step %d loss %.9g vs %.9g", what, step, sb.loss, sa.loss);
  }
  CHECK(gpu->stepsTaken() == 2, "%s: steps %ld", what, gpu->stepsTaken());
  cpu->getWeights(w0.data());
  gpu->getWeights(w1.data());
  // Adam's first steps are lr * sign(g) (eps 1e-8): a gradient within rounding of zero may step
  // the other way on one device, so a few weights (at most 1 in 1000) may differ by ~lr.
  double scale = 0;
  for (float v : w0) scale = std::max(scale, std::fabs(static_cast<double>(v)));
  size_t apart = 0;
  for (size_t i = 0; i < size; ++i) apart += std::fabs(static_cast<double>(w1[i]) - w0[i]) > 1e-4 * scale;
  CHECK(apart <= size / 1000, "%s: %zu of %zu weights apart after Adam", what, apart, size);
  CHECK(gpu->bytesHeld() >= 4 * size * sizeof(float), "%s: bytesHeld %zu", what, gpu->bytesHeld());
}

// costGradient with sameX on the CUDA backend: the same array again gives the same bits without
// copying it; other rows in the GPU's buffer since (encode, an Adam step) or another array (even
// with sameX) are copied afresh.
void testRicaSameX() {
  RicaConfig config;
  config.dIn = 24;
  config.dHidden = 11;
  config.lambda = 0.3f;
  config.seed = 5;
  config.threads = 2;
  const int64_t rows = 40;
  const size_t size = static_cast<size_t>(config.dIn * config.dHidden);
  auto gpu = createCudaRica(config);
  const auto w = randomVector(size, 23, 0.2);
  const auto x = randomVector(static_cast<size_t>(rows * config.dIn), 24);
  const auto other = randomVector(static_cast<size_t>(rows * config.dIn), 25);
  std::vector<float> expected(size), got(size), codes(static_cast<size_t>(rows * config.dHidden));
  const double loss = gpu->costGradient(w.data(), x.data(), rows, expected.data(), false).loss;
  const auto same = [&](const char* after) {
    const double again = gpu->costGradient(w.data(), x.data(), rows, got.data(), true).loss;
    CHECK(again == loss && got == expected, "rica sameX %s: loss %.9g vs %.9g", after, again, loss);
  };
  same("the first call");
  gpu->encode(other.data(), rows, codes.data());
  same("encode of other rows");
  gpu->adamStep(other.data(), rows);
  same("an Adam step on other rows");
  std::vector<float> otherGradient(size);
  const double otherLoss = gpu->costGradient(w.data(), other.data(), rows, otherGradient.data(), false).loss;
  gpu->costGradient(w.data(), x.data(), rows, got.data(), false);
  const double fresh = gpu->costGradient(w.data(), other.data(), rows, got.data(), true).loss;
  CHECK(fresh == otherLoss && got == otherGradient, "rica sameX with another array: loss %.9g vs %.9g", fresh,
        otherLoss);
}

// The FISTA settings both FISTA parity tests solve with.
FistaConfig fistaConfig(int64_t m, int64_t d, bool nonNegative) {
  FistaConfig config;
  config.dIn = d;
  config.dHidden = m;
  config.lambda = 0.3;
  config.maxIter = 20000;
  config.nonNegative = nonNegative;
  config.threads = 2;
  return config;
}

// The CUDA FistaCoder against the CPU one on the same dictionary and rows: L, and the converged
// solutions (per-row objectives to 1e-5, codes to 1e-3); both must converge. The iterates
// themselves differ by rounding, so iteration counts are not compared.
// passRows > 0 makes the GPU solve that many rows per pass (several passes per call).
void testFistaParity(int64_t m, int64_t d, int64_t rows, bool nonNegative, int64_t passRows = 0) {
  char what[160];
  std::snprintf(what, sizeof what, "fista m %ld d %ld rows %ld nonNegative %d passRows %ld", m, d, rows, nonNegative,
                passRows);
  FistaConfig config = fistaConfig(m, d, nonNegative);
  config.cudaPassRows = passRows;
  auto dictionary = randomVector(static_cast<size_t>(m * d), 31);
  for (int64_t j = 0; j < m; ++j) {
    double norm = 0;
    for (int64_t i = 0; i < d; ++i) norm += static_cast<double>(dictionary[j * d + i]) * dictionary[j * d + i];
    for (int64_t i = 0; i < d; ++i) dictionary[j * d + i] = static_cast<float>(dictionary[j * d + i] / std::sqrt(norm));
  }
  const auto x = randomVector(static_cast<size_t>(rows * d), 32);
  auto cpu = createCpuFista(config, dictionary.data());
  auto gpu = createCudaFista(config, dictionary.data());
  const double la = cpu->lipschitz(), lb = gpu->lipschitz();
  CHECK(std::fabs(lb - la) <= 1e-5 * la, "%s: L %.9g vs %.9g", what, lb, la);
  std::vector<float> ca(static_cast<size_t>(rows * m)), cb(ca.size());
  FistaRowResults ra, rb;
  cpu->encode(x.data(), rows, nullptr, ca.data(), ra);
  gpu->encode(x.data(), rows, nullptr, cb.data(), rb);
  for (int64_t r = 0; r < rows; ++r) {
    CHECK(ra.converged[r] == 1 && rb.converged[r] == 1, "%s: row %ld converged cpu %d cuda %d", what, r,
          ra.converged[r], rb.converged[r]);
    CHECK(std::fabs(rb.objective[r] - ra.objective[r]) <= 1e-5 * std::fabs(ra.objective[r]),
          "%s: row %ld objective %.9g vs %.9g", what, r, rb.objective[r], ra.objective[r]);
    CHECK(rb.kkt[r] <= config.tol, "%s: row %ld KKT %g", what, r, rb.kkt[r]);
  }
  CHECK(relativeError(cb.data(), ca.data(), ca.size()) < 1e-3, "%s: codes error %g", what,
        relativeError(cb.data(), ca.data(), ca.size()));
  if (nonNegative) {
    CHECK(std::all_of(cb.begin(), cb.end(), [](float v) { return v >= 0.0f; }), "%s: negative codes", what);
  }
}

// FistaDictionary on CUDA against the CPU from the same seed: the same first dictionary, then
// four learning steps (two halves of the rows under ids, the first half again so that its rows
// start from their kept codes, and a step without ids) with the same statistics and atoms. The
// GPU only codes; the host update is the CPU's code, so the dictionaries differ only as far as
// the codes do: solved to tol 1e-7, they stay within 1e-3.
void testFistaLearningParity(int64_t m, int64_t d, int64_t rows, bool nonNegative, int64_t passRows = 0) {
  char what[160];
  std::snprintf(what, sizeof what, "fista learning m %ld d %ld rows %ld nonNegative %d passRows %ld", m, d, rows,
                nonNegative, passRows);
  FistaConfig config = fistaConfig(m, d, nonNegative);
  config.cudaPassRows = passRows;
  config.tol = 1e-7;
  config.learning = true;
  config.seed = 11;
  auto cpu = createCpuFista(config, nullptr);
  auto gpu = createCudaFista(config, nullptr);
  std::vector<float> da(static_cast<size_t>(m * d)), db(da.size());
  cpu->getDictionary(da.data());
  gpu->getDictionary(db.data());
  CHECK(da == db, "%s: first dictionaries differ", what);
  const auto x = randomVector(static_cast<size_t>(rows * d), 33);
  std::vector<int32_t> ids(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) ids[r] = static_cast<int32_t>(r);
  const int64_t half = rows / 2;
  struct Step { int64_t row0, count; bool withIds; };
  const Step steps[] = {{0, half, true}, {half, rows - half, true}, {0, half, true}, {0, rows, false}};
  for (const Step& step : steps) {
    const float* batch = x.data() + step.row0 * d;
    const int32_t* rowIds = step.withIds ? ids.data() + step.row0 : nullptr;
    const FistaStepStats a = cpu->learnStep(batch, step.count, rowIds);
    const FistaStepStats b = gpu->learnStep(batch, step.count, rowIds);
    const auto near = [](double u, double v) { return std::fabs(u - v) <= 1e-3 * std::fabs(v); };
    CHECK(near(b.loss, a.loss) && near(b.mse, a.mse) && near(b.l1, a.l1),
          "%s: step %ld loss %.9g vs %.9g, mse %.9g vs %.9g, l1 %.9g vs %.9g", what, cpu->stepsTaken(), b.loss, a.loss,
          b.mse, a.mse, b.l1, a.l1);
    CHECK(std::fabs(b.l0 - a.l0) <= 0.02 * a.l0, "%s: step %ld l0 %g vs %g", what, cpu->stepsTaken(), b.l0, a.l0);
    CHECK(b.resampled == a.resampled, "%s: step %ld resampled %ld vs %ld", what, cpu->stepsTaken(), b.resampled,
          a.resampled);
  }
  CHECK(gpu->stepsTaken() == 4, "%s: stepsTaken %ld", what, gpu->stepsTaken());
  cpu->getDictionary(da.data());
  gpu->getDictionary(db.data());
  CHECK(relativeError(db.data(), da.data(), da.size()) < 1e-3, "%s: dictionary error %g", what,
        relativeError(db.data(), da.data(), da.size()));
}

struct ProductShape {
  int64_t rows, n, k;
  int64_t aOffset = 0;  // a starts this many floats into its buffer
  int64_t ld = 0;       // leading dimension of a and b; 0: k
  int64_t leading() const { return ld > 0 ? ld : k; }
};

std::string describe(GemmPrecision precision, const ProductShape& s) {
  char text[160];
  std::snprintf(text, sizeof text, "%s %ldx%ldx%ld (a offset %ld, ld %ld)", name(precision), s.rows, s.n, s.k, s.aOffset,
                s.leading());
  return text;
}

// What encoderProduct wrote, copied to the host.
struct ProductRun {
  std::vector<int32_t> counts;    // [rows, tiles]
  std::vector<int64_t> positions;  // [rows, tiles]
  std::vector<float> values;       // the pool, then a guard
  std::vector<int32_t> indices;
  unsigned long long used = 0;
};

// One encoderProduct on the host arrays (a with s.aOffset leading floats), into a pool of
// `usable` units (followed by a guard of -7s that nothing may overwrite).
ProductRun runProduct(GemmPrecision precision, const ProductShape& s, const std::vector<float>& a,
                      const std::vector<float>& b, const std::vector<float>& bias, int64_t usable,
                      int64_t maxColumnBlocks = kMaxGridY) {
  constexpr int64_t kGuard = 64;
  const int64_t tiles = ceilDiv(s.n, kGemmTileN);
  DeviceBuffer<float> da, db, dbias, values;
  DeviceBuffer<int32_t> counts, indices;
  DeviceBuffer<int64_t> positions;
  DeviceBuffer<unsigned long long> used;
  da.resize(a.size());
  db.resize(b.size());
  dbias.resize(bias.size());
  toDevice(da.data(), a);
  toDevice(db.data(), b);
  toDevice(dbias.data(), bias);
  values.resize(static_cast<size_t>(usable + kGuard));
  indices.resize(static_cast<size_t>(usable + kGuard));
  counts.resize(static_cast<size_t>(s.rows * tiles));
  positions.resize(static_cast<size_t>(s.rows * tiles));
  used.resize(1);
  toDevice(values.data(), std::vector<float>(static_cast<size_t>(usable + kGuard), -7.0f));
  SAEKIT_CUDA_CHECK(cudaMemset(used.data(), 0, sizeof(unsigned long long)));
  ActiveUnitsOut out{dbias.data(), 0.0f, tiles, counts.data(), positions.data(), values.data(), indices.data(),
                     usable, used.data()};
  encoderProduct(precision, da.data() + s.aOffset, s.leading(), s.rows, db.data(), s.leading(), s.n, s.k, out, nullptr,
                 maxColumnBlocks);
  SAEKIT_CUDA_CHECK(cudaDeviceSynchronize());
  return {toHost(counts.data(), counts.size()), toHost(positions.data(), positions.size()),
          toHost(values.data(), values.size()), toHost(indices.data(), indices.size()), toHost(used.data(), 1)[0]};
}

// Small integers (plus `shift`): with them every sum of products is exact in float and TF32.
std::vector<float> smallIntegers(size_t count, double shift, Rng& rng) {
  std::vector<float> v(count);
  for (auto& x : v) x = static_cast<float>(static_cast<double>(static_cast<int>(rng.next() % 7) - 3) + shift);
  return v;
}

// The encoder product and its compaction, against double sums: every unit clearly above zero
// is listed, nothing clearly below is, values match, each tile lists its units in increasing
// column order, the counts add up; and a pool too small is counted but not overrun. `exact`:
// small integers for inputs and half-integers for the bias, so that every kernel, TF32 ones
// included, must give every unit exactly; its runs also limit the grid to 2 column blocks, so
// that each block loops over several column tiles. The shapes take the TF32 kernel's
// 16-byte copies (a 16-byte aligned, ld % 4 == 0; with k % 4 != 0 some copy fewer bytes) and
// its 4-byte ones.
void testEncoderProduct(GemmPrecision precision, bool exact) {
  const ProductShape shapes[] = {{1, 1, 1},         {5, 7, 3},        {130, 129, 33},    {300, 260, 100},
                                 {64, 513, 257},    {129, 128, 31},   {260, 384, 64},    {97, 130, 36},
                                 {260, 384, 64, 1}, {200, 300, 768},  {150, 260, 45, 0, 48}, {33, 600, 7, 0, 8}};
  const double tolerance = exact ? 0.0 : precision == GemmPrecision::Tf32 ? 4e-3 : 1e-5;
  Rng integers(4);
  for (const ProductShape& s : shapes) {
    const int64_t ld = s.leading();
    const size_t aValues = static_cast<size_t>(s.rows * ld + s.aOffset), bValues = static_cast<size_t>(s.n * ld);
    const auto a = exact ? smallIntegers(aValues, 0.0, integers) : randomVector(aValues, 1);
    const auto b = exact ? smallIntegers(bValues, 0.0, integers)
                         : randomVector(bValues, 2, 1.0 / std::sqrt(static_cast<double>(s.k)));
    const auto bias = exact ? smallIntegers(static_cast<size_t>(s.n), 0.5, integers)
                            : randomVector(static_cast<size_t>(s.n), 3, 0.1);
    const int64_t tiles = ceilDiv(s.n, kGemmTileN);
    const int64_t capacity = s.rows * s.n;
    const std::string what = describe(precision, s) + (exact ? ", exact" : "");

    for (const bool overflow : {false, true}) {
      const int64_t usable = overflow ? 3 : capacity;
      const ProductRun run = runProduct(precision, s, a, b, bias, usable, exact ? 2 : kMaxGridY);
      int64_t total = 0;
      for (int32_t c : run.counts) total += c;
      CHECK(static_cast<int64_t>(run.used) == total, "%s: pool counter %llu, tile counts %ld", what.c_str(), run.used,
            total);
      if (overflow) {
        for (size_t i = static_cast<size_t>(usable); i < run.values.size(); ++i) {
          CHECK(run.values[i] == -7.0f, "%s: the epilogue wrote past a full pool at %zu", what.c_str(), i);
        }
        continue;
      }
      const int misses = testing::productMisses(a.data() + s.aOffset, b.data(), bias.data(), s.rows, s.n, s.k, ld,
                                                kGemmTileN, run.counts.data(), run.positions.data(), run.values.data(),
                                                run.indices.data(), tolerance);
      CHECK(misses == 0, "%s: %d units missing, misplaced or wrong", what.c_str(), misses);
    }
  }
}

// cvt.rna.tf32.f32 on the host: to nearest TF32 (10-bit mantissa), ties away from zero.
float roundToTf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits = (bits + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &bits, sizeof x);
  return x;
}

// The TF32 kernel rounds both operands to nearest TF32, ties away from zero (not truncating,
// which is what the tensor cores do with unrounded FP32, nor to even). One operand holds
// values 1 to 2 in magnitude whose bits below TF32's are a quarter, a half or three quarters
// of a TF32 step (down, a tie, up), the other small integers; then every product and every
// sum is exact in FP32, and the product must equal, bit for bit, the double product of the
// operands rounded on the host, in whatever order the hardware sums. A kernel that truncated,
// rounded ties to even, or left either operand unrounded misses most units.
void testTf32Rounding() {
  const ProductShape shapes[] = {{300, 260, 100}, {129, 513, 257}, {97, 130, 45, 0, 48}};
  Rng rng(8);
  const auto offGrid = [&](size_t count) {
    std::vector<float> v(count);
    for (auto& x : v) {
      const double step = 1.0 / 1024;  // TF32's spacing in [1, 2)
      const double value = 1.0 + static_cast<double>(rng.next() % 1024) * step + static_cast<double>(1 + rng.next() % 3) * step / 4;
      x = static_cast<float>(rng.next() % 2 == 0 ? value : -value);
    }
    return v;
  };
  for (const ProductShape& s : shapes) {
    const int64_t ld = s.leading();
    const size_t aValues = static_cast<size_t>(s.rows * ld), bValues = static_cast<size_t>(s.n * ld);
    for (const bool roundedA : {true, false}) {
      const auto a = roundedA ? offGrid(aValues) : smallIntegers(aValues, 0.0, rng);
      const auto b = roundedA ? smallIntegers(bValues, 0.0, rng) : offGrid(bValues);
      const auto bias = smallIntegers(static_cast<size_t>(s.n), 0.5, rng);
      std::vector<float> aTf32(a), bTf32(b);
      for (auto& x : aTf32) x = roundToTf32(x);
      for (auto& x : bTf32) x = roundToTf32(x);
      const ProductRun run = runProduct(GemmPrecision::Tf32, s, a, b, bias, s.rows * s.n);
      const int misses = testing::productMisses(aTf32.data(), bTf32.data(), bias.data(), s.rows, s.n, s.k, ld,
                                                kGemmTileN, run.counts.data(), run.positions.data(), run.values.data(),
                                                run.indices.data(), 0.0);
      CHECK(misses == 0, "%s, %s rounded: %d units differ from the product of the operands rounded to TF32",
            describe(GemmPrecision::Tf32, s).c_str(), roundedA ? "a" : "b", misses);
    }
  }
}

struct Case {
  const char* label;
  bool tied;
  bool applyBDecToInput;
  Activation activation;
  int64_t k;
  Precision precision;
  int64_t d, m, rows;
  int64_t auxK = 0;  // > 0: AuxK on, with every fourth feature (from 1) dead
};

bool deadInCase(const Case& c, int64_t j) { return c.auxK > 0 && j % 4 == 1; }

std::string describe(const Case& c) {
  char text[256];
  std::snprintf(text, sizeof text, "%s (%s, tied %d, applyBDecToInput %d, d %ld, m %ld, rows %ld, auxK %ld)", c.label,
                name(c.precision == Precision::TF32 ? GemmPrecision::Tf32 : GemmPrecision::Fp32), c.tied,
                c.applyBDecToInput, c.d, c.m, c.rows, c.auxK);
  return text;
}

// Pre-activations in double, for choosing inputs away from the activation's decision points.
std::vector<double> preActivations(const Case& c, const std::vector<float>& enc, const std::vector<float>& bEnc,
                                   const std::vector<float>& bDec, const float* x, int64_t rows) {
  std::vector<double> pre(static_cast<size_t>(rows * c.m));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < c.m; ++j) {
      double s = bEnc[j];
      for (int64_t i = 0; i < c.d; ++i) s += (x[r * c.d + i] - (c.applyBDecToInput ? bDec[i] : 0.0f)) * enc[i * c.m + j];
      pre[r * c.m + j] = s;
    }
  return pre;
}

// Every operation of the CUDA backend against the CPU backend, from the same parameters.
void testBackendParity(const Case& c) {
  const std::string what = describe(c);
  const double tol = c.precision == Precision::TF32 ? 1e-2 : 1e-4;
  SaeConfig config;
  config.dIn = c.d;
  config.dHidden = c.m;
  config.tied = c.tied;
  config.applyBDecToInput = c.applyBDecToInput;
  config.activation = c.activation;
  config.k = c.k;
  config.thresholdStartStep = 0;
  config.l1Coeff = 0.05f;
  // 1e-4 keeps three steps from moving a pre-activation across the inputs' margin (as in
  // test/cuda.parity.test.ts, where a TF32 run at 1e-3 saw a unit reach zero on one device only).
  config.lr = 1e-4f;
  config.eps = 0.1f;  // keeps Adam's first step a smooth function of the gradient
  config.seed = 7;
  config.threads = 2;
  config.precision = c.precision;
  config.auxK = c.auxK;
  config.auxKCoeff = 0.5f;
  config.auxKWindow = 100;
  auto cpu = createCpuSae(config);
  auto gpu = createCudaSae(config);

  // The same initialisation from the seed.
  std::vector<float> cpuDec(static_cast<size_t>(c.m * c.d)), gpuDec(cpuDec.size());
  cpu->getParameter(SaeParam::DecoderWeights, SaeSlot::Value, cpuDec.data());
  gpu->getParameter(SaeParam::DecoderWeights, SaeSlot::Value, gpuDec.data());
  CHECK(cpuDec == gpuDec, "%s: initial decoders differ", what.c_str());

  // Random parameters everywhere, set on both.
  const double s = 1.0 / std::sqrt(static_cast<double>(c.d));
  const auto enc = randomVector(static_cast<size_t>(c.d * c.m), 11, s);
  const auto dec = randomVector(static_cast<size_t>(c.m * c.d), 12, s);
  const auto bEnc = randomVector(static_cast<size_t>(c.m), 13, 0.1);
  const auto bDec = randomVector(static_cast<size_t>(c.d), 14, 0.1);
  for (SaeBackend* b : {cpu.get(), gpu.get()}) {
    if (!c.tied) b->setParameter(SaeParam::EncoderWeights, SaeSlot::Value, enc.data());
    b->setParameter(SaeParam::DecoderWeights, SaeSlot::Value, dec.data());
    b->setParameter(SaeParam::EncoderBias, SaeSlot::Value, bEnc.data());
    b->setParameter(SaeParam::DecoderBias, SaeSlot::Value, bDec.data());
  }
  std::vector<float> roundTrip(enc.size());
  if (!c.tied) {
    gpu->getParameter(SaeParam::EncoderWeights, SaeSlot::Value, roundTrip.data());
    CHECK(roundTrip == enc, "%s: encoder weights do not read back as set", what.c_str());
  }
  std::vector<float> encoderPublic(enc.size());
  cpu->getParameter(SaeParam::EncoderWeights, SaeSlot::Value, encoderPublic.data());
  if (c.auxK > 0) {
    // 1000 samples seen; the dead features last fired at sample 0, the others at 1000 (the
    // window of 100 outlasts the three training steps below).
    std::vector<int64_t> lastFired(static_cast<size_t>(c.m));
    for (int64_t j = 0; j < c.m; ++j) lastFired[j] = deadInCase(c, j) ? 0 : 1000;
    for (SaeBackend* b : {cpu.get(), gpu.get()}) b->setFiringState(1000, lastFired.data());
  }

  // Inputs whose pre-activations keep away from zero (ReLU), and whose k-th and (k+1)-th
  // largest per row keep apart (TopK), by more than the precision's error.
  const double margin = c.precision == Precision::TF32 ? 0.02 : 0.002;
  std::vector<float> x(static_cast<size_t>(c.rows * c.d));
  Rng rng(99);
  for (int batchAttempt = 0;; ++batchAttempt) {
    for (int64_t r = 0; r < c.rows; ++r) {
      for (int attempt = 0;; ++attempt) {
        for (int64_t i = 0; i < c.d; ++i) x[r * c.d + i] = static_cast<float>(rng.normal());
        auto pre = preActivations(c, encoderPublic, bEnc, bDec, x.data() + r * c.d, 1);
        bool ok = std::all_of(pre.begin(), pre.end(), [&](double v) { return std::fabs(v) > margin; });
        if (ok && c.auxK > 0) {
          // AuxK's choice among the dead features' positive values keeps apart too.
          std::vector<double> dead;
          for (int64_t j = 0; j < c.m; ++j) {
            if (deadInCase(c, j) && pre[j] > 0.0) dead.push_back(pre[j]);
          }
          std::sort(dead.begin(), dead.end(), std::greater<double>());
          ok = static_cast<int64_t>(dead.size()) <= c.auxK || dead[c.auxK - 1] - dead[c.auxK] > margin;
        }
        if (ok && c.activation == Activation::TopK && c.k < c.m) {
          std::sort(pre.begin(), pre.end(), std::greater<double>());
          ok = pre[c.k - 1] - pre[c.k] > margin;
        }
        if (ok || attempt > 2000) break;
      }
    }
    if (c.activation != Activation::BatchTopK) break;
    // BatchTopK: the (k rows)-th and next largest of the whole batch keep apart too.
    auto pre = preActivations(c, encoderPublic, bEnc, bDec, x.data(), c.rows);
    std::sort(pre.begin(), pre.end(), std::greater<double>());
    const size_t keep = static_cast<size_t>(c.k * c.rows);
    if (keep >= pre.size() || pre[keep - 1] - pre[keep] > margin || batchAttempt > 200) break;
  }

  SaeGradients cpuGrad, gpuGrad;
  const StepStats cs = cpu->gradients(x.data(), c.rows, cpuGrad);
  const StepStats gs = gpu->gradients(x.data(), c.rows, gpuGrad);
  CHECK(cs.l0 == gs.l0, "%s: l0 %g (cpu) vs %g (cuda)", what.c_str(), cs.l0, gs.l0);
  CHECK(std::fabs(cs.auxLoss - gs.auxLoss) <= tol * std::fabs(cs.auxLoss), "%s: auxLoss %g vs %g", what.c_str(),
        cs.auxLoss, gs.auxLoss);
  CHECK((cs.auxLoss > 0.0) == (c.auxK > 0), "%s: auxLoss %g with auxK %ld", what.c_str(), cs.auxLoss, c.auxK);
  CHECK(std::fabs(cs.loss - gs.loss) <= tol * std::fabs(cs.loss), "%s: loss %g vs %g", what.c_str(), cs.loss, gs.loss);
  CHECK(std::fabs(cs.mse - gs.mse) <= tol * std::fabs(cs.mse), "%s: mse %g vs %g", what.c_str(), cs.mse, gs.mse);
  CHECK(std::fabs(cs.l1 - gs.l1) <= tol * std::fabs(cs.l1) + 1e-12, "%s: l1 %g vs %g", what.c_str(), cs.l1, gs.l1);
  CHECK(relativeError(gpuGrad.decoderWeights, cpuGrad.decoderWeights) < tol, "%s: decoder gradient error %g",
        what.c_str(), relativeError(gpuGrad.decoderWeights, cpuGrad.decoderWeights));
  CHECK(relativeError(gpuGrad.encoderBias, cpuGrad.encoderBias) < tol, "%s: encoder bias gradient error %g",
        what.c_str(), relativeError(gpuGrad.encoderBias, cpuGrad.encoderBias));
  CHECK(relativeError(gpuGrad.decoderBias, cpuGrad.decoderBias) < tol, "%s: decoder bias gradient error %g",
        what.c_str(), relativeError(gpuGrad.decoderBias, cpuGrad.decoderBias));
  CHECK(gpuGrad.encoderWeights.size() == cpuGrad.encoderWeights.size(), "%s: encoder gradient size", what.c_str());
  if (!c.tied) {
    CHECK(relativeError(gpuGrad.encoderWeights, cpuGrad.encoderWeights) < tol, "%s: encoder gradient error %g",
          what.c_str(), relativeError(gpuGrad.encoderWeights, cpuGrad.encoderWeights));
  }

  // Inference.
  std::vector<float> cpuCodes(static_cast<size_t>(c.rows * c.m)), gpuCodes(cpuCodes.size());
  cpu->encode(x.data(), c.rows, cpuCodes.data());
  gpu->encode(x.data(), c.rows, gpuCodes.data());
  CHECK(relativeError(gpuCodes.data(), cpuCodes.data(), cpuCodes.size()) < tol, "%s: encode error %g", what.c_str(),
        relativeError(gpuCodes.data(), cpuCodes.data(), cpuCodes.size()));
  SparseCodes cpuSparse, gpuSparse;
  cpu->encodeSparse(x.data(), c.rows, cpuSparse);
  gpu->encodeSparse(x.data(), c.rows, gpuSparse);
  const bool sameStructure =
      cpuSparse.indptr.size() == gpuSparse.indptr.size() &&
      std::equal(cpuSparse.indptr.data(), cpuSparse.indptr.data() + cpuSparse.indptr.size(), gpuSparse.indptr.data()) &&
      cpuSparse.indices.size() == gpuSparse.indices.size() &&
      std::equal(cpuSparse.indices.data(), cpuSparse.indices.data() + cpuSparse.indices.size(), gpuSparse.indices.data());
  CHECK(sameStructure, "%s: encodeSparse selects other units", what.c_str());
  if (sameStructure) {
    CHECK(relativeError(gpuSparse.values, cpuSparse.values) < tol, "%s: encodeSparse values error %g", what.c_str(),
          relativeError(gpuSparse.values, cpuSparse.values));
  }
  std::vector<float> cpuOut(static_cast<size_t>(c.rows * c.d)), gpuOut(cpuOut.size());
  cpu->decode(cpuCodes.data(), c.rows, cpuOut.data());
  gpu->decode(cpuCodes.data(), c.rows, gpuOut.data());
  CHECK(relativeError(gpuOut.data(), cpuOut.data(), cpuOut.size()) < 1e-5, "%s: decode error %g", what.c_str(),
        relativeError(gpuOut.data(), cpuOut.data(), cpuOut.size()));
  const SparseCodesView view{cpuSparse.rows, cpuSparse.cols, cpuSparse.indptr.data(), cpuSparse.indices.data(),
                             cpuSparse.values.data()};
  cpu->decodeSparse(view, cpuOut.data());
  gpu->decodeSparse(view, gpuOut.data());
  CHECK(relativeError(gpuOut.data(), cpuOut.data(), cpuOut.size()) < 1e-5, "%s: decodeSparse error %g", what.c_str(),
        relativeError(gpuOut.data(), cpuOut.data(), cpuOut.size()));
  cpu->reconstruct(x.data(), c.rows, cpuOut.data());
  gpu->reconstruct(x.data(), c.rows, gpuOut.data());
  CHECK(relativeError(gpuOut.data(), cpuOut.data(), cpuOut.size()) < tol, "%s: reconstruct error %g", what.c_str(),
        relativeError(gpuOut.data(), cpuOut.data(), cpuOut.size()));

  // Training: three steps, then every parameter and moment, and the bookkeeping.
  for (int step = 0; step < 3; ++step) {
    const StepStats a = cpu->trainStep(x.data(), c.rows, StepOverrides{}, BatchStaging{});
    const StepStats b = gpu->trainStep(x.data(), c.rows, StepOverrides{}, BatchStaging{});
    CHECK(std::fabs(a.loss - b.loss) <= tol * std::fabs(a.loss), "%s: step %d loss %g vs %g", what.c_str(), step,
          a.loss, b.loss);
  }
  CHECK(cpu->stepsTaken() == gpu->stepsTaken() && gpu->samplesSeen() == (c.auxK > 0 ? 1000 : 0) + 3 * c.rows,
        "%s: step bookkeeping", what.c_str());
  for (SaeParam p : {SaeParam::EncoderWeights, SaeParam::EncoderBias, SaeParam::DecoderWeights, SaeParam::DecoderBias}) {
    for (SaeSlot slot : {SaeSlot::Value, SaeSlot::AdamFirstMoment, SaeSlot::AdamSecondMoment}) {
      const size_t n = p == SaeParam::EncoderBias ? c.m : p == SaeParam::DecoderBias ? c.d : c.m * c.d;
      std::vector<float> a(n), b(n);
      cpu->getParameter(p, slot, a.data());
      gpu->getParameter(p, slot, b.data());
      const double error = relativeError(b.data(), a.data(), n);
      CHECK(error < tol, "%s: after 3 steps parameter %d slot %d error %g", what.c_str(), static_cast<int>(p),
            static_cast<int>(slot), error);
    }
  }
  std::vector<int64_t> cpuFired(static_cast<size_t>(c.m)), gpuFired(cpuFired.size());
  cpu->lastFired(cpuFired.data());
  gpu->lastFired(gpuFired.data());
  CHECK(cpuFired == gpuFired, "%s: lastFired differs", what.c_str());
  if (c.activation == Activation::BatchTopK) {
    CHECK(std::fabs(cpu->threshold() - gpu->threshold()) <= tol * std::fabs(cpu->threshold()),
          "%s: threshold %g vs %g", what.c_str(), cpu->threshold(), gpu->threshold());
  }

  // Resampling the first two features from the same rows.
  const int32_t features[] = {0, 1};
  const int64_t a = cpu->resample(features, 2, x.data(), c.rows, 5);
  const int64_t b = gpu->resample(features, 2, x.data(), c.rows, 5);
  CHECK(a == b, "%s: resampled %ld vs %ld", what.c_str(), a, b);
  std::vector<float> ca(static_cast<size_t>(c.m * c.d)), cb(ca.size());
  cpu->getParameter(SaeParam::DecoderWeights, SaeSlot::Value, ca.data());
  gpu->getParameter(SaeParam::DecoderWeights, SaeSlot::Value, cb.data());
  CHECK(relativeError(cb.data(), ca.data(), ca.size()) < tol, "%s: decoder after resampling error %g", what.c_str(),
        relativeError(cb.data(), ca.data(), ca.size()));
}

// A DeviceBuffer grows with a quarter of headroom, so that a batch a little larger than the
// last does not reallocate (cudaFree and cudaMalloc each wait for the whole GPU), and never
// shrinks.
void testDeviceBufferGrowth() {
  DeviceBuffer<int32_t> buffer("growth");
  buffer.resize(1000);
  CHECK(buffer.bytes() == 1000 * sizeof(int32_t), "first size: %zu bytes", buffer.bytes());
  buffer.resize(1001);
  const int32_t* grown = buffer.data();
  CHECK(buffer.bytes() == 1250 * sizeof(int32_t), "after growing by one: %zu bytes", buffer.bytes());
  int reallocations = 0;
  for (size_t count = 1002; count <= 1250; ++count) {
    buffer.resize(count);
    reallocations += buffer.data() != grown;
  }
  CHECK(reallocations == 0, "%d reallocations within the headroom", reallocations);
  buffer.resize(10);
  CHECK(buffer.data() == grown && buffer.bytes() == 1250 * sizeof(int32_t), "shrank to %zu bytes", buffer.bytes());
  buffer.resize(5000);  // beyond the headroom: exactly what is asked
  CHECK(buffer.bytes() == 5000 * sizeof(int32_t), "after a large growth: %zu bytes", buffer.bytes());
}

// Grouping units by column (sparse.cuh) against a stable sort on the host: rows of distinct
// columns, then AuxK-like units appended that repeat columns of earlier rows. Chunks placed in
// one pass, in several, with a last one cut short, more chunks than a warp scans at once,
// chunks widened past 2048 units by many columns (and the column starts scanned in many passes),
// an empty batch and one column.
void testGroupByColumn(int64_t rows, int64_t perRow, int64_t appended, int64_t cols, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> indices;
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<int32_t> row;
    while (static_cast<int64_t>(row.size()) < std::min(perRow, cols)) {
      // Skewed towards low columns, as frequent features are, so that chunks repeat columns.
      const double u = rng.uniform();
      const auto c = static_cast<int32_t>(std::min<double>(static_cast<double>(cols) - 1, u * u * u * cols));
      if (std::find(row.begin(), row.end(), c) == row.end()) row.push_back(c);
    }
    std::sort(row.begin(), row.end());
    indices.insert(indices.end(), row.begin(), row.end());
  }
  for (int64_t a = 0; a < appended && !indices.empty(); ++a) {
    indices.push_back(indices[static_cast<size_t>(rng.uniform() * static_cast<double>(indices.size()))]);
  }
  const auto nnz = static_cast<int64_t>(indices.size());
  std::vector<int32_t> expectedEntry(indices.size());
  for (size_t e = 0; e < indices.size(); ++e) expectedEntry[e] = static_cast<int32_t>(e);
  std::stable_sort(expectedEntry.begin(), expectedEntry.end(),
                   [&](int32_t a, int32_t b) { return indices[static_cast<size_t>(a)] < indices[static_cast<size_t>(b)]; });
  std::vector<int64_t> expectedStart(static_cast<size_t>(cols + 1), 0);
  for (const int32_t c : indices) ++expectedStart[static_cast<size_t>(c) + 1];
  for (int64_t c = 0; c < cols; ++c) expectedStart[static_cast<size_t>(c + 1)] += expectedStart[static_cast<size_t>(c)];

  cudaStream_t stream = nullptr;
  DeviceBuffer<int32_t> deviceIndices("indices"), table("table"), columnEntry("entries");
  DeviceBuffer<int64_t> columnStart("starts");
  deviceIndices.resize(indices.size());
  toDevice(deviceIndices.data(), indices);
  columnStart.resize(static_cast<size_t>(cols + 1));
  columnEntry.resize(indices.size());
  const ColumnTable shape = columnStarts(deviceIndices.data(), nnz, cols, columnStart.data(), table, stream);
  sortByColumn(deviceIndices.data(), nnz, columnStart.data(), shape, table, columnEntry.data(), stream);
  const auto starts = toHost(columnStart.data(), static_cast<size_t>(cols + 1));
  const auto entries = toHost(columnEntry.data(), indices.size());
  int64_t wrongStarts = 0, wrongEntries = 0;
  for (size_t c = 0; c < starts.size(); ++c) wrongStarts += starts[c] != expectedStart[c];
  for (size_t e = 0; e < entries.size(); ++e) wrongEntries += entries[e] != expectedEntry[e];
  CHECK(wrongStarts == 0 && wrongEntries == 0,
        "rows %ld, %ld a row, %ld appended, cols %ld (chunks of %ld units, %ld chunks): %ld of %ld starts and %ld of "
        "%ld places wrong",
        rows, perRow, appended, cols, shape.chunkUnits, shape.chunks, wrongStarts, cols + 1, wrongEntries, nnz);
}

// GPU memory is held while the model lives and returned when it is destroyed (dispose()).
void testMemoryReturned() {
  SaeConfig config;
  config.dIn = 512;
  config.dHidden = 4096;
  config.l1Coeff = 0.01f;
  const auto x = randomVector(256 * 512, 4);
  auto run = [&] {
    auto sae = createCudaSae(config);
    sae->trainStep(x.data(), 256, StepOverrides{}, BatchStaging{});
    size_t freeBytes = 0, total = 0;
    SAEKIT_CUDA_CHECK(cudaMemGetInfo(&freeBytes, &total));
    CHECK(sae->bytesHeld() >= 8 * static_cast<size_t>(512 * 4096) * sizeof(float), "bytesHeld %zu", sae->bytesHeld());
    return freeBytes;
  };
  run();  // loads the kernels, whose code the runtime keeps
  size_t before = 0, total = 0;
  SAEKIT_CUDA_CHECK(cudaMemGetInfo(&before, &total));
  const size_t during = run();
  size_t after = 0;
  SAEKIT_CUDA_CHECK(cudaMemGetInfo(&after, &total));
  const int64_t held = static_cast<int64_t>(before) - static_cast<int64_t>(during);
  const int64_t kept = static_cast<int64_t>(before) - static_cast<int64_t>(after);
  CHECK(held >= 6 * 512 * 4096 * static_cast<int64_t>(sizeof(float)), "the model held %ld bytes", held);
  CHECK(kept <= (int64_t{4} << 20), "%ld bytes not returned after the model was destroyed", kept);
}

void testOutOfMemory() {
  SaeConfig config;
  config.dIn = 1 << 20;
  config.dHidden = 1 << 20;
  config.l1Coeff = 0.1f;
  try {
    createCudaSae(config);
    CHECK(false, "a 2^20 x 2^20 model was created");
  } catch (const Error& e) {
    CHECK(e.code() == "CUDA_OOM", "code %s: %s", e.code().c_str(), e.what());
    CHECK(std::string(e.what()).find("needs") != std::string::npos, "message without the size: %s", e.what());
  }
}

// A batch whose active units need more GPU memory than is free fails with CUDA_OOM, and the
// model goes on training on smaller batches. All but 48 MiB of the last GPU (the emulator's
// small one) is held while the model runs on it; every unit is active, so a batch of 2048 rows
// and 4096 features needs an 84 MB pool.
void testUsableAfterOutOfMemory() {
  int devices = 0;
  SAEKIT_CUDA_CHECK(cudaGetDeviceCount(&devices));
  SaeConfig config;
  config.dIn = 4;
  config.dHidden = 4096;
  config.l1Coeff = 0.01f;
  config.precision = Precision::FP32;
  config.cudaDevice = devices - 1;
  config.threads = 2;
  auto sae = createCudaSae(config);
  const std::vector<float> bias(4096, 10.0f);
  sae->setParameter(SaeParam::EncoderBias, SaeSlot::Value, bias.data());
  const std::vector<float> x = randomVector(2048 * 4, 3, 0.1);
  sae->trainStep(x.data(), 1, StepOverrides{}, BatchStaging{});
  SAEKIT_CUDA_CHECK(cudaSetDevice(config.cudaDevice));
  size_t free = 0, total = 0;
  SAEKIT_CUDA_CHECK(cudaMemGetInfo(&free, &total));
  constexpr size_t kLeft = size_t{48} << 20;
  // Freed however the test ends: the groups after it need the GPU's memory.
  struct Hog {
    void* data = nullptr;
    ~Hog() {
      if (data != nullptr) cudaFree(data);
    }
  } hog;
  if (free > kLeft) SAEKIT_CUDA_CHECK(cudaMalloc(&hog.data, free - kLeft));
  try {
    sae->trainStep(x.data(), 2048, StepOverrides{}, BatchStaging{});
    CHECK(false, "a batch needing an 84 MB pool trained with 48 MiB free");
  } catch (const Error& e) {
    CHECK(e.code() == "CUDA_OOM", "the large batch: %s: %s", e.code().c_str(), e.what());
  }
  for (const int64_t rows : {1, 16}) {
    try {
      const StepStats stats = sae->trainStep(x.data(), rows, StepOverrides{}, BatchStaging{});
      CHECK(stats.l0 == 4096.0, "%lld rows after the failed batch: L0 %g", static_cast<long long>(rows), stats.l0);
    } catch (const Error& e) {
      CHECK(false, "%lld rows after the failed batch: %s: %s", static_cast<long long>(rows), e.code().c_str(), e.what());
    }
  }
}

}  // namespace

// cuda_tests [group ...]: the groups named (multiply, rica, fista, small-learning, learning,
// encoder, sae, sparse, memory), or all of them; each prints its time.
int main(int argc, char** argv) {
  const CudaStatus& status = cudaStatus();
  if (!status.available) {
    std::printf("cuda_tests: SKIPPED, no usable GPU: %s\n", status.reason.c_str());
    return 0;
  }
  std::printf("cuda_tests on %s\n", status.gpu.c_str());
  const std::vector<std::string> chosen(argv + 1, argv + argc);
  const auto group = [&](const char* name, const std::function<void()>& tests) {
    if (!chosen.empty() && std::find(chosen.begin(), chosen.end(), name) == chosen.end()) return;
    const auto started = std::chrono::steady_clock::now();
    tests();
    std::printf("  %-9s %.1f s, %d failed checks so far\n", name,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(), failures);
    std::fflush(stdout);
  };
  try {
    group("multiply", testMultiply);
    group("rica", [] {
      for (const bool normalizeRows : {true, false}) {
        testRicaParity(13, 19, 7, normalizeRows);
        testRicaParity(130, 33, 300, normalizeRows);
        testRicaParity(257, 129, 161, normalizeRows);
      }
      testRicaSameX();
    });
    group("fista", [] {
      for (const bool nonNegative : {false, true}) {
        testFistaParity(64, 24, 16, nonNegative);
        testFistaParity(300, 130, 37, nonNegative);
        testFistaParity(300, 130, 37, nonNegative, 10);
        testFistaParity(40, 200, 9, nonNegative);
      }
    });
    // "small-learning" is a quick subset for the GPU emulator in CI: several passes per batch,
    // warm starts and steps without ids, at a size the emulator runs in seconds.
    const auto smallLearning = [] {
      for (const bool nonNegative : {false, true}) testFistaLearningParity(24, 12, 40, nonNegative, 7);
    };
    group("small-learning", smallLearning);
    group("learning", [] {
      for (const bool nonNegative : {false, true}) {
        testFistaLearningParity(96, 32, 200, nonNegative);
        testFistaLearningParity(96, 32, 200, nonNegative, 37);
        testFistaLearningParity(40, 130, 64, nonNegative);
      }
    });
    group("encoder", [] {
      for (const GemmPrecision precision : {GemmPrecision::Fp32, GemmPrecision::Tf32}) {
        for (const bool exact : {false, true}) testEncoderProduct(precision, exact);
      }
      testTf32Rounding();
    });
    group("sae", [] {
      for (const Precision precision : {Precision::FP32, Precision::TF32}) {
        const Case cases[] = {
            {"relu", false, true, Activation::ReLU, 0, precision, 13, 19, 7},
            {"relu", true, true, Activation::ReLU, 0, precision, 33, 130, 37},
            {"relu", false, false, Activation::ReLU, 0, precision, 40, 300, 150},
            {"relu", false, true, Activation::ReLU, 0, precision, 1030, 140, 20},
            {"topk", false, true, Activation::TopK, 5, precision, 21, 45, 10},
            {"topk", true, true, Activation::TopK, 7, precision, 64, 260, 33},
            {"batchtopk", false, true, Activation::BatchTopK, 3, precision, 16, 24, 6},
            {"topk auxk", false, true, Activation::TopK, 5, precision, 21, 45, 10, 4},
            {"topk auxk tied, encoder sees x", true, false, Activation::TopK, 7, precision, 64, 260, 33, 16},
            {"batchtopk auxk", false, true, Activation::BatchTopK, 3, precision, 16, 24, 6, 2},
            {"relu auxk", false, true, Activation::ReLU, 0, precision, 40, 300, 40, 8},
        };
        for (const Case& c : cases) testBackendParity(c);
      }
      testUsableAfterOutOfMemory();
    });
    group("sparse", [] {
      testDeviceBufferGrowth();
      testGroupByColumn(0, 0, 0, 5, 1);          // no units
      testGroupByColumn(40, 1, 25, 1, 2);        // one column
      testGroupByColumn(60, 5, 200, 7, 3);       // a column repeated in every pass
      testGroupByColumn(700, 30, 3000, 4096, 4); // 12 chunks of 2048, each in 8 passes, the last short
      testGroupByColumn(3000, 30, 500, 512, 6);  // 45 chunks: a column's chunks in two warp passes
      testGroupByColumn(1100, 40, 0, 200000, 5); // chunks widened to 2099 units by the columns
    });
    group("memory", [] {
      testMemoryReturned();
      testOutOfMemory();
    });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: exception: %s\n", e.what());
    return 1;
  }
  if (failures > 0) {
    std::fprintf(stderr, "%d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("ok: %d checks\n", checks);
  return 0;
}
