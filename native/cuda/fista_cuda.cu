// FISTA on the GPU: the lasso coding of native/cpu/fista_cpu.cc (read its solveRow first) on
// every atom, without the CPU's working sets but with its backtracking step (1/L, L from the
// largest ||d_j||^2 up, never past the L of every atom); and FistaDictionary's learning
// step, which codes the batch here and leaves the rest (the statistics A and B and the pass over
// the atoms, cpu/fista_learning.h) to the host code the CPU backend runs too: that pass is
// sequential over the atoms, and the coding is most of a step's work.
//
// G = D D^T and c = x D^T are FP32 products (cuda::multiply; G is symmetric bit for bit, as the
// P(z) - P(x) identity needs, since fmaf(a, b, s) == fmaf(b, a, s)). L comes from the same
// double power iteration as on the CPU, on the host, over the smaller of D D^T and D^T D.
// Backtracking matters most to warm starts: near a solution G's curvature along the steps is
// that of the few atoms in use (about (1 + sqrt(s / d))^2 for s random unit atoms), far below
// the L of every atom, and the longer steps take fewer iterations.
// Each row is then solved by one block, start to finish, in one kernel: monotone FISTA with
// the gradient restart, the per-row KKT (and optional duality-gap) stop, and the report from
// the explicit residual in double. The block's iterates (double), their products with G
// (float) and their non-zeros (in increasing atom order, compacted with ballots) live in a
// per-block workspace in global memory; every decision comes from a block reduction that all
// threads receive alike, so the control flow is uniform over the block. Reductions have a
// fixed order: results are deterministic.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>

#include "../core/buffer.h"
#include "../core/checks.h"
#include "../core/error.h"
#include "../core/fista.h"
#include "../core/fista_lipschitz.h"
#include "../core/fista_momentum.h"
#include "../core/memory.h"
#include "../core/thread_pool.h"
#include "../cpu/fista_learning.h"
#include "../cpu/kernels.h"
#include "../cpu/model_support.h"
#include "common.cuh"
#include "device_buffer.cuh"
#include "matmul.cuh"
#include "reduce.cuh"
#include "sparse.cuh"
#include "status.h"

namespace saekit {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Rows per pass: bounds x, c and the codes to 256 MiB each.
constexpr int64_t kPassRows = 8192;
constexpr int64_t kDenseChunkFloats = int64_t{64} << 20;
// Blocks solving at once (each row loops), and the bytes their workspaces may take.
constexpr int64_t kMaxSolvers = 1024;
constexpr int64_t kWorkspaceBytes = int64_t{256} << 20;

// Per solver block: three iterate slots of m doubles, their products with G (floats), and
// their non-zeros as (atom, value in float) lists.
size_t workspaceBytesPerBlock(int64_t m) { return static_cast<size_t>(3 * m) * (8 + 4 + 4 + 4); }

struct SolveArgs {
  const float* gram;  // G [m, m]
  const float* c;     // [rows, m]
  const float* x;     // [rows, d]
  const float* init;  // [rows, m] or null
  const float* dictionary;  // [m, d]
  int64_t rows, m, d;
  double lambda, lipschitz, tol, gapTol;
  const double* largestAtomSquaredNorm;  // max ||d_j||^2, from G's diagonal: each row's first L
  int64_t maxIter;
  bool nonNegative;
  // Workspaces, [gridDim.x][3][m] each.
  double* values;
  float* products;
  int32_t* nonzeros;
  float* coef;
  // Outputs per row.
  float* codes;  // [rows, m]
  int32_t* iterations;
  double* objective;
  double* gap;
  double* kkt;
  uint8_t* converged;
  // Per row when not null (learning's statistics): ||x - z D||^2 and ||z||_1, in double.
  double* squaredError;
  double* l1;
};

__device__ __forceinline__ double warpMax(double value) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) value = fmax(value, __shfl_down_sync(0xffffffffu, value, offset));
  return value;
}

// Max over the block (values >= 0), returned to every thread; contains barriers.
__device__ double blockMax(double value, double* scratch) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  value = warpMax(value);
  __syncthreads();
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  double result = 0.0;
  for (int w = 0; w < kWarps; ++w) result = fmax(result, scratch[w]);
  return result;
}

struct Sums {
  double dotC, quadratic, l1;
};

// Slot s of a block's workspace, by arithmetic (an array of pointers indexed by a run-time
// slot would live in local memory).
struct Workspace {
  const SolveArgs& a;
  int64_t offset;  // the block's first element
  int64_t m;
  __device__ double* values(int s) const { return a.values + offset + s * m; }
  __device__ float* products(int s) const { return a.products + offset + s * m; }
  __device__ int32_t* nonzeros(int s) const { return a.nonzeros + offset + s * m; }
  __device__ float* coef(int s) const { return a.coef + offset + s * m; }
};

// max(G_jj, 0) over the atoms, into *out: one block.
__global__ void __launch_bounds__(kThreads) largestDiagonalKernel(const float* gram, int64_t m, double* out) {
  __shared__ double scratch[32];
  double largest = 0.0;
  for (int64_t j = threadIdx.x; j < m; j += kThreads) largest = fmax(largest, static_cast<double>(gram[j * m + j]));
  largest = blockMax(largest, scratch);
  if (threadIdx.x == 0) *out = largest;
}

// One block per row at a time (grid-stride over rows). See fista_cpu.cc's solveRow for the
// algorithm; the comments here are about the GPU.
__global__ void __launch_bounds__(kThreads) solveRowsKernel(SolveArgs a) {
  __shared__ double scratch[32];
  __shared__ int warpCounts[kWarps];
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int64_t m = a.m;
  const int64_t d = a.d;
  const double lambda = a.lambda;
  const bool nonNegative = a.nonNegative;
  const Workspace ws{a, static_cast<int64_t>(blockIdx.x) * 3 * m, m};

  // Appends atom j (when keep) to the slot's list, in increasing atom order across the calls
  // of one pass; every thread calls it once per tile of kThreads atoms, with `count` the list's
  // length so far (the same in every thread), and gets the new length back.
  const auto append = [&](bool keep, int64_t j, double value, int slot, int64_t count) -> int64_t {
    const unsigned ballot = __ballot_sync(0xffffffffu, keep);
    if (lane == 0) warpCounts[warp] = __popc(ballot);
    __syncthreads();
    int64_t at = count;
    int64_t total = 0;
    for (int w = 0; w < kWarps; ++w) {
      if (w < warp) at += warpCounts[w];
      total += warpCounts[w];
    }
    if (keep) {
      at += __popc(ballot & ((1u << lane) - 1u));
      ws.nonzeros(slot)[at] = static_cast<int32_t>(j);
      ws.coef(slot)[at] = static_cast<float>(value);
    }
    __syncthreads();  // warpCounts is rewritten by the next call
    return count + total;
  };
  // products[j] of the slot = sum over the slot's list of coef[e] * G[index[e], j], for every j;
  // ends with a barrier, so that any thread may then read any product.
  const auto combine = [&](int slot, int64_t count) {
    for (int64_t j = threadIdx.x; j < m; j += kThreads) {
      float sum = 0.0f;
      for (int64_t e = 0; e < count; ++e) sum = fmaf(ws.coef(slot)[e], a.gram[static_cast<int64_t>(ws.nonzeros(slot)[e]) * m + j], sum);
      ws.products(slot)[j] = sum;
    }
    __syncthreads();
  };
  const auto sums = [&](int slot, int64_t count, const float* c) {
    double dotC = 0.0, quadratic = 0.0, l1 = 0.0;
    for (int64_t e = threadIdx.x; e < count; e += kThreads) {
      const int64_t j = ws.nonzeros(slot)[e];
      const double v = ws.values(slot)[j];
      dotC += v * c[j];
      quadratic += v * ws.products(slot)[j];
      l1 += fabs(v);
    }
    return Sums{blockSum(dotC, scratch), blockSum(quadratic, scratch), blockSum(l1, scratch)};
  };
  const auto halfway = [&](int slot, int64_t count, const float* zG, const float* xG, const float* c) {
    double total = 0.0;
    for (int64_t e = threadIdx.x; e < count; e += kThreads) {
      const int64_t j = ws.nonzeros(slot)[e];
      total += ws.values(slot)[j] * (0.5 * (static_cast<double>(zG[j]) + xG[j]) - c[j]);
    }
    return blockSum(total, scratch);
  };

  for (int64_t row = blockIdx.x; row < a.rows; row += gridDim.x) {
    const float* c = a.c + row * m;
    const float* xRow = a.x + row * d;
    double squaredNorm = 0.0, cInf = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += kThreads) squaredNorm += static_cast<double>(xRow[i]) * xRow[i];
    for (int64_t j = threadIdx.x; j < m; j += kThreads) cInf = fmax(cInf, fabs(static_cast<double>(c[j])));
    squaredNorm = blockSum(squaredNorm, scratch);
    cInf = blockMax(cInf, scratch);
    const double scale = fmax(lambda, cInf);
    const double stopAt = a.tol * scale;

    // The start point, projected onto z >= 0 when nonNegative.
    FistaMomentum momentum;
    int& xs = momentum.xs;
    int& ps = momentum.ps;
    int& zs = momentum.zs;
    int64_t counts[3] = {0, 0, 0};
    for (int64_t j0 = 0; j0 < m; j0 += kThreads) {
      const int64_t j = j0 + threadIdx.x;
      float value = 0.0f;
      if (j < m && a.init != nullptr) {
        value = a.init[row * m + j];
        if (nonNegative) value = fmaxf(value, 0.0f);
      }
      if (j < m) ws.values(xs)[j] = value;
      counts[xs] = append(j < m && value != 0.0f, j, value, xs, counts[xs]);
    }
    combine(xs, counts[xs]);
    Sums xSums = sums(xs, counts[xs], c);

    const double& alpha = momentum.alpha;
    const double& beta = momentum.beta;
    // The step 1/L, L found by backtracking from the largest ||d_j||^2 as on the CPU.
    const double largestAtom = *a.largestAtomSquaredNorm;
    double curvature = fmin(largestAtom > 0.0 ? largestAtom : a.lipschitz, a.lipschitz);
    int32_t iterations = 0;
    bool converged = false;
    double violation = 0.0, largest = 0.0;
    for (;;) {
      // z = prox(y), y = alpha x + beta p, and the optimality of x, in one pass.
      const double* x = ws.values(xs);
      const double* p = ws.values(ps);
      const float* xG = ws.products(xs);
      const float* pG = ws.products(ps);
      double* z = ws.values(zs);
      const double invL = __drcp_rn(curvature);  // exactly 1 / curvature
      const double threshold = lambda * invL;
      double myViolation = 0.0, myLargest = 0.0, myRestart = 0.0;
      int64_t count = 0;
      for (int64_t j0 = 0; j0 < m; j0 += kThreads) {
        const int64_t j = j0 + threadIdx.x;
        double zj = 0.0;
        if (j < m) {
          const double xj = x[j];
          const double g = static_cast<double>(xG[j]) - c[j];
          double error;
          if (nonNegative) {
            error = xj > 0.0 ? fabs(g + lambda) : fmax(-g - lambda, 0.0);
          } else {
            error = xj != 0.0 ? fabs(g + (xj > 0.0 ? lambda : -lambda)) : fmax(fabs(g) - lambda, 0.0);
          }
          myViolation = fmax(myViolation, error);
          myLargest = fmax(myLargest, nonNegative ? -g : fabs(g));
          const double y = alpha * xj + beta * p[j];
          const double gy = alpha * xG[j] + beta * pG[j] - c[j];
          const double w = y - gy * invL;
          zj = w > threshold ? w - threshold : (!nonNegative && w < -threshold ? w + threshold : 0.0);
          z[j] = zj;
          myRestart += (y - zj) * (zj - xj);
        }
        count = append(zj != 0.0, j, zj, zs, count);
      }
      counts[zs] = count;
      violation = blockMax(myViolation, scratch);
      largest = blockMax(myLargest, scratch);
      const double restartSum = blockSum(myRestart, scratch);

      // The duality gap at x in Gram form (fista_cpu.cc's gapAt).
      const double u = largest > lambda ? lambda / largest : 1.0;
      const double primal = 0.5 * squaredNorm - xSums.dotC + 0.5 * xSums.quadratic + lambda * xSums.l1;
      const double residualSquared = fmax(squaredNorm - 2.0 * xSums.dotC + xSums.quadratic, 0.0);
      const double dual = u * (squaredNorm - xSums.dotC) - 0.5 * u * u * residualSquared;
      if (violation <= stopAt || (a.gapTol > 0.0 && primal - dual <= a.gapTol * dual)) {
        converged = true;
        break;
      }
      if (iterations >= a.maxIter) break;
      ++iterations;

      combine(zs, counts[zs]);
      if (curvature < a.lipschitz) {
        // Backtracking: G's curvature along z - y must not exceed L.
        const float* zG = ws.products(zs);
        double myAlong = 0.0, myLength = 0.0;
        for (int64_t j = threadIdx.x; j < m; j += kThreads) {
          const double step = z[j] - (alpha * x[j] + beta * p[j]);
          myAlong += step * (static_cast<double>(zG[j]) - (alpha * xG[j] + beta * pG[j]));
          myLength += step * step;
        }
        const double along = blockSum(myAlong, scratch);
        const double length = blockSum(myLength, scratch);
        if (along > curvature * length) {
          // __drcp_rn, not a division: a division's slow path would take 16 more registers, and
          // with them one of the four blocks an SM runs.
          curvature = fmin(a.lipschitz, fmax(2.0 * curvature, along * __drcp_rn(length)));
          continue;
        }
      }
      const Sums zSums = sums(zs, counts[zs], c);
      // P(z) - P(x) in the form whose rounding scales with z - x (fista_cpu.cc). Named steps:
      // each call has barriers, and the operands of - are evaluated in no fixed order.
      const double zPart = halfway(zs, counts[zs], ws.products(zs), ws.products(xs), c);
      const double xPart = halfway(xs, counts[xs], ws.products(zs), ws.products(xs), c);
      const double change = zPart - xPart + lambda * (zSums.l1 - xSums.l1);
      if (momentum.advance(change, restartSum > 0.0)) xSums = zSums;
    }

    // The codes, and the report from the explicit residual r = x - z D in double.
    const double* solution = ws.values(xs);
    for (int64_t j = threadIdx.x; j < m; j += kThreads) a.codes[row * m + j] = static_cast<float>(solution[j]);
    double residualSquared = 0.0, residualDotX = 0.0;
    for (int64_t i = threadIdx.x; i < d; i += kThreads) {
      double r = xRow[i];
      for (int64_t e = 0; e < counts[xs]; ++e) {
        const int64_t j = ws.nonzeros(xs)[e];
        r -= solution[j] * a.dictionary[j * d + i];
      }
      residualSquared += r * r;
      residualDotX += r * xRow[i];
    }
    residualSquared = blockSum(residualSquared, scratch);
    residualDotX = blockSum(residualDotX, scratch);
    if (threadIdx.x == 0) {
      const double objective = 0.5 * residualSquared + lambda * xSums.l1;
      const double u = largest > lambda ? lambda / largest : 1.0;
      a.iterations[row] = iterations;
      a.objective[row] = objective;
      a.gap[row] = fmax(objective - (u * residualDotX - 0.5 * u * u * residualSquared), 0.0);
      a.kkt[row] = scale > 0.0 ? violation / scale : 0.0;
      a.converged[row] = converged ? 1 : 0;
      if (a.squaredError != nullptr) {
        a.squaredError[row] = residualSquared;
        a.l1[row] = xSums.l1;
      }
    }
    // The next row rewrites the workspace that threads may still be reading above.
    __syncthreads();
  }
}

class CudaFista final : public FistaBackend {
 public:
  CudaFista(const FistaConfig& config, const float* dictionary);
  ~CudaFista() override;

  const FistaConfig& config() const override { return config_; }
  const char* device() const override { return "cuda"; }
  int64_t stepsTaken() const override { return learning_ ? learning_->steps() : 0; }
  size_t bytesHeld() const override;
  double lipschitz() override;
  void encode(const float* x, int64_t rows, const float* init, float* codes, FistaRowResults& results) override;
  FistaStepStats learnStep(const float* x, int64_t rows, const int32_t* rowIds) override;
  void forgetCodes() override {
    if (learning_) learning_->forgetCodes();
  }
  void getDictionary(float* out) const override {
    std::memcpy(out, hostDictionary_.data(), static_cast<size_t>(m_ * d_) * sizeof(float));
  }

 private:
  void prepare();
  // Rows per pass of `rows`, and the device buffers sized for it.
  int64_t reservePasses(int64_t rows, bool withInit);
  // Solves rows [row0, row0 + count) of x into codes_ [count, m], each from its row of init_
  // when withInit, and downloads their results to the results' entries row0... ; with
  // `withSums`, also rowSquaredError_ and rowL1_ from row0 on.
  void solvePass(const float* x, int64_t row0, int64_t count, bool withInit, FistaRowResults& results,
                 bool withSums);
  // init_'s first `count` rows from passStarts_.
  void uploadStarts(int64_t count);
  // codes_'s first `count` rows as rows row0... of batchCodes_ (its start[row0] set).
  void downloadCodeRows(int64_t row0, int64_t count);
  template <class T>
  void upload(T* device, const T* host, size_t count);
  template <class T>
  void download(T* host, const T* device, size_t count);

  FistaConfig config_;
  int64_t d_;
  int64_t m_;
  int device_;  // config.cudaDevice
  ThreadPool pool_;  // host work: the finite checks of inputs, learning's update of the atoms
  const cpu::Kernels& kernels_;
  cudaStream_t stream_ = nullptr;
  Buffer<float> hostDictionary_;
  bool prepared_ = false;  // G and L are those of hostDictionary_, and dictionary_ holds it
  double lipschitz_ = 1.0;
  Buffer<double> eigenvector_;  // the power iteration's last vector, its next start (as on the CPU)
  std::unique_ptr<cpu::DictionaryLearning> learning_;  // config.learning
  int64_t solvers_ = 1;  // blocks of solveRowsKernel, set by reservePasses
  // learnStep's host side: a pass's warm starts and the batch's codes, both as CSR, and each
  // row's ||x - z D||^2 and ||z||_1.
  cpu::CodeRows passStarts_;
  cpu::CodeRows batchCodes_;
  Buffer<int64_t> passCodeStart_;
  Buffer<double> rowSquaredError_;
  Buffer<double> rowL1_;

  DeviceBuffer<float> dictionary_{"FISTA dictionary"};  // D [m, d]
  DeviceBuffer<float> gram_{"FISTA Gram matrix"};       // G [m, m]
  DeviceBuffer<float> smallGram_{"FISTA Gram matrix"};  // D^T D [d, d], when d < m
  DeviceBuffer<double> largestAtomSquaredNorm_{"FISTA Gram matrix"};  // [1]: max G_jj
  DeviceBuffer<float> x_{"FISTA input"};
  DeviceBuffer<float> c_{"FISTA x D^T"};
  DeviceBuffer<float> init_{"FISTA start codes"};
  DeviceBuffer<float> codes_{"FISTA codes"};
  DeviceBuffer<double> values_{"FISTA workspaces"};
  DeviceBuffer<float> products_{"FISTA workspaces"};
  DeviceBuffer<int32_t> nonzeros_{"FISTA workspaces"};
  DeviceBuffer<float> coef_{"FISTA workspaces"};
  DeviceBuffer<int32_t> iterations_{"FISTA row results"};
  DeviceBuffer<double> objective_{"FISTA row results"};
  DeviceBuffer<double> gap_{"FISTA row results"};
  DeviceBuffer<double> kkt_{"FISTA row results"};
  DeviceBuffer<uint8_t> converged_{"FISTA row results"};
  DeviceBuffer<double> squaredError_{"FISTA row results"};
  DeviceBuffer<double> l1_{"FISTA row results"};
  // learnStep's codes cross as CSR, a few bytes per non-zero rather than 4 per atom: the warm
  // starts up (scattered into init_ there), then the codes down (gathered from codes_).
  DeviceBuffer<int64_t> rowCount_{"FISTA codes (CSR)"};
  DeviceBuffer<int64_t> rowStart_{"FISTA codes (CSR)"};
  DeviceBuffer<int32_t> codeIndex_{"FISTA codes (CSR)"};
  DeviceBuffer<float> codeValue_{"FISTA codes (CSR)"};
  DeviceBuffer<unsigned char> scanTemp_{"FISTA codes (CSR)"};
};

CudaFista::CudaFista(const FistaConfig& config, const float* dictionary)
    : config_(config),
      d_(config.dIn),
      m_(config.dHidden),
      device_(config.cudaDevice),
      pool_(config.threads),
      kernels_(cpu::requireKernels(config.cpuKernels)) {
  if (m_ > std::numeric_limits<int32_t>::max()) throwRangeError("The CUDA backend supports up to 2^31 - 1 atoms");
  if (dictionary != nullptr) cpu::checkFiniteParallel(pool_, kernels_, dictionary, m_ * d_, d_, "dictionary.data");
  const long double m = static_cast<long double>(m_);
  const long double d = static_cast<long double>(d_);
  const std::string what = config_.learning ? "A FistaDictionary with dIn " + std::to_string(d_) + " and dHidden " +
                                                  std::to_string(m_) + " (dictionary, Gram matrix and statistics)"
                                            : "A FistaCoder with " + std::to_string(m_) + " atoms of dimension " +
                                                  std::to_string(d_) + " (dictionary and Gram matrix)";
  // The host holds the dictionary and, when learning, A and B; the GPU the dictionary and G.
  const long double hostBytes = 4.0L * (m * d + (config_.learning ? m * m + m * d : 0.0L));
  checkMemory(hostBytes >= 1.8e19L ? UINT64_MAX : static_cast<uint64_t>(hostBytes), what);
  DeviceScope scope(device_);
  const long double small = static_cast<long double>(std::min(m_, d_));
  checkFreeMemory(4.0L * (m * d + m * m + small * small), what);
  const size_t size = static_cast<size_t>(m_ * d_);
  hostDictionary_.resize(size);
  if (dictionary != nullptr) {
    std::memcpy(hostDictionary_.data(), dictionary, size * sizeof(float));
  } else {
    cpu::randomUnitRows(pool_, hostDictionary_.data(), m_, d_, config_.seed);
  }
  if (config_.learning) learning_ = std::make_unique<cpu::DictionaryLearning>(m_, d_, config_.seed);
  dictionary_.resize(size);
  gram_.resize(static_cast<size_t>(m_ * m_));
  largestAtomSquaredNorm_.resize(1);
  // Last: nothing after it throws, so the destructor (which releases it) will run.
  SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
}

CudaFista::~CudaFista() {
  cudaSetDevice(device_);
  releaseStream(stream_);
}

size_t CudaFista::bytesHeld() const {
  return hostDictionary_.bytes() + eigenvector_.bytes() + dictionary_.bytes() + gram_.bytes() + smallGram_.bytes() +
         largestAtomSquaredNorm_.bytes() + x_.bytes() + c_.bytes() + init_.bytes() + codes_.bytes() + values_.bytes() +
         products_.bytes() + nonzeros_.bytes() + coef_.bytes() + iterations_.bytes() + objective_.bytes() + gap_.bytes() +
         kkt_.bytes() + converged_.bytes() + squaredError_.bytes() + l1_.bytes() + rowCount_.bytes() +
         rowStart_.bytes() + codeIndex_.bytes() + codeValue_.bytes() + scanTemp_.bytes() + passStarts_.bytes() +
         batchCodes_.bytes() + passCodeStart_.bytes() + rowSquaredError_.bytes() + rowL1_.bytes() +
         (learning_ ? learning_->bytes() : 0);
}

template <class T>
void CudaFista::upload(T* device, const T* host, size_t count) {
  copyAndWait(device, host, count * sizeof(T), cudaMemcpyHostToDevice, stream_);
}

template <class T>
void CudaFista::download(T* host, const T* device, size_t count) {
  copyAndWait(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream_);
}

// The dictionary to the GPU (the host's copy is the model's: learning updates it there), then
// G = D D^T and L.
void CudaFista::prepare() {
  if (prepared_) return;
  upload(dictionary_.data(), hostDictionary_.data(), static_cast<size_t>(m_ * d_));
  multiply(dictionary_.data(), false, dictionary_.data(), true, m_, d_, m_, gram_.data(), false, stream_);
  largestDiagonalKernel<<<1, kThreads, 0, stream_>>>(gram_.data(), m_, largestAtomSquaredNorm_.data());
  SAEKIT_CUDA_LAUNCHED();
  const int64_t n = std::min(m_, d_);
  const float* small = gram_.data();
  if (d_ < m_) {
    smallGram_.resize(static_cast<size_t>(d_ * d_));
    multiply(dictionary_.data(), true, dictionary_.data(), false, d_, m_, d_, smallGram_.data(), false, stream_);
    small = smallGram_.data();
  }
  Buffer<float> readBack(static_cast<size_t>(n * n));
  download(readBack.data(), small, static_cast<size_t>(n * n));
  Buffer<double> h(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n * n; ++i) h[i] = readBack[i];
  // The CPU backend's power iteration, on the smaller Gram matrix read back in double, from the
  // last estimate after the first time (learning changes the dictionary a little per step).
  if (eigenvector_.size() != static_cast<size_t>(n)) {
    eigenvector_.resize(static_cast<size_t>(n));
    powerIterationStart(eigenvector_.data(), n);
  }
  lipschitz_ = lipschitzFromEigenvalue(largestEigenvalue(h.data(), n, eigenvector_.data()));
  prepared_ = true;
}

double CudaFista::lipschitz() {
  DeviceScope scope(device_);
  prepare();
  return lipschitz_;
}

int64_t CudaFista::reservePasses(int64_t rows, bool withInit) {
  const int64_t perPass =
      config_.cudaPassRows > 0 ? config_.cudaPassRows
                               : std::max<int64_t>(1, std::min(kPassRows, kDenseChunkFloats / std::max(d_, m_)));
  const int64_t passRows = std::min(perPass, rows);
  solvers_ = std::max<int64_t>(
      1, std::min({passRows, kMaxSolvers, kWorkspaceBytes / static_cast<int64_t>(workspaceBytesPerBlock(m_))}));
  x_.resize(static_cast<size_t>(passRows * d_));
  c_.resize(static_cast<size_t>(passRows * m_));
  codes_.resize(static_cast<size_t>(passRows * m_));
  if (withInit) init_.resize(static_cast<size_t>(passRows * m_));
  const size_t slots = static_cast<size_t>(solvers_ * 3 * m_);
  values_.resize(slots);
  products_.resize(slots);
  nonzeros_.resize(slots);
  coef_.resize(slots);
  iterations_.resize(static_cast<size_t>(passRows));
  objective_.resize(static_cast<size_t>(passRows));
  gap_.resize(static_cast<size_t>(passRows));
  kkt_.resize(static_cast<size_t>(passRows));
  converged_.resize(static_cast<size_t>(passRows));
  if (config_.learning) {
    squaredError_.resize(static_cast<size_t>(passRows));
    l1_.resize(static_cast<size_t>(passRows));
  }
  return perPass;
}

void CudaFista::solvePass(const float* x, int64_t row0, int64_t count, bool withInit, FistaRowResults& results,
                          bool withSums) {
  upload(x_.data(), x + row0 * d_, static_cast<size_t>(count * d_));
  multiply(x_.data(), false, dictionary_.data(), true, count, d_, m_, c_.data(), false, stream_);
  SolveArgs args{gram_.data(), c_.data(), x_.data(), withInit ? init_.data() : nullptr,
                 dictionary_.data(), count, m_, d_, config_.lambda, lipschitz_, config_.tol,
                 config_.gapTol, largestAtomSquaredNorm_.data(), config_.maxIter, config_.nonNegative,
                 values_.data(), products_.data(), nonzeros_.data(), coef_.data(), codes_.data(),
                 iterations_.data(), objective_.data(), gap_.data(), kkt_.data(), converged_.data(),
                 withSums ? squaredError_.data() : nullptr, withSums ? l1_.data() : nullptr};
  const unsigned blocks = static_cast<unsigned>(std::min(count, solvers_));
  solveRowsKernel<<<blocks, kThreads, 0, stream_>>>(args);
  SAEKIT_CUDA_LAUNCHED();
  download(results.iterations.data() + row0, iterations_.data(), static_cast<size_t>(count));
  download(results.objective.data() + row0, objective_.data(), static_cast<size_t>(count));
  download(results.gap.data() + row0, gap_.data(), static_cast<size_t>(count));
  download(results.kkt.data() + row0, kkt_.data(), static_cast<size_t>(count));
  download(results.converged.data() + row0, converged_.data(), static_cast<size_t>(count));
  if (withSums) {
    download(rowSquaredError_.data() + row0, squaredError_.data(), static_cast<size_t>(count));
    download(rowL1_.data() + row0, l1_.data(), static_cast<size_t>(count));
  }
}

void CudaFista::encode(const float* x, int64_t rows, const float* init, float* codes, FistaRowResults& results) {
  cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "x.data");
  if (init != nullptr) cpu::checkFiniteParallel(pool_, kernels_, init, rows * m_, m_, "options.init.data");
  results.resize(rows);
  if (rows <= 0) return;
  DeviceScope scope(device_);
  prepare();
  const int64_t perPass = reservePasses(rows, init != nullptr);
  for (int64_t row0 = 0; row0 < rows; row0 += perPass) {
    const int64_t count = std::min(perPass, rows - row0);
    if (init != nullptr) upload(init_.data(), init + row0 * m_, static_cast<size_t>(count * m_));
    solvePass(x, row0, count, init != nullptr, results, false);
    download(codes + row0 * m_, codes_.data(), static_cast<size_t>(count * m_));
  }
}

void CudaFista::uploadStarts(int64_t count) {
  const int64_t nonzeros = passStarts_.nonzeros(count);
  rowStart_.resize(static_cast<size_t>(count + 1));
  codeIndex_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  codeValue_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  upload(rowStart_.data(), passStarts_.start.data(), static_cast<size_t>(count + 1));
  upload(codeIndex_.data(), passStarts_.index.data(), static_cast<size_t>(nonzeros));
  upload(codeValue_.data(), passStarts_.value.data(), static_cast<size_t>(nonzeros));
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(init_.data(), 0, static_cast<size_t>(count * m_) * sizeof(float), stream_));
  scatterDense(rowStart_.data(), codeIndex_.data(), codeValue_.data(), count, m_, init_.data(), stream_);
}

void CudaFista::downloadCodeRows(int64_t row0, int64_t count) {
  rowCount_.resize(static_cast<size_t>(count + 1));
  rowStart_.resize(static_cast<size_t>(count + 1));
  denseRowCounts(codes_.data(), count, m_, rowCount_.data(), stream_);
  exclusiveSum(rowCount_.data(), rowStart_.data(), count + 1, scanTemp_, stream_);
  passCodeStart_.resize(static_cast<size_t>(count + 1));
  download(passCodeStart_.data(), rowStart_.data(), static_cast<size_t>(count + 1));
  const int64_t nonzeros = passCodeStart_[count];
  codeIndex_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  codeValue_.resize(static_cast<size_t>(std::max<int64_t>(nonzeros, 1)));
  gatherDense(codes_.data(), count, m_, rowStart_.data(), codeIndex_.data(), codeValue_.data(), nullptr, stream_);
  const int64_t base = batchCodes_.start[row0];
  batchCodes_.index.resize(static_cast<size_t>(base + nonzeros));
  batchCodes_.value.resize(static_cast<size_t>(base + nonzeros));
  download(batchCodes_.index.data() + base, codeIndex_.data(), static_cast<size_t>(nonzeros));
  download(batchCodes_.value.data() + base, codeValue_.data(), static_cast<size_t>(nonzeros));
  for (int64_t r = 1; r <= count; ++r) batchCodes_.start[row0 + r] = base + passCodeStart_[r];
}

FistaStepStats CudaFista::learnStep(const float* x, int64_t rows, const int32_t* rowIds) {
  if (!learning_) throwError("ERR_NOT_LEARNING", "This FISTA model codes with a fixed dictionary and cannot learn");
  cpu::checkFiniteParallel(pool_, kernels_, x, rows * d_, d_, "batch.data");
  cpu::checkRowIds(rowIds, rows);
  DeviceScope scope(device_);
  prepare();

  // Codes for the batch, a pass at a time, each row starting from the codes it got last time.
  FistaRowResults results;
  results.resize(rows);
  rowSquaredError_.resize(static_cast<size_t>(rows));
  rowL1_.resize(static_cast<size_t>(rows));
  const int64_t perPass = reservePasses(rows, rowIds != nullptr);
  batchCodes_.start.resize(static_cast<size_t>(rows + 1));
  batchCodes_.start[0] = 0;
  for (int64_t row0 = 0; row0 < rows; row0 += perPass) {
    const int64_t count = std::min(perPass, rows - row0);
    if (rowIds != nullptr) {
      passStarts_.start.resize(static_cast<size_t>(count + 1));
      int64_t* start = passStarts_.start.data();
      start[0] = 0;
      for (int64_t r = 0; r < count; ++r) {
        passStarts_.index.resize(static_cast<size_t>(start[r] + m_));
        passStarts_.value.resize(static_cast<size_t>(start[r] + m_));
        start[r + 1] = start[r] + learning_->warmStart(rowIds[row0 + r], passStarts_.index.data() + start[r],
                                                       passStarts_.value.data() + start[r]);
      }
      uploadStarts(count);
    }
    solvePass(x, row0, count, rowIds != nullptr, results, true);
    downloadCodeRows(row0, count);
  }
  cpu::StepTotals totals;
  for (int64_t r = 0; r < rows; ++r) {
    totals.add(results.objective[r], rowSquaredError_[r], rowL1_[r], results.iterations[r]);
  }
  FistaStepStats stats = totals.finish(rows, d_, batchCodes_.nonzeros(rows));
  // From here the host's dictionary changes: the GPU's copy, G and L are stale until the next
  // prepare(), even if the update throws part-way.
  prepared_ = false;
  learning_->keepCodes(rowIds, rows, batchCodes_);
  stats.resampled = learning_->update(pool_, kernels_, x, rows, batchCodes_, hostDictionary_.data());
  return stats;
}

}  // namespace
}  // namespace cuda

std::unique_ptr<FistaBackend> createCudaFista(const FistaConfig& config, const float* dictionary) {
  cuda::requireCuda(config.learning ? "a FistaDictionary" : "a FistaCoder", config.cudaDevice);
  return std::make_unique<cuda::CudaFista>(config, dictionary);
}

}  // namespace saekit
