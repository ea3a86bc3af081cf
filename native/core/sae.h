// The sparse autoencoder as every backend implements it.
//
//   h    = ReLU((x - b_dec) W_enc + b_enc)          W_enc [dIn, dHidden]
//          (or ReLU(x W_enc + b_enc) when applyBDecToInput is false, as SAELens allows)
//   xhat = h W_dec + b_dec                          W_dec [dHidden, dIn], unit-norm rows
//   loss = mean over rows of ||x - xhat||^2 + l1Coeff * ||h||_1
//
// Tied: W_dec = W_enc^T is one parameter. Training is Adam (PyTorch's form, with bias
// correction); before each update the gradient component parallel to each decoder row is
// removed, and after it each decoder row is renormalised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "buffer.h"

namespace saekit {

// How the encoder turns pre-activations into codes.
//   ReLU:      h = max(pre, 0)
//   TopK:      the k largest pre-activations of each row, then ReLU (Gao et al. 2024)
//   BatchTopK: in training, the k * rows largest of the whole batch, then ReLU; at inference
//              pre-activations above a threshold learned in training (Bussmann et al. 2024)
enum class Activation { ReLU, TopK, BatchTopK };

// The arithmetic of the encoder product on CUDA: TF32 tensor cores (inputs rounded to a 10-bit
// mantissa, FP32 accumulation) or plain FP32. The CPU always computes in FP32.
enum class Precision { TF32, FP32 };

struct SaeConfig {
  int64_t dIn = 0;
  int64_t dHidden = 0;
  bool tied = false;
  bool applyBDecToInput = true;
  Activation activation = Activation::ReLU;
  int64_t k = 0;                         // TopK / BatchTopK
  float thresholdBeta = 0.999f;          // BatchTopK: EMA of the inference threshold
  int64_t thresholdStartStep = 1000;     // BatchTopK: steps before the threshold is tracked
  // AuxK (Gao et al. 2024, as dictionary_learning's TopK trainer computes it): the top auxK
  // ReLU'd pre-activations among dead features (no activity in the last auxKWindow samples)
  // reconstruct the detached residual x - xhat, and auxKCoeff times that error over the
  // residual's variance is added to the loss. 0 turns it off.
  int64_t auxK = 0;
  float auxKCoeff = 1.0f / 32.0f;
  int64_t auxKWindow = 10000000;
  float l1Coeff = 0.0f;
  float lr = 1e-3f;
  float beta1 = 0.9f;
  float beta2 = 0.999f;
  float eps = 1e-8f;
  uint64_t seed = 0;
  int threads = 1;
  // CPU kernel set ("generic", "avx2"); empty for the best this CPU runs. For tests.
  std::string cpuKernels;
  int cudaDevice = 0;  // the GPU a CUDA backend runs on (as cudaSetDevice numbers them)
  Precision precision = Precision::TF32;
};

// Values a step may use instead of the configured ones (schedules: warm-up, decay).
struct StepOverrides {
  float lr = -1.0f;       // < 0: the configured lr
  float l1Coeff = -1.0f;  // < 0: the configured l1Coeff
};

// Copying the next batch to the device while a step runs. `next` [nextRows, dIn] is the batch
// the following trainStep will be given; that call sets `staged` when its x is that batch,
// unchanged since. The CUDA backend uses its copy only when it staged that address and row
// count in the step just before (else it copies x as usual); the CPU backend reads batches
// where they are and ignores all of this.
struct BatchStaging {
  bool staged = false;
  const float* next = nullptr;
  int64_t nextRows = 0;
};

struct StepStats {
  double loss = 0;  // mean over rows of ||x - xhat||^2 + l1Coeff * ||h||_1
  double mse = 0;   // mean over rows and coordinates of (x - xhat)^2
  double l1 = 0;    // mean over rows of ||h||_1
  double l0 = 0;    // mean over rows of the number of active units
  double auxLoss = 0;  // AuxK's term of the loss (included in loss), 0 when off or nothing is dead
};

// Parameters in the public (SAELens) layouts.
enum class SaeParam { EncoderWeights, EncoderBias, DecoderWeights, DecoderBias };

// What of a parameter to read or write: its value or one of Adam's moments (same layout).
enum class SaeSlot { Value, AdamFirstMoment, AdamSecondMoment };

// Gradients of the loss (before projection and Adam) in the public layouts. Tied models
// have one weight matrix: its whole gradient is in decoderWeights and encoderWeights is empty.
struct SaeGradients {
  Buffer<float> encoderWeights;  // [dIn, dHidden]
  Buffer<float> encoderBias;     // [dHidden]
  Buffer<float> decoderWeights;  // [dHidden, dIn]
  Buffer<float> decoderBias;     // [dIn]
};

// Compressed sparse rows. Indices within a row are increasing.
struct SparseCodes {
  int64_t rows = 0;
  int64_t cols = 0;
  Buffer<int32_t> indptr;
  Buffer<int32_t> indices;
  Buffer<float> values;
};

struct SparseCodesView {
  int64_t rows;
  int64_t cols;
  const int32_t* indptr;
  const int32_t* indices;
  const float* values;
};

class SaeBackend {
 public:
  virtual ~SaeBackend() = default;

  virtual const SaeConfig& config() const = 0;
  virtual const char* device() const = 0;
  virtual int64_t stepsTaken() const = 0;
  // Bytes held by parameters, optimizer state and scratch, for V8's external memory count.
  virtual size_t bytesHeld() const = 0;

  // One fused training step on `rows` rows of x [rows, dIn]. Returns statistics of the
  // forward pass that the update was computed from.
  virtual StepStats trainStep(const float* x, int64_t rows, const StepOverrides& overrides,
                              const BatchStaging& staging) = 0;
  // Stages x [rows, dIn], times `scale`, from the calling thread, as a step staging its next
  // batch does: the trainStep right after, given x and `staged`, trains on this copy. For a
  // call on an idle model, which then need not copy its input twice (once to be free to
  // return, once to the device). True when staged and every value is finite; the CPU backend
  // has nothing to stage.
  virtual bool stageBatch(const float* /*x*/, int64_t /*rows*/, double /*scale*/) { return false; }
  // The same forward and backward pass without the update.
  virtual StepStats gradients(const float* x, int64_t rows, SaeGradients& out) = 0;

  virtual void encode(const float* x, int64_t rows, float* codes) = 0;  // [rows, dHidden]
  virtual void encodeSparse(const float* x, int64_t rows, SparseCodes& codes) = 0;
  virtual void decode(const float* codes, int64_t rows, float* out) = 0;  // [rows, dIn]
  virtual void decodeSparse(const SparseCodesView& codes, float* out) = 0;
  virtual void reconstruct(const float* x, int64_t rows, float* out) = 0;

  virtual void getParameter(SaeParam which, SaeSlot slot, float* out) const = 0;
  virtual void setParameter(SaeParam which, SaeSlot slot, const float* values) = 0;
  // Adam's step count t (bias corrections use t + 1 for the next step): restored with the
  // moments so that training resumes exactly.
  virtual void setStepsTaken(int64_t steps) = 0;

  // BatchTopK's inference threshold (negative: not yet estimated, then ReLU is used).
  virtual float threshold() const = 0;
  virtual void setThreshold(float threshold) = 0;

  // Dead-feature tracking: samples seen in training, and for each feature how many had been
  // seen when it last fired (-1: never).
  virtual int64_t samplesSeen() const = 0;
  virtual void lastFired(int64_t* out) const = 0;
  virtual void setFiringState(int64_t samplesSeen, const int64_t* lastFired) = 0;

  // Anthropic's resampling of dead features, as saprmarks/dictionary_learning does it: draws
  // rows of x with probability proportional to their squared reconstruction error; each of the
  // first min(count, rows) `features` gets the decoder direction x/|x|, the encoder direction
  // 0.2 * (mean encoder norm of the other features) * x/|x|, a zero bias, and fresh Adam
  // state. Returns how many features were resampled.
  virtual int64_t resample(const int32_t* features, int64_t count, const float* x, int64_t rows, uint64_t seed) = 0;
};

// Bytes a model of this shape holds for parameters and Adam state, before any scratch.
size_t saeStateBytes(const SaeConfig& config);

std::unique_ptr<SaeBackend> createCpuSae(const SaeConfig& config);

// Throws BACKEND_UNAVAILABLE where no usable GPU is present (native/cuda/status.h). Only in
// builds with SAEKIT_WITH_CUDA.
std::unique_ptr<SaeBackend> createCudaSae(const SaeConfig& config);

}  // namespace saekit
