// RICA's cost and gradient on the GPU: the same five products and epilogues as
// native/cpu/rica_cpu.cc (read that first), with N rows of x [N, d], k features, V [k, d]:
//
//   Y = x V^T                  then each row's penalty sum g(y) and active count
//   R = Y V - x                then each row's squared error
//   G = R V^T + lambda g'(Y)
//   dV = G^T x + Y^T R         (accumulated into one buffer)
//   dW = (dV - (dV . v) v) / (N ||w||), row by row, when the rows are normalised
//
// The products are cuda::multiply (FP32, one sequential fmaf chain per element); the rest are
// small one-block-per-row kernels whose sums are fixed-order block reductions, so results are
// deterministic for a seed. W, Adam's moments and the scratch stay on the GPU for the model's
// life; costGradient uploads the weights it is asked about, and downloads the gradient.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "../core/buffer.h"
#include "../core/checks.h"
#include "../core/error.h"
#include "../core/rica.h"
#include "../core/thread_pool.h"
#include "../cpu/kernels.h"
#include "../cpu/model_support.h"
#include "common.cuh"
#include "device_buffer.cuh"
#include "matmul.cuh"
#include "reduce.cuh"
#include "sae_kernels.cuh"
#include "status.h"

namespace saekit {
namespace cuda {
namespace {

constexpr int kThreads = 256;
// Rows per pass of encode: bounds its buffers of x and codes to 2 x 256 MiB.
constexpr int64_t kEncodeRows = 8192;
constexpr int64_t kDenseChunkFloats = int64_t{64} << 20;
// Per-row and per-feature kernels put one block per row on grid x.
constexpr int64_t kMaxBlocks = std::numeric_limits<int32_t>::max();

// v_j = w_j / ||w_j|| (||.|| summed in double, as the CPU does), or w_j itself; inverseNorms[j]
// the factor (0 for a zero row, which stays zero and gets a zero gradient). One block per row.
__global__ void __launch_bounds__(kThreads) directionsKernel(const float* __restrict__ w, int64_t d, bool normalize,
                                                             float* __restrict__ v, float* __restrict__ inverseNorms) {
  __shared__ double scratch[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * d;
  float inverse = 1.0f;
  if (normalize) {  // the same for the whole block, so every thread reaches blockSum's barriers
    double norm2 = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += kThreads) norm2 += static_cast<double>(w[offset + i]) * w[offset + i];
    norm2 = blockSum(norm2, scratch);
    inverse = norm2 > 0.0 ? static_cast<float>(1.0 / sqrt(norm2)) : 0.0f;
  }
  for (int64_t i = threadIdx.x; i < d; i += kThreads) v[offset + i] = normalize ? w[offset + i] * inverse : w[offset + i];
  if (threadIdx.x == 0) inverseNorms[blockIdx.x] = inverse;
}

// Per row of y [rows, k]: sum_j sqrt(y_j^2 + epsilon) and the count of |y_j| > activeAbove.
__global__ void __launch_bounds__(kThreads) penaltyRowsKernel(const float* __restrict__ y, int64_t k, float epsilon,
                                                              float activeAbove, double* __restrict__ rowPenalty,
                                                              int32_t* __restrict__ rowActive) {
  __shared__ double sums[32];
  __shared__ int counts[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * k;
  double penalty = 0.0;
  int active = 0;
  for (int64_t j = threadIdx.x; j < k; j += kThreads) {
    const float u = y[offset + j];
    penalty += sqrtf(u * u + epsilon);
    active += fabsf(u) > activeAbove;
  }
  penalty = blockSum(penalty, sums);
  active = blockSum(active, counts);
  if (threadIdx.x == 0) {
    rowPenalty[blockIdx.x] = penalty;
    rowActive[blockIdx.x] = active;
  }
}

// Per row of r [rows, d]: r -= x, and the row's squared error in double.
__global__ void __launch_bounds__(kThreads) residualRowsKernel(float* __restrict__ r, const float* __restrict__ x,
                                                               int64_t d, double* __restrict__ rowSquared) {
  __shared__ double scratch[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * d;
  double squared = 0.0;
  for (int64_t i = threadIdx.x; i < d; i += kThreads) {
    const float e = r[offset + i] - x[offset + i];
    r[offset + i] = e;
    squared += static_cast<double>(e) * e;
  }
  squared = blockSum(squared, scratch);
  if (threadIdx.x == 0) rowSquared[blockIdx.x] = squared;
}

// g[i] += lambda g'(y[i]) = lambda y / sqrt(y^2 + epsilon), elementwise (grid-stride).
__global__ void codeGradientKernel(float* __restrict__ g, const float* __restrict__ y, int64_t count, float lambda,
                                   float epsilon) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) {
    const float u = y[i];
    g[i] += lambda * u / sqrtf(u * u + epsilon);
  }
}

// Per feature row of the gradient: the mean over rows, and back through w -> w / ||w||
// (minus the component along v, times 1 / ||w||) when normalising. One block per row.
__global__ void __launch_bounds__(kThreads) finishGradientKernel(float* __restrict__ gradient,
                                                                 const float* __restrict__ v,
                                                                 const float* __restrict__ inverseNorms, int64_t d,
                                                                 bool normalize, float perRow) {
  __shared__ double scratch[32];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * d;
  if (normalize) {  // uniform over the block: every thread reaches blockSum's barriers
    double along = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += kThreads) along += static_cast<double>(gradient[offset + i]) * v[offset + i];
    // blockSum returns after a barrier that follows every thread's reads above.
    const float dot = static_cast<float>(blockSum(along, scratch));
    const float scale = perRow * inverseNorms[blockIdx.x];
    for (int64_t i = threadIdx.x; i < d; i += kThreads) {
      gradient[offset + i] = (gradient[offset + i] - dot * v[offset + i]) * scale;
    }
  } else {
    for (int64_t i = threadIdx.x; i < d; i += kThreads) gradient[offset + i] *= perRow;
  }
}

// sums = {sum of rowPenalty, sum of rowSquared, sum of rowActive}: one block, fixed order.
__global__ void __launch_bounds__(kThreads) sumRowsKernel(const double* __restrict__ rowPenalty,
                                                          const double* __restrict__ rowSquared,
                                                          const int32_t* __restrict__ rowActive, int64_t rows,
                                                          double* __restrict__ sums) {
  __shared__ double scratch[32];
  double penalty = 0.0, squared = 0.0, active = 0.0;
  for (int64_t i = threadIdx.x; i < rows; i += kThreads) {
    penalty += rowPenalty[i];
    squared += rowSquared[i];
    active += rowActive[i];
  }
  penalty = blockSum(penalty, scratch);
  squared = blockSum(squared, scratch);
  active = blockSum(active, scratch);
  if (threadIdx.x == 0) {
    sums[0] = penalty;
    sums[1] = squared;
    sums[2] = active;
  }
}

class CudaRica final : public RicaBackend {
 public:
  explicit CudaRica(const RicaConfig& config);
  ~CudaRica() override;

  const RicaConfig& config() const override { return config_; }
  const char* device() const override { return "cuda"; }
  int64_t stepsTaken() const override { return steps_; }
  size_t bytesHeld() const override;

  RicaStats costGradient(const float* weights, const float* x, int64_t rows, float* gradient, bool sameX) override;
  RicaStats adamStep(const float* x, int64_t rows) override;
  void encode(const float* x, int64_t rows, float* codes) override;
  void getWeights(float* out) const override;
  void setWeights(const float* weights) override;
  void dictionary(float* out) const override;

 private:
  void checkRows(int64_t rows) const;
  void upload(float* device, const float* host, int64_t count);
  void download(void* host, const void* device, size_t bytes) const;
  void synchronize() const { SAEKIT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  // V and the inverse norms from `weights` (device memory) into directions_, inverseNorms_.
  void prepareDirections(const float* weights);
  // Cost and gradient (into `gradient`, device memory) at `weights` on the rows in x_.
  RicaStats evaluate(const float* weights, int64_t rows, float* gradient);

  RicaConfig config_;
  int64_t d_;
  int64_t k_;
  int device_;  // config.cudaDevice
  ThreadPool pool_;  // the finite checks of inputs, on the host
  const cpu::Kernels& kernels_;
  cudaStream_t stream_ = nullptr;
  int64_t steps_ = 0;

  DeviceBuffer<float> weights_{"RICA weights"};  // W [k, d]
  DeviceBuffer<float> adamM_{"RICA Adam moments"};
  DeviceBuffer<float> adamV_{"RICA Adam moments"};
  DeviceBuffer<float> gradient_{"RICA gradient"};         // [k, d]
  DeviceBuffer<float> evalWeights_{"RICA weights evaluated"};  // costGradient's `weights`
  DeviceBuffer<float> directions_{"RICA directions"};     // V [k, d]
  DeviceBuffer<float> inverseNorms_{"RICA row norms"};    // [k]
  DeviceBuffer<float> x_{"RICA input"};                   // [N, d]
  // The host array costGradient last checked and copied into x_ (null once x_ holds other
  // rows), for calls with sameX.
  const float* residentX_ = nullptr;
  int64_t residentRows_ = 0;
  DeviceBuffer<float> codes_{"RICA codes"};               // Y [N, k]
  DeviceBuffer<float> residual_{"RICA residual"};         // R [N, d]
  DeviceBuffer<float> codeGradient_{"RICA code gradient"};  // G [N, k]
  DeviceBuffer<double> rowPenalty_{"RICA row sums"};
  DeviceBuffer<double> rowSquared_{"RICA row sums"};
  DeviceBuffer<int32_t> rowActive_{"RICA row sums"};
  DeviceBuffer<double> sums_{"RICA statistics"};
};

CudaRica::CudaRica(const RicaConfig& config)
    : config_(config),
      d_(config.dIn),
      k_(config.dHidden),
      device_(config.cudaDevice),
      pool_(config.threads),
      kernels_(cpu::requireKernels(config.cpuKernels)) {
  if (k_ > kMaxBlocks) {
    throwRangeError("The CUDA backend supports dHidden up to " + std::to_string(kMaxBlocks) + " but received " +
                    std::to_string(k_));
  }
  DeviceScope scope(device_);
  const size_t size = static_cast<size_t>(d_ * k_);
  // W, Adam's two moments, the gradient, V and the weights costGradient is asked about.
  const long double stateBytes = static_cast<long double>(size) * 6 * sizeof(float) + k_ * sizeof(float);
  checkFreeMemory(stateBytes, "A Rica with dIn " + std::to_string(d_) + " and dHidden " + std::to_string(k_) +
                                  " (parameters and optimizer state)");
  weights_.resize(size);
  adamM_.resize(size);
  adamV_.resize(size);
  sums_.resize(3);
  SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  try {
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(adamM_.data(), 0, size * sizeof(float), stream_));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(adamV_.data(), 0, size * sizeof(float), stream_));
    // The CPU backend's initialisation, drawn on the host: both backends start alike.
    Buffer<float> rows(size);
    cpu::randomUnitRows(pool_, rows.data(), k_, d_, config_.seed);
    upload(weights_.data(), rows.data(), static_cast<int64_t>(size));
  } catch (...) {
    // The destructor does not run for a constructor that throws.
    releaseStream(stream_);
    throw;
  }
}

CudaRica::~CudaRica() {
  // The buffers free themselves after this body.
  cudaSetDevice(device_);
  releaseStream(stream_);
}

size_t CudaRica::bytesHeld() const {
  return weights_.bytes() + adamM_.bytes() + adamV_.bytes() + gradient_.bytes() + evalWeights_.bytes() +
         directions_.bytes() + inverseNorms_.bytes() + x_.bytes() + codes_.bytes() + residual_.bytes() +
         codeGradient_.bytes() + rowPenalty_.bytes() + rowSquared_.bytes() + rowActive_.bytes() + sums_.bytes();
}

void CudaRica::checkRows(int64_t rows) const {
  if (rows < 1) throwRangeError("Expected at least one row in x for RICA's cost");
  if (rows > kMaxBlocks) {
    throwRangeError("The CUDA backend takes up to " + std::to_string(kMaxBlocks) + " rows at a time but received " +
                    std::to_string(rows));
  }
}

void CudaRica::upload(float* device, const float* host, int64_t count) {
  if (count > 0) copyAndWait(device, host, static_cast<size_t>(count) * sizeof(float), cudaMemcpyHostToDevice, stream_);
}

void CudaRica::download(void* host, const void* device, size_t bytes) const {
  copyAndWait(host, device, bytes, cudaMemcpyDeviceToHost, stream_);
}

void CudaRica::prepareDirections(const float* weights) {
  directions_.resize(static_cast<size_t>(k_ * d_));
  inverseNorms_.resize(static_cast<size_t>(k_));
  directionsKernel<<<static_cast<unsigned>(k_), kThreads, 0, stream_>>>(weights, d_, config_.normalizeRows,
                                                                         directions_.data(), inverseNorms_.data());
  SAEKIT_CUDA_LAUNCHED();
}

RicaStats CudaRica::evaluate(const float* weights, int64_t rows, float* gradient) {
  const int64_t n = rows;
  const int64_t d = d_;
  const int64_t k = k_;
  codes_.resize(static_cast<size_t>(n * k));
  codeGradient_.resize(static_cast<size_t>(n * k));
  residual_.resize(static_cast<size_t>(n * d));
  rowPenalty_.resize(static_cast<size_t>(n));
  rowSquared_.resize(static_cast<size_t>(n));
  rowActive_.resize(static_cast<size_t>(n));
  const float* x = x_.data();
  float* y = codes_.data();
  float* r = residual_.data();
  float* g = codeGradient_.data();
  const float epsilon = config_.epsilon;
  const float lambda = config_.lambda;
  const unsigned rowBlocks = static_cast<unsigned>(n);

  prepareDirections(weights);  // may allocate directions_: its pointer is taken after
  const float* v = directions_.data();
  multiply(x, false, v, true, n, d, k, y, false, stream_);
  penaltyRowsKernel<<<rowBlocks, kThreads, 0, stream_>>>(y, k, epsilon, std::sqrt(epsilon), rowPenalty_.data(),
                                                         rowActive_.data());
  SAEKIT_CUDA_LAUNCHED();
  multiply(y, false, v, false, n, k, d, r, false, stream_);
  residualRowsKernel<<<rowBlocks, kThreads, 0, stream_>>>(r, x, d, rowSquared_.data());
  SAEKIT_CUDA_LAUNCHED();
  multiply(r, false, v, true, n, d, k, g, false, stream_);
  const int64_t count = n * k;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(ceilDiv(count, kThreads), int64_t{1} << 20));
  codeGradientKernel<<<blocks, kThreads, 0, stream_>>>(g, y, count, lambda, epsilon);
  SAEKIT_CUDA_LAUNCHED();
  // dV = G^T x + Y^T R: products of depth N.
  multiply(g, true, x, false, k, n, d, gradient, false, stream_);
  multiply(y, true, r, false, k, n, d, gradient, true, stream_);
  finishGradientKernel<<<static_cast<unsigned>(k), kThreads, 0, stream_>>>(
      gradient, v, inverseNorms_.data(), d, config_.normalizeRows, 1.0f / static_cast<float>(n));
  SAEKIT_CUDA_LAUNCHED();
  sumRowsKernel<<<1, kThreads, 0, stream_>>>(rowPenalty_.data(), rowSquared_.data(), rowActive_.data(), n,
                                             sums_.data());
  SAEKIT_CUDA_LAUNCHED();
  double sums[3];
  download(sums, sums_.data(), sizeof(sums));

  RicaStats stats;
  stats.sparsity = sums[0] / static_cast<double>(n);
  stats.reconstruction = 0.5 * sums[1] / static_cast<double>(n);
  stats.loss = static_cast<double>(lambda) * stats.sparsity + stats.reconstruction;
  stats.l0 = sums[2] / static_cast<double>(n);
  return stats;
}

RicaStats CudaRica::costGradient(const float* weights, const float* x, int64_t rows, float* gradient,
                                 bool sameX) {
  checkRows(rows);
  cpu::checkFiniteParallel(pool_, kernels_, weights, k_ * d_, d_, "weights");
  const bool resident = sameX && x == residentX_ && rows == residentRows_;
  if (!resident) {
    residentX_ = nullptr;  // until x is checked and x_ holds all of it
    cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "x.data");
  }
  DeviceScope scope(device_);
  const size_t size = static_cast<size_t>(k_ * d_);
  evalWeights_.resize(size);
  gradient_.resize(size);
  upload(evalWeights_.data(), weights, k_ * d_);
  if (!resident) {
    x_.resize(static_cast<size_t>(rows * d_));
    upload(x_.data(), x, rows * d_);
    residentX_ = x;
    residentRows_ = rows;
  }
  const RicaStats stats = evaluate(evalWeights_.data(), rows, gradient_.data());
  download(gradient, gradient_.data(), size * sizeof(float));
  return stats;
}

RicaStats CudaRica::adamStep(const float* x, int64_t rows) {
  checkRows(rows);
  cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "batch.data");
  DeviceScope scope(device_);
  const int64_t size = k_ * d_;
  gradient_.resize(static_cast<size_t>(size));
  residentX_ = nullptr;
  x_.resize(static_cast<size_t>(rows * d_));
  upload(x_.data(), x, rows * d_);
  const RicaStats stats = evaluate(weights_.data(), rows, gradient_.data());
  const int64_t t = steps_ + 1;
  const double bc1 = 1.0 - std::pow(static_cast<double>(config_.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(config_.beta2), static_cast<double>(t));
  const cpu::AdamStep step{config_.beta1, config_.beta2, config_.eps, static_cast<float>(config_.lr / bc1),
                           static_cast<float>(std::sqrt(bc2))};
  adamVector(weights_.data(), adamM_.data(), adamV_.data(), gradient_.data(), size, step, stream_);
  synchronize();
  steps_ = t;
  return stats;
}

void CudaRica::encode(const float* x, int64_t rows, float* codes) {
  if (rows <= 0) return;
  cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "x.data");
  DeviceScope scope(device_);
  prepareDirections(weights_.data());
  const int64_t perPass = std::max<int64_t>(1, std::min(kEncodeRows, kDenseChunkFloats / std::max(d_, k_)));
  const int64_t passRows = std::min(perPass, rows);
  residentX_ = nullptr;
  x_.resize(static_cast<size_t>(passRows * d_));
  codes_.resize(static_cast<size_t>(passRows * k_));
  for (int64_t row0 = 0; row0 < rows; row0 += perPass) {
    const int64_t count = std::min(perPass, rows - row0);
    upload(x_.data(), x + row0 * d_, count * d_);
    multiply(x_.data(), false, directions_.data(), true, count, d_, k_, codes_.data(), false, stream_);
    download(codes + row0 * k_, codes_.data(), static_cast<size_t>(count * k_) * sizeof(float));
  }
}

void CudaRica::getWeights(float* out) const {
  DeviceScope scope(device_);
  download(out, weights_.data(), static_cast<size_t>(k_ * d_) * sizeof(float));
}

void CudaRica::setWeights(const float* weights) {
  const int64_t bad = kernels_.firstNonFinite(weights, k_ * d_);
  if (bad < k_ * d_) throwNonFinite("weights", weights[bad], bad, d_);
  DeviceScope scope(device_);
  upload(weights_.data(), weights, k_ * d_);
}

void CudaRica::dictionary(float* out) const {
  // On the host, exactly as the CPU backend normalises: W is read back once.
  getWeights(out);
  if (!config_.normalizeRows) return;
  for (int64_t j = 0; j < k_; ++j) {
    float* row = out + j * d_;
    double norm2 = 0.0;
    for (int64_t i = 0; i < d_; ++i) norm2 += static_cast<double>(row[i]) * row[i];
    const float inverse = norm2 > 0.0 ? static_cast<float>(1.0 / std::sqrt(norm2)) : 0.0f;
    for (int64_t i = 0; i < d_; ++i) row[i] *= inverse;
  }
}

}  // namespace
}  // namespace cuda

std::unique_ptr<RicaBackend> createCudaRica(const RicaConfig& config) {
  cuda::requireCuda("a Rica", config.cudaDevice);
  return std::make_unique<cuda::CudaRica>(config);
}

}  // namespace saekit
