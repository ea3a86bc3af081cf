#include "sae_kernels.cuh"

#include <algorithm>

#include "common.cuh"
#include "reduce.cuh"

namespace saekit::cuda {
namespace {

constexpr int kThreads = 256;
// Coordinates per thread in one pass of the per-row and per-feature kernels: a block covers
// 1024 coordinates of d at once and loops for wider rows.
constexpr int kCoords = 4;
constexpr int64_t kSpan = kThreads * kCoords;

__global__ void shiftRowsKernel(const float* __restrict__ x, const float* __restrict__ shift, int64_t count,
                                int64_t d, float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) out[i] = x[i] - shift[i % d];
}

// What a rowKernel computes from the sum s = sum of value * decoder[index, :] over a row's units:
//   Decode:    out = b_dec + s
//   Backward:  err = b_dec + s - x (target: x); out = gradScale * err; the row's ||err||^2 and
//              sum of values; unitGrad = out . decoder[index, :] + l1Grad
//   Auxiliary: err = s + errScale * target (target: dLoss/dxhat, so errScale * target is the
//              reconstruction error xhat - x); then as Backward, without the sum of values
enum class RowPass { Decode, Backward, Auxiliary };

// One block per row. For each span of kSpan coordinates, the row's units are staged through
// shared memory kThreads at a time and each thread accumulates its coordinates in unit order
// (the CPU's order). Backward and Auxiliary then find dLoss/dpre per unit, one warp per unit.
template <RowPass kPass>
__global__ void __launch_bounds__(kThreads) rowKernel(const int64_t* __restrict__ rowStart,
                                                      const int32_t* __restrict__ indices,
                                                      const float* __restrict__ values,
                                                      const float* __restrict__ decoder,
                                                      const float* __restrict__ bDec,
                                                      const float* __restrict__ target, int64_t d,
                                                      float errScale, float gradScale, float l1Grad,
                                                      float* __restrict__ out, float* __restrict__ unitGrad,
                                                      double* __restrict__ rowSquared, double* __restrict__ rowL1) {
  constexpr bool kBackward = kPass != RowPass::Decode;
  __shared__ int32_t stagedIndex[kThreads];
  __shared__ float stagedValue[kThreads];
  __shared__ double scratch[32];
  const int64_t r = blockIdx.x;
  const int64_t start = rowStart[r];
  const int64_t end = rowStart[r + 1];
  double squared = 0.0, l1 = 0.0;
  for (int64_t i0 = 0; i0 < d; i0 += kSpan) {
    float acc[kCoords];
#pragma unroll
    for (int c = 0; c < kCoords; ++c) {
      const int64_t i = i0 + threadIdx.x + c * kThreads;
      acc[c] = i < d && kPass != RowPass::Auxiliary ? bDec[i] : 0.0f;
    }
    for (int64_t e0 = start; e0 < end; e0 += kThreads) {
      const int n = static_cast<int>(min(static_cast<int64_t>(kThreads), end - e0));
      __syncthreads();  // the previous stage has been read
      if (threadIdx.x < n) {
        stagedIndex[threadIdx.x] = indices[e0 + threadIdx.x];
        stagedValue[threadIdx.x] = values[e0 + threadIdx.x];
        if (kPass == RowPass::Backward && i0 == 0) l1 += values[e0 + threadIdx.x];
      }
      __syncthreads();
      for (int q = 0; q < n; ++q) {
        const float* unitRow = decoder + static_cast<int64_t>(stagedIndex[q]) * d;
        const float value = stagedValue[q];
#pragma unroll
        for (int c = 0; c < kCoords; ++c) {
          const int64_t i = i0 + threadIdx.x + c * kThreads;
          if (i < d) acc[c] = fmaf(value, unitRow[i], acc[c]);
        }
      }
    }
#pragma unroll
    for (int c = 0; c < kCoords; ++c) {
      const int64_t i = i0 + threadIdx.x + c * kThreads;
      if (i >= d) continue;
      if (kBackward) {
        // Auxiliary, as the CPU: AuxK's reconstruction minus the residual it targets.
        const float t = target[r * d + i];
        const float err = kPass == RowPass::Backward ? acc[c] - t : acc[c] + errScale * t;
        squared += static_cast<double>(err) * err;
        out[r * d + i] = gradScale * err;
      } else {
        out[r * d + i] = acc[c];
      }
    }
  }
  if (!kBackward) return;
  __syncthreads();  // the row of dLoss/dxhat is complete and visible to the block
  const int lane = threadIdx.x & 31;
  const float* g = out + r * d;
  for (int64_t e = start + (threadIdx.x >> 5); e < end; e += kThreads / 32) {
    const float* unitRow = decoder + static_cast<int64_t>(indices[e]) * d;
    float dot = 0.0f;
    for (int64_t i = lane; i < d; i += 32) dot = fmaf(g[i], unitRow[i], dot);
    dot = warpSum(dot);
    if (lane == 0) unitGrad[e] = dot + l1Grad;
  }
  squared = blockSum(squared, scratch);
  l1 = blockSum(l1, scratch);
  if (threadIdx.x == 0) {
    rowSquared[r] = squared;
    if (kPass == RowPass::Backward) rowL1[r] = l1;
  }
}

// Thread per column i, block row per chunk c.
__global__ void chunkColumnSumsKernel(const float* __restrict__ matrix, const float* __restrict__ weights,
                                      float weightScale, int64_t rows, int64_t d, int64_t chunkRows,
                                      float* __restrict__ partials) {
  const int64_t i = static_cast<int64_t>(blockIdx.y) * blockDim.x + threadIdx.x;
  const int64_t c = blockIdx.x;
  if (i >= d) return;
  const int64_t r1 = min(rows, (c + 1) * chunkRows);
  float sum = 0.0f;
  for (int64_t r = c * chunkRows; r < r1; ++r) {
    if (weights == nullptr) {
      sum += matrix[r * d + i];
    } else {
      const float w = weights[r];
      if (w != 0.0f) sum = fmaf(weightScale * w, matrix[r * d + i], sum);
    }
  }
  partials[c * d + i] = sum;
}

__global__ void sumChunksKernel(const float* __restrict__ partials, int64_t chunks, int64_t d,
                                float* __restrict__ out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= d) return;
  float sum = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) sum += partials[c * d + i];
  out[i] = sum;
}

__global__ void featureBiasKernel(const int64_t* __restrict__ columnStart, const int32_t* __restrict__ columnEntry,
                                  const float* __restrict__ unitGrad, int64_t m, float* __restrict__ featureGrad) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= m) return;
  float sum = 0.0f;
  for (int64_t s = columnStart[j]; s < columnStart[j + 1]; ++s) sum += unitGrad[columnEntry[s]];
  featureGrad[j] = sum;
}

// Block (j, span): feature j, coordinates [span * kSpan, (span + 1) * kSpan).
__global__ void __launch_bounds__(kThreads) featureGradKernel(FeatureGradientArgs a) {
  __shared__ int32_t stagedRow[kThreads];
  __shared__ float stagedValue[kThreads];
  __shared__ float stagedGrad[kThreads];
  __shared__ bool stagedAux[kThreads];
  const int64_t j = blockIdx.x;
  const int64_t i0 = static_cast<int64_t>(blockIdx.y) * kSpan;
  const int64_t begin = a.columnStart[j];
  const int64_t end = a.columnStart[j + 1];
  float accDec[kCoords], accEnc[kCoords];
#pragma unroll
  for (int c = 0; c < kCoords; ++c) accDec[c] = accEnc[c] = 0.0f;
  for (int64_t s0 = begin; s0 < end; s0 += kThreads) {
    const int n = static_cast<int>(min(static_cast<int64_t>(kThreads), end - s0));
    __syncthreads();
    if (threadIdx.x < n) {
      const int32_t e = a.columnEntry[s0 + threadIdx.x];
      stagedRow[threadIdx.x] = a.entryRow[e];
      stagedValue[threadIdx.x] = a.values[e];
      stagedGrad[threadIdx.x] = a.unitGrad[e];
      stagedAux[threadIdx.x] = e >= a.auxFrom;
    }
    __syncthreads();
    for (int q = 0; q < n; ++q) {
      const int64_t rowOffset = static_cast<int64_t>(stagedRow[q]) * a.d;
      const float value = stagedValue[q];
      const float grad = stagedGrad[q];
      const float* rowGrad = (stagedAux[q] ? a.auxGrad : a.outputGrad) + rowOffset;
#pragma unroll
      for (int c = 0; c < kCoords; ++c) {
        const int64_t i = i0 + threadIdx.x + c * kThreads;
        if (i < a.d) {
          accDec[c] = fmaf(value, rowGrad[i], accDec[c]);
          accEnc[c] = fmaf(grad, a.x[rowOffset + i], accEnc[c]);
        }
      }
    }
  }
  const float biasGrad = a.biasGrad[j];
  const bool shifted = a.applyBDecToInput && biasGrad != 0.0f;
#pragma unroll
  for (int c = 0; c < kCoords; ++c) {
    const int64_t i = i0 + threadIdx.x + c * kThreads;
    if (i >= a.d) continue;
    float gEnc = accEnc[c];
    if (shifted) gEnc = fmaf(-biasGrad, a.bDec[i], gEnc);
    float gDec = accDec[c];
    if (a.tied) gDec += gEnc;
    a.decoderGrad[j * a.d + i] = gDec;
    if (!a.tied) a.encoderGrad[j * a.d + i] = gEnc;
  }
}

__device__ __forceinline__ void adamElement(float& p, float& m, float& v, float g, const cpu::AdamStep& s) {
  const float mi = s.beta1 * m + (1.0f - s.beta1) * g;
  const float vi = s.beta2 * v + (1.0f - s.beta2) * (g * g);
  m = mi;
  v = vi;
  p -= s.stepSize * mi / (sqrtf(vi) / s.sqrtBiasCorrection2 + s.eps);
}

// One block per feature; three passes over its rows of d (dots, update, renormalisation).
__global__ void __launch_bounds__(kThreads) adamFeaturesKernel(float* __restrict__ decoder, float* __restrict__ decM,
                                                               float* __restrict__ decV,
                                                               const float* __restrict__ decGrad,
                                                               float* __restrict__ encoder, float* __restrict__ encM,
                                                               float* __restrict__ encV,
                                                               const float* __restrict__ encGrad, int64_t d,
                                                               cpu::AdamStep step) {
  __shared__ float scratch[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * d;
  float* row = decoder + offset;
  const float* g = decGrad + offset;
  float along = 0.0f, norm2 = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    along = fmaf(g[i], row[i], along);
    norm2 = fmaf(row[i], row[i], norm2);
  }
  along = blockSum(along, scratch);
  norm2 = blockSum(norm2, scratch);
  // The gradient minus its component along the row (the row's norm is kept at 1).
  const float projection = norm2 > 0.0f ? -along / norm2 : 0.0f;
  float newNorm2 = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const float gi = fmaf(projection, row[i], g[i]);
    float p = row[i];
    adamElement(p, decM[offset + i], decV[offset + i], gi, step);
    row[i] = p;
    newNorm2 = fmaf(p, p, newNorm2);
  }
  newNorm2 = blockSum(newNorm2, scratch);
  if (newNorm2 > 0.0f) {
    const float inverse = 1.0f / sqrtf(newNorm2);
    for (int64_t i = threadIdx.x; i < d; i += kThreads) row[i] *= inverse;
  }
  if (encoder != nullptr) {
    for (int64_t i = threadIdx.x; i < d; i += kThreads) {
      adamElement(encoder[offset + i], encM[offset + i], encV[offset + i], encGrad[offset + i], step);
    }
  }
}

__global__ void adamVectorKernel(float* __restrict__ param, float* __restrict__ m, float* __restrict__ v,
                                 const float* __restrict__ grad, int64_t n, cpu::AdamStep step) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) adamElement(param[i], m[i], v[i], grad[i], step);
}

// A column's units are in increasing entry order, so its first is a main unit if any is.
__global__ void markFiredKernel(const int64_t* __restrict__ columnStart, const int32_t* __restrict__ columnEntry,
                                int64_t mainUnits, int64_t m, int64_t samplesSeen, int64_t* __restrict__ lastFired) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= m || columnStart[j + 1] == columnStart[j]) return;
  if (columnEntry[columnStart[j]] < mainUnits) lastFired[j] = samplesSeen;
}

__global__ void flagDeadKernel(const int64_t* __restrict__ lastFired, int64_t m, int64_t samplesSeen, int64_t window,
                               uint8_t* __restrict__ dead) {
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (j >= m) return;
  const int64_t silent = lastFired[j] < 0 ? samplesSeen : samplesSeen - lastFired[j];
  dead[j] = silent >= window ? 1 : 0;
}

__global__ void __launch_bounds__(kThreads) halfSumSquaredNormKernel(const float* __restrict__ partials,
                                                                     int64_t chunks, int64_t d,
                                                                     double* __restrict__ out) {
  __shared__ double scratch[32];
  double norm2 = 0.0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    double sum = 0.0;
    for (int64_t c = 0; c < chunks; ++c) sum += partials[c * d + i];
    norm2 += (0.5 * sum) * (0.5 * sum);
  }
  norm2 = blockSum(norm2, scratch);
  if (threadIdx.x == 0) *out = norm2;
}

__global__ void __launch_bounds__(kThreads) sumRowStatsKernel(const double* __restrict__ rowSquared,
                                                              const double* __restrict__ rowL1, int64_t rows,
                                                              double* __restrict__ sums) {
  __shared__ double scratch[32];
  double squared = 0.0, l1 = 0.0;
  for (int64_t r = threadIdx.x; r < rows; r += kThreads) {
    squared += rowSquared[r];
    if (rowL1 != nullptr) l1 += rowL1[r];
  }
  squared = blockSum(squared, scratch);
  l1 = blockSum(l1, scratch);
  if (threadIdx.x == 0) {
    sums[0] = squared;
    sums[1] = l1;
  }
}

__global__ void __launch_bounds__(kThreads) squaredRowNormsKernel(const float* __restrict__ rows, int64_t d,
                                                                  float* __restrict__ norms) {
  __shared__ float scratch[32];
  const float* row = rows + static_cast<int64_t>(blockIdx.x) * d;
  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) sum = fmaf(row[i], row[i], sum);
  sum = blockSum(sum, scratch);
  if (threadIdx.x == 0) norms[blockIdx.x] = sum;
}

__global__ void __launch_bounds__(kThreads) largestMagnitudeKernel(const float* __restrict__ v, int64_t n,
                                                                   unsigned int* __restrict__ largest) {
  unsigned int best = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; i < n; i += stride) {
    best = max(best, __float_as_uint(v[i]) & 0x7fffffffu);
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) best = max(best, __shfl_down_sync(0xffffffffu, best, offset));
  if ((threadIdx.x & 31) == 0) atomicMax(largest, best);
}

unsigned blocksFor(int64_t items) { return static_cast<unsigned>(ceilDiv(items, kThreads)); }

}  // namespace

void shiftRows(const float* x, const float* shift, int64_t rows, int64_t d, float* out, cudaStream_t stream) {
  const int64_t count = rows * d;
  if (count == 0) return;
  shiftRowsKernel<<<blocksFor(count), kThreads, 0, stream>>>(x, shift, count, d, out);
  SAEKIT_CUDA_LAUNCHED();
}

void decodeRows(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows,
                const float* decoder, const float* bDec, int64_t d, float* out, cudaStream_t stream) {
  if (rows == 0) return;
  rowKernel<RowPass::Decode><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      rowStart, indices, values, decoder, bDec, nullptr, d, 0.0f, 0.0f, 0.0f, out, nullptr, nullptr, nullptr);
  SAEKIT_CUDA_LAUNCHED();
}

void rowBackward(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows,
                 const float* decoder, const float* bDec, const float* x, int64_t d, float gradScale, float l1Grad,
                 float* outputGrad, float* unitGrad, double* rowSquared, double* rowL1, cudaStream_t stream) {
  if (rows == 0) return;
  rowKernel<RowPass::Backward><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      rowStart, indices, values, decoder, bDec, x, d, 0.0f, gradScale, l1Grad, outputGrad, unitGrad, rowSquared, rowL1);
  SAEKIT_CUDA_LAUNCHED();
}

void auxRowBackward(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows,
                    const float* decoder, const float* outputGrad, int64_t d, float errScale, float gradScale,
                    float* auxGrad, float* unitGrad, double* rowError, cudaStream_t stream) {
  if (rows == 0) return;
  rowKernel<RowPass::Auxiliary><<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(
      rowStart, indices, values, decoder, nullptr, outputGrad, d, errScale, gradScale, 0.0f, auxGrad, unitGrad,
      rowError, nullptr);
  SAEKIT_CUDA_LAUNCHED();
}

void halfSumSquaredNorm(const float* partials, int64_t chunks, int64_t d, double* out, cudaStream_t stream) {
  halfSumSquaredNormKernel<<<1, kThreads, 0, stream>>>(partials, chunks, d, out);
  SAEKIT_CUDA_LAUNCHED();
}

void flagDeadFeatures(const int64_t* lastFired, int64_t m, int64_t samplesSeen, int64_t window, uint8_t* dead,
                      cudaStream_t stream) {
  flagDeadKernel<<<blocksFor(m), kThreads, 0, stream>>>(lastFired, m, samplesSeen, window, dead);
  SAEKIT_CUDA_LAUNCHED();
}

void chunkColumnSums(const float* matrix, const float* weights, float weightScale, int64_t rows, int64_t d,
                     int64_t chunkRows, float* partials, cudaStream_t stream) {
  const int64_t chunks = ceilDiv(rows, chunkRows);
  if (chunks == 0) return;
  const dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(ceilDiv(d, kThreads)));
  chunkColumnSumsKernel<<<grid, kThreads, 0, stream>>>(matrix, weights, weightScale, rows, d, chunkRows, partials);
  SAEKIT_CUDA_LAUNCHED();
}

void sumChunks(const float* partials, int64_t chunks, int64_t d, float* out, cudaStream_t stream) {
  sumChunksKernel<<<blocksFor(d), kThreads, 0, stream>>>(partials, chunks, d, out);
  SAEKIT_CUDA_LAUNCHED();
}

void featureBiasGradients(const int64_t* columnStart, const int32_t* columnEntry, const float* unitGrad, int64_t m,
                          float* featureGrad, cudaStream_t stream) {
  featureBiasKernel<<<blocksFor(m), kThreads, 0, stream>>>(columnStart, columnEntry, unitGrad, m, featureGrad);
  SAEKIT_CUDA_LAUNCHED();
}

void featureGradients(const FeatureGradientArgs& args, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(args.m), static_cast<unsigned>(ceilDiv(args.d, kSpan)));
  featureGradKernel<<<grid, kThreads, 0, stream>>>(args);
  SAEKIT_CUDA_LAUNCHED();
}

void adamFeatures(float* decoder, float* decoderM, float* decoderV, const float* decoderGrad, float* encoder,
                  float* encoderM, float* encoderV, const float* encoderGrad, int64_t m, int64_t d,
                  const cpu::AdamStep& step, cudaStream_t stream) {
  adamFeaturesKernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(decoder, decoderM, decoderV, decoderGrad,
                                                                         encoder, encoderM, encoderV, encoderGrad, d,
                                                                         step);
  SAEKIT_CUDA_LAUNCHED();
}

void adamVector(float* param, float* m, float* v, const float* grad, int64_t n, const cpu::AdamStep& step,
                cudaStream_t stream) {
  adamVectorKernel<<<blocksFor(n), kThreads, 0, stream>>>(param, m, v, grad, n, step);
  SAEKIT_CUDA_LAUNCHED();
}

void markFired(const int64_t* columnStart, const int32_t* columnEntry, int64_t mainUnits, int64_t m,
               int64_t samplesSeen, int64_t* lastFired, cudaStream_t stream) {
  markFiredKernel<<<blocksFor(m), kThreads, 0, stream>>>(columnStart, columnEntry, mainUnits, m, samplesSeen,
                                                         lastFired);
  SAEKIT_CUDA_LAUNCHED();
}

void sumRowStats(const double* rowSquared, const double* rowL1, int64_t rows, double* sums, cudaStream_t stream) {
  sumRowStatsKernel<<<1, kThreads, 0, stream>>>(rowSquared, rowL1, rows, sums);
  SAEKIT_CUDA_LAUNCHED();
}

void largestMagnitude(const float* v, int64_t n, unsigned int* largest, cudaStream_t stream) {
  if (n == 0) return;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceilDiv(n, kThreads), 2048));
  largestMagnitudeKernel<<<blocks, kThreads, 0, stream>>>(v, n, largest);
  SAEKIT_CUDA_LAUNCHED();
}

void squaredRowNorms(const float* rows, int64_t count, int64_t d, float* norms, cudaStream_t stream) {
  if (count == 0) return;
  squaredRowNormsKernel<<<static_cast<unsigned>(count), kThreads, 0, stream>>>(rows, d, norms);
  SAEKIT_CUDA_LAUNCHED();
}

}  // namespace saekit::cuda
