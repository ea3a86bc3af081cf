// The SAE step after the encoder product, on the GPU. Everything runs over the active units
// only, as the CPU backend does, and mirrors its order of operations: per row, the decode, the
// error and dLoss/dpre at each active unit; per feature, the decoder and encoder gradients,
// then the projection, Adam and renormalisation. b_dec's gradient is summed over the same
// chunks (16 rows, 32 features) as on the CPU and the chunks are added in the same order.
// Parameters are feature-major: row j of the decoder is W_dec[j, :], row j of the encoder is
// W_enc[:, j].
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "../cpu/kernels.h"

namespace saekit::cuda {

constexpr int64_t kBiasRowChunk = 16;      // rows per partial sum of b_dec's gradient (as the CPU)
constexpr int64_t kBiasFeatureChunk = 32;  // features per partial sum

// out[r, i] = x[r, i] - shift[i] (the encoder's input when it subtracts b_dec).
void shiftRows(const float* x, const float* shift, int64_t rows, int64_t d, float* out, cudaStream_t stream);

// out[r, :] = b_dec + sum over the row's units of value * decoder[index, :].
void decodeRows(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows,
                const float* decoder, const float* bDec, int64_t d, float* out, cudaStream_t stream);

// The per-row half of the backward pass. For each row: xhat as decodeRows, then
//   outputGrad[r, :] = gradScale * (xhat - x)                    (dLoss/dxhat)
//   unitGrad[e]      = outputGrad[r, :] . decoder[index_e, :] + l1Grad   (dLoss/dpre)
//   rowSquared[r]    = ||xhat - x||^2 and rowL1[r] = sum of the row's values, in double.
void rowBackward(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows,
                 const float* decoder, const float* bDec, const float* x, int64_t d, float gradScale, float l1Grad,
                 float* outputGrad, float* unitGrad, double* rowSquared, double* rowL1, cudaStream_t stream);

// AuxK's per-row pass over each row's AuxK units (rowStart indexes indices, values and
// unitGrad), with outputGrad from rowBackward:
//   a              = sum over the units of value * decoder[index, :] + errScale * outputGrad[r, :]
//                    (AuxK's reconstruction minus the residual x - xhat it targets, for
//                    errScale = rows / 2, as outputGrad = (2 / rows) (xhat - x))
//   auxGrad[r, :]  = gradScale * a,  rowError[r] = ||a||^2 (double)
//   unitGrad[e]    = auxGrad[r, :] . decoder[index_e, :]
void auxRowBackward(const int64_t* rowStart, const int32_t* indices, const float* values, int64_t rows,
                    const float* decoder, const float* outputGrad, int64_t d, float errScale, float gradScale,
                    float* auxGrad, float* unitGrad, double* rowError, cudaStream_t stream);

// *out = ||(1/2) sum over c < chunks of partials[c, :]||^2 in double (the chunks summed in
// order, in double, as the CPU does): from the row chunks of dLoss/dxhat, AuxK's ||mean residual||^2.
void halfSumSquaredNorm(const float* partials, int64_t chunks, int64_t d, double* out, cudaStream_t stream);

// dead[j] = 1 if feature j has not fired in the last `window` samples (never, counting from the
// first sample), else 0: AuxK's dead features.
void flagDeadFeatures(const int64_t* lastFired, int64_t m, int64_t samplesSeen, int64_t window, uint8_t* dead,
                      cudaStream_t stream);

// partials[c, :] = sum over rows r of chunk c (chunkRows rows each) of weight_r * matrix[r, :],
// rows in order; weight_r = weightScale * weights[r], or 1 when weights is null. Rows whose
// weight is zero are skipped, as the CPU skips them.
void chunkColumnSums(const float* matrix, const float* weights, float weightScale, int64_t rows, int64_t d,
                     int64_t chunkRows, float* partials, cudaStream_t stream);

// out[i] = sum over c < chunks of partials[c, i], in chunk order.
void sumChunks(const float* partials, int64_t chunks, int64_t d, float* out, cudaStream_t stream);

// featureGrad[j] = sum of the unit gradients of feature j, in row order (one thread per feature).
void featureBiasGradients(const int64_t* columnStart, const int32_t* columnEntry, const float* unitGrad, int64_t m,
                          float* featureGrad, cudaStream_t stream);

struct FeatureGradientArgs {
  const int64_t* columnStart;  // [m + 1]
  const int32_t* columnEntry;  // CSR positions grouped by feature
  const int32_t* entryRow;
  const float* values;       // the units' activations
  const float* unitGrad;     // dLoss/dpre at the units
  const float* outputGrad;   // [rows, d]
  // Units at CSR positions from auxFrom on are AuxK's: their decoder gradient reads auxGrad
  // [rows, d] (auxRowBackward) instead of outputGrad. auxFrom past the last unit: none.
  int64_t auxFrom;
  const float* auxGrad;
  const float* x;            // [rows, d], the raw input
  const float* bDec;         // [d]
  const float* biasGrad;     // [m], from featureBiasGradients
  int64_t m;
  int64_t d;
  bool tied;
  bool applyBDecToInput;
  float* decoderGrad;  // [m, d]
  float* encoderGrad;  // [m, d], untied only
};

// Per feature j and coordinate i:
//   decoderGrad[j, i] = sum over j's units of value * outputGrad[row, i] (auxGrad for AuxK's)
//   encoderGrad[j, i] = sum over j's units of unitGrad * x[row, i]  - biasGrad[j] * bDec[i]
// (the second term when the encoder subtracts b_dec); tied: decoderGrad += encoderGrad.
void featureGradients(const FeatureGradientArgs& args, cudaStream_t stream);

// The update of each feature: the decoder gradient loses its component along the decoder row,
// Adam updates the row, the row is renormalised; untied, Adam updates the encoder row too.
void adamFeatures(float* decoder, float* decoderM, float* decoderV, const float* decoderGrad, float* encoder,
                  float* encoderM, float* encoderV, const float* encoderGrad, int64_t m, int64_t d,
                  const cpu::AdamStep& step, cudaStream_t stream);

// Adam on a vector (the biases).
void adamVector(float* param, float* m, float* v, const float* grad, int64_t n, const cpu::AdamStep& step,
                cudaStream_t stream);

// lastFired[j] = samplesSeen for every feature with a main unit (CSR position < mainUnits) in
// the batch: AuxK's units are how dead features are reached, not activity.
void markFired(const int64_t* columnStart, const int32_t* columnEntry, int64_t mainUnits, int64_t m,
               int64_t samplesSeen, int64_t* lastFired, cudaStream_t stream);

// sums[0] = sum of rowSquared, sums[1] = sum of rowL1 (double; 0 when rowL1 is null).
void sumRowStats(const double* rowSquared, const double* rowL1, int64_t rows, double* sums, cudaStream_t stream);

// *largest = max(*largest, the bits of max |v[i]|) for i < n. The bits of a non-negative
// float order as the float does, and NaN's lie above infinity's, so the caller reads them back
// as a float that is NaN or infinite when any value was not finite. Order-free, so exact.
void largestMagnitude(const float* v, int64_t n, unsigned int* largest, cudaStream_t stream);

// norms[j] = ||rows[j, :]||^2 for j < count.
void squaredRowNorms(const float* rows, int64_t count, int64_t d, float* norms, cudaStream_t stream);

}  // namespace saekit::cuda
