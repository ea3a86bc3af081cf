// The sparse autoencoder on the GPU: the same model, step and bookkeeping as
// native/cpu/sae_cpu.cc (read that first), with parameters, Adam's moments and scratch held in
// GPU memory for the model's life.
//
// A training step: the batch is copied in through pinned staging buffers on a copy stream, in
// chunks of rows, and the encoder product of each chunk starts as soon as its rows have
// arrived, so copying overlaps computing (gemm.cuh: bias and ReLU fused, active units
// compacted into a pool). In a training loop the step is also given the next batch, and
// copies it to a second input buffer while the GPU computes; the next step then starts its
// encoder at once (BatchStaging in core/sae.h). The pool becomes a CSR (sparse.cuh),
// TopK/BatchTopK select from it (activation.cuh), and the rest of the step runs over the
// active units (sae_kernels.cuh).
// AuxK's units are chosen from the same CSR before that selection and appended after the main
// units, so the per-feature pass handles both.
// The host waits for the GPU a few times per step, to learn sizes (the number of active
// units) and at the end for the statistics.
//
// Everything the GPU computes is deterministic (atomics only count; sums have fixed orders),
// so a seed gives the same model on every run on the same GPU. Initialisation is drawn on the
// host exactly as on the CPU, so both backends start from the same parameters.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../core/buffer.h"
#include "../core/error.h"
#include "../core/sae.h"
#include "../core/sae_guard.h"
#include "../core/sae_resample.h"
#include "../core/thread_pool.h"
#include "../cpu/kernels.h"
#include "../cpu/model_support.h"
#include "activation.cuh"
#include "common.cuh"
#include "device_buffer.cuh"
#include "gemm.cuh"
#include "sae_kernels.cuh"
#include "sparse.cuh"
#include "status.h"

namespace saekit {
namespace cuda {
namespace {

constexpr size_t kStageBytes = size_t{2} << 20;  // one pinned staging slot: chunks small enough to overlap
constexpr int kStageSlots = 2;
// Rows per pass of encode, decode and reconstruct: bounds the dense buffers those need.
constexpr int64_t kInferenceRows = 8192;
constexpr int64_t kDenseChunkFloats = int64_t{64} << 20;  // 256 MiB of dense codes
// Some kernels put ceil(dIn / 256) blocks on a grid dimension limited to 65535.
constexpr int64_t kMaxDIn = int64_t{1} << 23;

// SAEKIT_CUDA_PROFILE=1 (unset, empty or 0: off): the host's wall time in each phase of the
// training steps, every phase ended by waiting for the GPU (which removes the overlap of
// copying and computing and slows every step, so time steps without it), printed to stderr
// when the model is destroyed.
class PhaseClock {
 public:
  PhaseClock() {
    const char* setting = std::getenv("SAEKIT_CUDA_PROFILE");
    enabled_ = setting != nullptr && *setting != '\0' && std::strcmp(setting, "0") != 0;
  }
  ~PhaseClock() {
    if (!enabled_ || steps_ == 0) return;
    // Medians, so that the first steps' allocations and module loading do not count.
    double total = 0.0;
    std::vector<double> medians;
    for (auto& phase : phases_) {
      std::vector<double>& times = phase.second;
      std::nth_element(times.begin(), times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2), times.end());
      medians.push_back(times[times.size() / 2]);
      total += medians.back();
    }
    std::fprintf(stderr, "saekit CUDA step profile, %lld steps, medians, %.3f ms per step in all:\n",
                 static_cast<long long>(steps_), total);
    for (size_t i = 0; i < phases_.size(); ++i) {
      std::fprintf(stderr, "  %-36s %8.3f ms\n", phases_[i].first.c_str(), medians[i]);
    }
  }
  void startStep(cudaStream_t stream) {
    if (!enabled_) return;
    cudaStreamSynchronize(stream);
    last_ = std::chrono::steady_clock::now();
    ++steps_;
  }
  void mark(const char* phase, cudaStream_t stream) {
    if (!enabled_ || steps_ == 0) return;
    cudaStreamSynchronize(stream);
    const auto now = std::chrono::steady_clock::now();
    const double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    last_ = now;
    for (auto& entry : phases_) {
      if (entry.first == phase) {
        entry.second.push_back(ms);
        return;
      }
    }
    phases_.emplace_back(phase, std::vector<double>{ms});
  }

 private:
  bool enabled_;
  int64_t steps_ = 0;
  std::chrono::steady_clock::time_point last_;
  std::vector<std::pair<std::string, std::vector<double>>> phases_;
};

struct DeviceAdam {
  DeviceBuffer<float> value, m, v;
  DeviceAdam(const char* what) : value(what), m(what), v(what) {}
  void allocate(size_t n, cudaStream_t stream) {
    value.resize(n);
    m.resize(n);
    v.resize(n);
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(m.data(), 0, n * sizeof(float), stream));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(v.data(), 0, n * sizeof(float), stream));
  }
  size_t bytes() const { return value.bytes() + m.bytes() + v.bytes(); }
};

// The active units of a batch: see sparse.cuh.
struct Csr {
  DeviceBuffer<int64_t> rowStart{"active units (row starts)"};
  DeviceBuffer<int32_t> indices{"active units (indices)"};
  DeviceBuffer<float> values{"active units (values)"};
  DeviceBuffer<int32_t> entryRow{"active units (rows)"};
  void reserve(int64_t rows, int64_t nnz) {
    rowStart.resize(static_cast<size_t>(rows + 1));
    const size_t n = static_cast<size_t>(std::max<int64_t>(nnz, 1));
    indices.resize(n);
    values.resize(n);
    entryRow.resize(n);
  }
  void swap(Csr& other) {
    rowStart.swap(other.rowStart);
    indices.swap(other.indices);
    values.swap(other.values);
    entryRow.swap(other.entryRow);
  }
  size_t bytes() const { return rowStart.bytes() + indices.bytes() + values.bytes() + entryRow.bytes(); }
};

class CudaSae final : public SaeBackend {
 public:
  explicit CudaSae(const SaeConfig& config);
  ~CudaSae() override;

  const SaeConfig& config() const override { return config_; }
  const char* device() const override { return "cuda"; }
  int64_t stepsTaken() const override { return steps_; }
  size_t bytesHeld() const override;

  StepStats trainStep(const float* x, int64_t rows, const StepOverrides& overrides,
                      const BatchStaging& staging) override;
  bool stageBatch(const float* x, int64_t rows, double scale) override;
  StepStats gradients(const float* x, int64_t rows, SaeGradients& out) override;
  void encode(const float* x, int64_t rows, float* codes) override;
  void encodeSparse(const float* x, int64_t rows, SparseCodes& codes) override;
  void decode(const float* codes, int64_t rows, float* out) override;
  void decodeSparse(const SparseCodesView& codes, float* out) override;
  void reconstruct(const float* x, int64_t rows, float* out) override;
  void getParameter(SaeParam which, SaeSlot slot, float* out) const override;
  void setParameter(SaeParam which, SaeSlot slot, const float* values) override;
  void setStepsTaken(int64_t steps) override { steps_ = steps; }
  float threshold() const override { return threshold_; }
  void setThreshold(float threshold) override { threshold_ = threshold; }
  int64_t samplesSeen() const override { return samplesSeen_; }
  void lastFired(int64_t* out) const override;
  void setFiringState(int64_t samplesSeen, const int64_t* lastFired) override;
  int64_t resample(const int32_t* features, int64_t count, const float* x, int64_t rows, uint64_t seed) override;

 private:
  const DeviceAdam& stateOf(SaeParam which) const;
  // Synchronises and destroys the streams and events (errors ignored): from the destructor, and
  // from a constructor that throws after creating them (its destructor does not run).
  void releaseStreams();
  // Allocates the parameters and Adam's moments, and sets them as the CPU backend initialises.
  void initialiseParameters();
  const float* encoderRows() const { return config_.tied ? decoder_.value.data() : encoder_.value.data(); }
  void checkFinite(const float* x, int64_t count, int64_t cols, const char* name);
  // Copies `rows` rows of rowBytes each from host to the device array `to` through the pinned
  // slots on the copy stream; after each chunk is queued, the compute stream waits for it and
  // onChunk(firstRow, rowCount) may queue work on those rows. With `checkFloats` the rows are
  // floats, checked while they are copied (one pass over host memory instead of two); returns
  // false when one is not finite (the work queued on it computes garbage nobody reads).
  bool upload(const void* host, int64_t rows, size_t rowBytes, void* to,
              const std::function<void(int64_t, int64_t)>& onChunk, bool checkFloats = false) const;
  // upload's copying alone: onQueued(firstRow, rowCount, event) after each chunk is queued,
  // `event` recorded on the copy stream after it. A `scale` other than 1 multiplies floats
  // as they are copied (rounded as JavaScript's `v *= scale` on a Float32Array).
  bool copyIn(const void* host, int64_t rows, size_t rowBytes, void* to,
              const std::function<void(int64_t, int64_t, cudaEvent_t)>& onQueued, bool checkFloats,
              double scale = 1.0) const;
  // Starts copying the next step's batch (times `scale`) into nextX_, checked as upload checks
  // a batch; the copy waits for the compute stream's work queued before `inputsFree_` was
  // recorded.
  void stageNextBatch(const float* x, int64_t rows, double scale = 1.0);
  bool copyToPinned(unsigned char* pinned, const unsigned char* from, size_t bytes, bool checkFloats,
                    double scale) const;
  template <class T>
  void download(T* host, const T* device, size_t count) const;
  void synchronize() const { SAEKIT_CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  // The encoder on rows [row0, row0 + count) of the (shifted) input in x_ / shifted_.
  void runEncoder(int64_t row0, int64_t count);
  // Room for `capacity` active units in the encoder's pool (poolCapacity_).
  void reservePool(int64_t capacity);
  // x (host) through the encoder into csr_ (nnz_ units); training selects BatchTopK over the
  // batch, inference applies its threshold. Training with AuxK appends AuxK's units (auxNnz_,
  // rows in aux_.rowStart) after the main ones.
  // Training steps may pass `staging`: with `staged` (checked by trainStep) x is already in
  // nextX_; with `next`, inputsFree_ marks where nextX_ may be overwritten, and step() stages
  // `next` into it once the backward pass is queued.
  void encodeToCsr(const float* x, int64_t rows, bool training, const BatchStaging& staging = BatchStaging{});
  // Copies the units of `from` whose flags_ are set to `to` (in order) and returns their count.
  int64_t gatherFlaggedUnits(const Csr& from, int64_t rows, int64_t count, Csr& to);
  // Replaces csr_ by its units whose flags_ are set.
  void keepFlagged(int64_t rows);
  // AuxK's units, from csr_ before TopK / BatchTopK selects from it (every positive
  // pre-activation is there): per row the auxK largest among dead features, into aux_.
  void selectAuxUnits(int64_t rows);
  // csr_'s main units followed by aux_'s, in one CSR whose row starts are the main ones.
  void appendAuxUnits(int64_t rows);
  // AuxK's term of the loss (per row), its dLoss/dpre at AuxK's units and auxGrad_, from this
  // step's dLoss/dxhat and its row-chunk sums in partials_ (cpu/sae_cpu.cc's auxiliaryLoss).
  double auxiliaryLoss(int64_t rows, int64_t rowChunks);
  // BatchTopK's inference threshold, from the units training kept.
  void trackThreshold(int64_t rows);
  StepStats step(const float* x, int64_t rows, SaeGradients* out, const StepOverrides& overrides,
                 const BatchStaging& staging);
  // Queues the largest magnitude over the four (the encoder's only when untied) into
  // magnitudes_ (float bits): of the parameters for parameterBound, of this step's gradients
  // for guardAgainstOverflow.
  void queueLargestMagnitude(const float* decoder, const float* encoder, const float* encoderBias,
                             const float* decoderBias);
  // Throws NON_FINITE, before any parameter changes, if the loss or this step's gradients are
  // not finite or large enough to overflow Adam's second moment, or if the update could take
  // a parameter out of range: the CPU backend's limits, from the gradients themselves.
  void guardAgainstOverflow(double loss, int64_t rows, float lr, double largestParameter, float largestGradient);
  // An upper bound of |every parameter|, rescanned when stale (after external writes).
  float parameterBound();
  // Rows per pass of inference when each row needs `width` floats of dense scratch.
  int64_t inferenceRows(int64_t width) const {
    return std::max<int64_t>(1, std::min(kInferenceRows, kDenseChunkFloats / std::max<int64_t>(width, 1)));
  }

  SaeConfig config_;
  int64_t d_;
  int64_t m_;
  int device_;  // config.cudaDevice
  mutable ThreadPool pool_;  // host work; mutable so that the const upload can copy in parallel
  const cpu::Kernels& kernels_;
  cudaStream_t stream_ = nullptr;      // all computation
  cudaStream_t copyStream_ = nullptr;  // host-to-device copies of inputs
  cudaEvent_t staged_[kStageSlots] = {};
  cudaEvent_t inputsFree_ = nullptr;  // the compute stream no longer reads nextX_
  cudaEvent_t nextReady_ = nullptr;   // nextX_ holds the staged batch

  DeviceAdam decoder_{"decoder weights"};  // [m, d]
  DeviceAdam encoder_{"encoder weights"};  // [m, d], untied only
  DeviceAdam encoderBias_{"encoder bias"};
  DeviceAdam decoderBias_{"decoder bias"};
  DeviceBuffer<int64_t> lastFired_{"dead-feature counters"};
  int64_t steps_ = 0;
  float threshold_ = -1.0f;
  float pendingBatchMinimum_ = -1.0f;  // this step's contribution to threshold_, applied with the update
  int64_t samplesSeen_ = 0;
  float parameterBound_ = -1.0f;  // < 0: unknown, rescan

  // Scratch, sized by the largest batch seen. Mutable: reading parameters stages through it.
  mutable PinnedBuffer<unsigned char> staging_;
  mutable size_t slotBytes_ = 0;  // the staging slots' size in the last copy
  mutable Buffer<float> hostScratch_;
  DeviceBuffer<float> x_{"input batch"};
  // The next batch, staged by the step before it: its host address and rows (null: none), and
  // whether its values were all finite.
  DeviceBuffer<float> nextX_{"next input batch"};
  const float* stagedHost_ = nullptr;
  int64_t stagedRows_ = 0;
  bool stagedFinite_ = true;
  DeviceBuffer<float> shifted_{"input minus b_dec"};
  DeviceBuffer<float> thresholdBias_{"encoder bias minus threshold"};
  DeviceBuffer<float> scalar_{"scalar"};
  DeviceBuffer<int32_t> tileCount_{"active-unit tile counts"};
  DeviceBuffer<int64_t> tilePos_{"active-unit tile positions"};
  DeviceBuffer<float> poolValues_{"active-unit pool"};
  DeviceBuffer<int32_t> poolIndices_{"active-unit pool"};
  DeviceBuffer<unsigned long long> poolUsed_{"pool counter"};
  int64_t poolCapacity_ = 0;
  const float* encoderBiasInUse_ = nullptr;
  float addBack_ = 0.0f;
  Csr csr_;
  Csr selected_;
  int64_t nnz_ = 0;
  // AuxK: dead features, their units (rowStart 0-based; appended to csr_ at nnz_), dLoss/dxhat
  // of AuxK's reconstruction [rows, d], and each row's AuxK error.
  DeviceBuffer<uint8_t> deadFeatures_{"AuxK dead features"};
  Csr aux_;
  int64_t auxNnz_ = 0;
  DeviceBuffer<float> auxGrad_{"AuxK dLoss/dxhat"};
  DeviceBuffer<double> rowAuxError_{"AuxK row errors"};
  DeviceBuffer<int64_t> rowCount_{"row counts"};
  DeviceBuffer<uint8_t> flags_{"selection flags"};
  SelectScratch select_;
  DeviceBuffer<double> rowMinimum_{"row minima"};
  DeviceBuffer<unsigned char> cubTemp_{"CUB scratch"};
  DeviceBuffer<float> outputGrad_{"dLoss/dxhat"};
  DeviceBuffer<float> unitGrad_{"dLoss/dpre"};
  DeviceBuffer<double> rowSquared_{"row errors"};
  DeviceBuffer<double> rowL1_{"row L1 norms"};
  DeviceBuffer<double> sums_{"statistics"};
  DeviceBuffer<int64_t> columnStart_{"feature starts"};
  DeviceBuffer<int32_t> columnTable_{"units per feature and chunk"};
  DeviceBuffer<int32_t> columnEntry_{"units by feature"};
  DeviceBuffer<float> biasGrad_{"encoder bias gradient"};
  DeviceBuffer<float> decoderBiasGrad_{"decoder bias gradient"};
  DeviceBuffer<float> partials_{"decoder bias partial sums"};
  DeviceBuffer<float> decoderGrad_{"decoder gradient"};
  DeviceBuffer<float> encoderGrad_{"encoder gradient"};
  DeviceBuffer<float> dense_{"dense codes"};
  DeviceBuffer<float> rowsOut_{"output rows"};
  DeviceBuffer<int32_t> indptr_{"sparse codes indptr"};
  DeviceBuffer<unsigned int> magnitudes_{"overflow check"};
  // What a training step reads back at its one wait for the GPU before the update.
  struct StepReadback {
    double sums[2];  // squared error and L1 over the batch
    float largestGradient;
  };
  PinnedBuffer<StepReadback> readback_;
  PhaseClock clock_;
};

CudaSae::CudaSae(const SaeConfig& config)
    : config_(config),
      d_(config.dIn),
      m_(config.dHidden),
      device_(config.cudaDevice),
      pool_(config.threads),
      kernels_(cpu::requireKernels(config.cpuKernels)) {
  if ((config_.activation == Activation::TopK || config_.activation == Activation::BatchTopK) && config_.k < 1) {
    throwRangeError("TopK and BatchTopK need k >= 1");
  }
  if (d_ > kMaxDIn) {
    throwRangeError("The CUDA backend supports dIn up to " + std::to_string(kMaxDIn) + " but received " +
                    std::to_string(d_));
  }
  DeviceScope scope(device_);
  const size_t weights = static_cast<size_t>(d_ * m_);
  const size_t stateBytes = sizeof(float) * (3 * weights * (config_.tied ? 1 : 2) + 3 * static_cast<size_t>(d_ + m_)) +
                            sizeof(int64_t) * static_cast<size_t>(m_);
  checkFreeMemory(static_cast<long double>(stateBytes), "A SparseAutoencoder with dIn " + std::to_string(d_) +
                                                          " and dHidden " + std::to_string(m_) +
                                                          " (parameters and optimizer state)");
  try {
    SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    SAEKIT_CUDA_CHECK(cudaStreamCreateWithFlags(&copyStream_, cudaStreamNonBlocking));
    for (cudaEvent_t& event : staged_) SAEKIT_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    SAEKIT_CUDA_CHECK(cudaEventCreateWithFlags(&inputsFree_, cudaEventDisableTiming));
    SAEKIT_CUDA_CHECK(cudaEventCreateWithFlags(&nextReady_, cudaEventDisableTiming));
    initialiseParameters();
  } catch (...) {
    releaseStreams();
    throw;
  }
}

void CudaSae::initialiseParameters() {
  const size_t weights = static_cast<size_t>(d_ * m_);
  decoder_.allocate(weights, stream_);
  if (!config_.tied) encoder_.allocate(weights, stream_);
  encoderBias_.allocate(static_cast<size_t>(m_), stream_);
  decoderBias_.allocate(static_cast<size_t>(d_), stream_);
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(encoderBias_.value.data(), 0, static_cast<size_t>(m_) * sizeof(float), stream_));
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(decoderBias_.value.data(), 0, static_cast<size_t>(d_) * sizeof(float), stream_));
  sums_.resize(3);
  scalar_.resize(1);
  poolUsed_.resize(1);

  // The CPU backend's initialisation, drawn on the host: both backends start alike.
  Buffer<float> rows(weights);
  cpu::randomUnitRows(pool_, rows.data(), m_, d_, config_.seed);
  SAEKIT_CUDA_CHECK(
      cudaMemcpyAsync(decoder_.value.data(), rows.data(), weights * sizeof(float), cudaMemcpyHostToDevice, stream_));
  if (!config_.tied) {
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(encoder_.value.data(), rows.data(), weights * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));
  }
  std::vector<int64_t> neverFired(static_cast<size_t>(m_), -1);
  lastFired_.resize(static_cast<size_t>(m_));
  SAEKIT_CUDA_CHECK(cudaMemcpyAsync(lastFired_.data(), neverFired.data(), neverFired.size() * sizeof(int64_t),
                                    cudaMemcpyHostToDevice, stream_));
  synchronize();
}

CudaSae::~CudaSae() {
  // The buffers free themselves after this body.
  releaseStreams();
}

void CudaSae::releaseStreams() {
  // Errors are ignored here: a destructor must not throw, and at process exit the runtime may
  // already be gone.
  cudaSetDevice(device_);
  releaseStream(stream_);
  releaseStream(copyStream_);
  stream_ = copyStream_ = nullptr;
  const auto destroy = [](cudaEvent_t& event) {
    if (event != nullptr) cudaEventDestroy(event);
    event = nullptr;
  };
  for (cudaEvent_t& event : staged_) destroy(event);
  destroy(inputsFree_);
  destroy(nextReady_);
  cudaGetLastError();
}

size_t CudaSae::bytesHeld() const {
  return decoder_.bytes() + encoder_.bytes() + encoderBias_.bytes() + decoderBias_.bytes() + lastFired_.bytes() +
         staging_.bytes() + hostScratch_.bytes() + x_.bytes() + nextX_.bytes() + shifted_.bytes() + thresholdBias_.bytes() +
         scalar_.bytes() + tileCount_.bytes() + tilePos_.bytes() + poolValues_.bytes() + poolIndices_.bytes() +
         poolUsed_.bytes() + csr_.bytes() + selected_.bytes() + rowCount_.bytes() + flags_.bytes() +
         select_.bytes() + rowMinimum_.bytes() + cubTemp_.bytes() + outputGrad_.bytes() + unitGrad_.bytes() +
         rowSquared_.bytes() + rowL1_.bytes() + sums_.bytes() + columnStart_.bytes() + columnTable_.bytes() +
         columnEntry_.bytes() + biasGrad_.bytes() + decoderBiasGrad_.bytes() + partials_.bytes() +
         decoderGrad_.bytes() + encoderGrad_.bytes() + dense_.bytes() + rowsOut_.bytes() +
         indptr_.bytes() + magnitudes_.bytes() + readback_.bytes() + deadFeatures_.bytes() + aux_.bytes() +
         auxGrad_.bytes() + rowAuxError_.bytes();
}

void CudaSae::checkFinite(const float* x, int64_t count, int64_t cols, const char* name) {
  cpu::checkFiniteParallel(pool_, kernels_, x, count, cols, name);
}

bool CudaSae::upload(const void* host, int64_t rows, size_t rowBytes, void* to,
                     const std::function<void(int64_t, int64_t)>& onChunk, bool checkFloats) const {
  if (rows <= 0 || rowBytes == 0) return true;
  // Normally idle already; after a call that threw part-way, its queued work must not still be
  // reading what the copies are about to overwrite.
  synchronize();
  return copyIn(
      host, rows, rowBytes, to,
      [&](int64_t row0, int64_t count, cudaEvent_t copied) {
        SAEKIT_CUDA_CHECK(cudaStreamWaitEvent(stream_, copied, 0));
        if (onChunk) onChunk(row0, count);
      },
      checkFloats);
}

bool CudaSae::copyIn(const void* host, int64_t rows, size_t rowBytes, void* to,
                     const std::function<void(int64_t, int64_t, cudaEvent_t)>& onQueued, bool checkFloats,
                     double scale) const {
  const size_t slotBytes = std::max(kStageBytes, rowBytes);
  int64_t perChunk = static_cast<int64_t>(slotBytes / rowBytes);
  if (perChunk > kGemmTileM) perChunk -= perChunk % kGemmTileM;  // whole row tiles for the encoder
  if (slotBytes != slotBytes_) {
    // Slots of another size overlap the last call's, whose copies (a staged next batch) may
    // still be reading them; and growing frees the old ones.
    for (cudaEvent_t event : staged_) SAEKIT_CUDA_CHECK(cudaEventSynchronize(event));
    slotBytes_ = slotBytes;
  }
  staging_.resize(slotBytes * kStageSlots);
  const auto* from = static_cast<const unsigned char*>(host);
  auto* dest = static_cast<unsigned char*>(to);
  int chunk = 0;
  bool finite = true;
  for (int64_t row0 = 0; row0 < rows; row0 += perChunk, ++chunk) {
    const int64_t count = std::min(perChunk, rows - row0);
    const size_t bytes = static_cast<size_t>(count) * rowBytes;
    const size_t offset = static_cast<size_t>(row0) * rowBytes;
    const int slot = chunk % kStageSlots;
    unsigned char* pinned = staging_.data() + static_cast<size_t>(slot) * slotBytes;
    // The slot's previous copy has to finish before the slot is refilled.
    SAEKIT_CUDA_CHECK(cudaEventSynchronize(staged_[slot]));
    finite = copyToPinned(pinned, from + offset, bytes, checkFloats, scale) && finite;
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(dest + offset, pinned, bytes, cudaMemcpyHostToDevice, copyStream_));
    SAEKIT_CUDA_CHECK(cudaEventRecord(staged_[slot], copyStream_));
    onQueued(row0, count, staged_[slot]);
  }
  return finite;
}

void CudaSae::stageNextBatch(const float* x, int64_t rows, double scale) {
  stagedHost_ = nullptr;
  if (x == nullptr || rows < 1) return;
  const size_t values = static_cast<size_t>(rows * d_);
  try {
    nextX_.resize(values);
  } catch (const Error& error) {
    // Staging only saves time: where the GPU has no room for a second batch, the next step
    // copies its batch itself.
    if (error.code() != "CUDA_OOM") throw;
    return;
  }
  SAEKIT_CUDA_CHECK(cudaStreamWaitEvent(copyStream_, inputsFree_, 0));
  stagedFinite_ = copyIn(x, rows, static_cast<size_t>(d_) * sizeof(float), nextX_.data(),
                         [](int64_t, int64_t, cudaEvent_t) {}, /*checkFloats=*/true, scale);
  SAEKIT_CUDA_CHECK(cudaEventRecord(nextReady_, copyStream_));
  stagedHost_ = x;
  stagedRows_ = rows;
}

bool CudaSae::copyToPinned(unsigned char* pinned, const unsigned char* from, size_t bytes, bool checkFloats,
                           double scale) const {
  // One thread copies about 10 GB/s, a batch of a large SAE is tens of MB, and the GPU waits.
  constexpr size_t kPiece = size_t{128} << 10;  // a 2 MB chunk is 16 pieces: every core of a GPU host
  const size_t pieces = std::max<size_t>(
      1, std::min<size_t>((bytes + kPiece - 1) / kPiece, static_cast<size_t>(4 * pool_.size())));
  const size_t per = ((bytes + pieces - 1) / pieces + 63) / 64 * 64;  // whole floats
  std::vector<char> pieceFinite(pieces, 1);
  const auto copyPiece = [&](size_t piece, int) {
    const size_t begin = piece * per;
    if (begin >= bytes) return;
    const size_t length = std::min(per, bytes - begin);
    if (scale == 1.0) {
      std::memcpy(pinned + begin, from + begin, length);
    } else {
      const auto* in = reinterpret_cast<const float*>(from + begin);
      auto* out = reinterpret_cast<float*>(pinned + begin);
      for (size_t i = 0; i < length / sizeof(float); ++i) out[i] = static_cast<float>(static_cast<double>(in[i]) * scale);
    }
    if (checkFloats) {
      // The copy, still in cache, rather than the source: the same values.
      const auto* values = reinterpret_cast<const float*>(pinned + begin);
      const int64_t count = static_cast<int64_t>(length / sizeof(float));
      pieceFinite[piece] = kernels_.firstNonFinite(values, count) == count;
    }
  };
  if (pieces == 1) {
    copyPiece(0, 0);
  } else {
    pool_.run(pieces, copyPiece);
  }
  return std::all_of(pieceFinite.begin(), pieceFinite.end(), [](char ok) { return ok != 0; });
}

template <class T>
void CudaSae::download(T* host, const T* device, size_t count) const {
  if (count > 0) {
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream_));
  }
  synchronize();
}

void CudaSae::runEncoder(int64_t row0, int64_t count) {
  const float* input = (config_.applyBDecToInput ? shifted_.data() : x_.data()) + row0 * d_;
  const int64_t tiles = ceilDiv(m_, kGemmTileN);
  ActiveUnitsOut out{encoderBiasInUse_, addBack_, tiles, tileCount_.data() + row0 * tiles,
                     tilePos_.data() + row0 * tiles, poolValues_.data(), poolIndices_.data(), poolCapacity_,
                     poolUsed_.data()};
  encoderProduct(config_.precision == Precision::FP32 ? GemmPrecision::Fp32 : GemmPrecision::Tf32, input, d_, count,
                 encoderRows(), d_, m_, d_, out, stream_);
}

void CudaSae::encodeToCsr(const float* x, int64_t rows, bool training, const BatchStaging& staging) {
  const size_t values = static_cast<size_t>(rows * d_);
  if (staging.next != nullptr) {
    // The batch goes to what is now x_ (or nextX_ if this step's batch was staged) and was an
    // earlier step's input, which work still queued (of a step that threw) may read: its copy
    // waits for the compute stream's work up to here, but not for this step's.
    SAEKIT_CUDA_CHECK(cudaEventRecord(inputsFree_, stream_));
  }
  if (staging.staged) x_.swap(nextX_);
  x_.resize(values);
  if (config_.applyBDecToInput) shifted_.resize(values);
  // BatchTopK at inference: units above the threshold, i.e. pre + (b_enc - threshold) > 0.
  const bool thresholded = config_.activation == Activation::BatchTopK && !training && threshold_ > 0.0f;
  encoderBiasInUse_ = encoderBias_.value.data();
  addBack_ = 0.0f;
  if (thresholded) {
    thresholdBias_.resize(static_cast<size_t>(m_));
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(scalar_.data(), &threshold_, sizeof(float), cudaMemcpyHostToDevice, stream_));
    shiftRows(encoderBias_.value.data(), scalar_.data(), m_, 1, thresholdBias_.data(), stream_);
    encoderBiasInUse_ = thresholdBias_.data();
    addBack_ = threshold_;
  }
  const int64_t tiles = ceilDiv(m_, kGemmTileN);
  tileCount_.resize(static_cast<size_t>(rows * tiles));
  tilePos_.resize(static_cast<size_t>(rows * tiles));
  // A first guess at the pool; the first batches of a fresh ReLU model (half the units
  // active) make it grow once.
  const int64_t worst = rows * m_;
  reservePool(std::max(poolCapacity_, std::min<int64_t>(worst, rows * 64)));
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(poolUsed_.data(), 0, sizeof(unsigned long long), stream_));
  const auto encodeRows = [&](int64_t row0, int64_t count) {
    if (config_.applyBDecToInput) {
      shiftRows(x_.data() + row0 * d_, decoderBias_.value.data(), count, d_, shifted_.data() + row0 * d_, stream_);
    }
    runEncoder(row0, count);
  };
  bool finite = true;
  if (staging.staged) {
    finite = stagedFinite_;
    SAEKIT_CUDA_CHECK(cudaStreamWaitEvent(stream_, nextReady_, 0));
    encodeRows(0, rows);
  } else {
    finite = upload(x, rows, static_cast<size_t>(d_) * sizeof(float), x_.data(), encodeRows, /*checkFloats=*/training);
  }
  // Training checks its batch while copying it (inference checked its input before it came
  // here); this finds and names the first non-finite value.
  if (!finite) checkFinite(x, rows * d_, d_, "batch.data");
  clock_.mark("upload + encoder product", stream_);
  // The encoder counts every active unit, also those beyond a full pool.
  unsigned long long used = 0;
  download(&used, poolUsed_.data(), 1);
  if (used > static_cast<unsigned long long>(std::numeric_limits<int32_t>::max())) {
    throwRangeError("A batch of " + std::to_string(rows) + " rows has " + std::to_string(used) +
                    " active units, more than the CUDA backend addresses in one pass; use fewer rows at a time");
  }
  if (static_cast<int64_t>(used) > poolCapacity_) {
    reservePool(std::min<int64_t>(worst, static_cast<int64_t>(used) + static_cast<int64_t>(used / 4)));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(poolUsed_.data(), 0, sizeof(unsigned long long), stream_));
    runEncoder(0, rows);
    download(&used, poolUsed_.data(), 1);
  }
  nnz_ = static_cast<int64_t>(used);
  csr_.reserve(rows, nnz_);
  rowCount_.resize(static_cast<size_t>(rows + 1));
  tileRowCounts(tileCount_.data(), rows, tiles, rowCount_.data(), stream_);
  exclusiveSum(rowCount_.data(), csr_.rowStart.data(), rows + 1, cubTemp_, stream_);
  gatherTiles(tileCount_.data(), tilePos_.data(), rows, tiles, poolValues_.data(), poolIndices_.data(),
              csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(), csr_.entryRow.data(), stream_);

  clock_.mark("active units to CSR", stream_);
  auxNnz_ = 0;
  if (training && config_.auxK > 0) selectAuxUnits(rows);
  if (config_.activation == Activation::TopK) {
    flags_.resize(static_cast<size_t>(std::max<int64_t>(nnz_, 1)));
    flagTopKPerRow(csr_.rowStart.data(), rows, csr_.values.data(), nnz_, config_.k, flags_.data(), select_, stream_);
    keepFlagged(rows);
  } else if (config_.activation == Activation::BatchTopK && training) {
    if (nnz_ > config_.k * rows) {
      flags_.resize(static_cast<size_t>(nnz_));
      flagLargest(csr_.values.data(), nnz_, config_.k * rows, flags_.data(), select_, stream_);
      keepFlagged(rows);
    }
    pendingBatchMinimum_ = -1.0f;
    if (steps_ >= config_.thresholdStartStep) trackThreshold(rows);
  }
  if (auxNnz_ > 0) appendAuxUnits(rows);
}

void CudaSae::reservePool(int64_t capacity) {
  // Both arrays first: after an allocation that fails (CUDA_OOM) poolCapacity_ still says what
  // they hold, so the model goes on with smaller batches.
  poolValues_.resize(static_cast<size_t>(capacity));
  poolIndices_.resize(static_cast<size_t>(capacity));
  poolCapacity_ = capacity;
}

int64_t CudaSae::gatherFlaggedUnits(const Csr& from, int64_t rows, int64_t count, Csr& to) {
  flaggedRowCounts(from.rowStart.data(), rows, flags_.data(), rowCount_.data(), stream_);
  to.reserve(rows, count);  // at most as many as before
  exclusiveSum(rowCount_.data(), to.rowStart.data(), rows + 1, cubTemp_, stream_);
  gatherFlagged(from.rowStart.data(), rows, from.indices.data(), from.values.data(), flags_.data(),
                to.rowStart.data(), to.indices.data(), to.values.data(), to.entryRow.data(), stream_);
  int64_t kept = 0;
  download(&kept, to.rowStart.data() + rows, 1);
  return kept;
}

void CudaSae::keepFlagged(int64_t rows) {
  nnz_ = gatherFlaggedUnits(csr_, rows, nnz_, selected_);
  csr_.swap(selected_);
}

void CudaSae::selectAuxUnits(int64_t rows) {
  deadFeatures_.resize(static_cast<size_t>(m_));
  flagDeadFeatures(lastFired_.data(), m_, samplesSeen_, config_.auxKWindow, deadFeatures_.data(), stream_);
  flags_.resize(static_cast<size_t>(std::max<int64_t>(nnz_, 1)));
  flagByColumn(csr_.indices.data(), nnz_, deadFeatures_.data(), flags_.data(), stream_);
  const int64_t candidates = gatherFlaggedUnits(csr_, rows, nnz_, aux_);
  if (candidates > 0) {
    // Only the flags of aux_'s units are rewritten here; csr_'s selection flags them again.
    flagTopKPerRow(aux_.rowStart.data(), rows, aux_.values.data(), candidates, config_.auxK, flags_.data(), select_,
                   stream_);
    auxNnz_ = gatherFlaggedUnits(aux_, rows, candidates, selected_);
    aux_.swap(selected_);
  }
  clock_.mark("AuxK selection", stream_);
}

void CudaSae::appendAuxUnits(int64_t rows) {
  const int64_t total = nnz_ + auxNnz_;
  if (total > std::numeric_limits<int32_t>::max()) {
    throwRangeError("A batch of " + std::to_string(rows) + " rows has " + std::to_string(total) +
                    " active and AuxK units, more than the CUDA backend addresses in one pass; use fewer rows at "
                    "a time");
  }
  selected_.reserve(rows, total);
  const auto copy = [&](void* to, const void* from, size_t bytes) {
    if (bytes > 0) SAEKIT_CUDA_CHECK(cudaMemcpyAsync(to, from, bytes, cudaMemcpyDeviceToDevice, stream_));
  };
  const size_t main = static_cast<size_t>(nnz_);
  const size_t aux = static_cast<size_t>(auxNnz_);
  copy(selected_.rowStart.data(), csr_.rowStart.data(), static_cast<size_t>(rows + 1) * sizeof(int64_t));
  copy(selected_.indices.data(), csr_.indices.data(), main * sizeof(int32_t));
  copy(selected_.values.data(), csr_.values.data(), main * sizeof(float));
  copy(selected_.entryRow.data(), csr_.entryRow.data(), main * sizeof(int32_t));
  copy(selected_.indices.data() + main, aux_.indices.data(), aux * sizeof(int32_t));
  copy(selected_.values.data() + main, aux_.values.data(), aux * sizeof(float));
  copy(selected_.entryRow.data() + main, aux_.entryRow.data(), aux * sizeof(int32_t));
  csr_.swap(selected_);
}

double CudaSae::auxiliaryLoss(int64_t rows, int64_t rowChunks) {
  // The residual e = x - xhat = -(rows / 2) g per row. Its variance over the batch, summed
  // over coordinates: mean ||e||^2 - ||mean e||^2, with mean e = -(1/2) sum of g.
  sumRowStats(rowSquared_.data(), nullptr, rows, sums_.data(), stream_);
  halfSumSquaredNorm(partials_.data(), rowChunks, d_, sums_.data() + 2, stream_);
  double sums[3];
  download(sums, sums_.data(), 3);
  const double variance = sums[0] / static_cast<double>(rows) - sums[2];
  auxGrad_.resize(static_cast<size_t>(rows * d_));
  float* auxUnitGrad = unitGrad_.data() + nnz_;
  if (!(variance > 0.0)) {
    // No spread in the residual: the normalised loss is undefined, and taken as 0 (as
    // dictionary_learning's nan_to_num does), with no gradient.
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(auxGrad_.data(), 0, static_cast<size_t>(rows * d_) * sizeof(float), stream_));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(auxUnitGrad, 0, static_cast<size_t>(auxNnz_) * sizeof(float), stream_));
    return 0.0;
  }
  const float errScale = static_cast<float>(rows) / 2.0f;
  const float gradScale = static_cast<float>(2.0 * config_.auxKCoeff / (static_cast<double>(rows) * variance));
  rowAuxError_.resize(static_cast<size_t>(rows));
  auxRowBackward(aux_.rowStart.data(), csr_.indices.data() + nnz_, csr_.values.data() + nnz_, rows,
                 decoder_.value.data(), outputGrad_.data(), d_, errScale, gradScale, auxGrad_.data(), auxUnitGrad,
                 rowAuxError_.data(), stream_);
  sumRowStats(rowAuxError_.data(), nullptr, rows, sums_.data(), stream_);
  double error = 0.0;
  download(&error, sums_.data(), 1);
  clock_.mark("AuxK loss and dL/dpre", stream_);
  return config_.auxKCoeff * error / static_cast<double>(rows) / variance;
}

void CudaSae::trackThreshold(int64_t rows) {
  // As the CPU: an EMA of the mean over rows of each row's smallest kept activation.
  rowMinimumSum(csr_.rowStart.data(), rows, csr_.values.data(), rowMinimum_, sums_.data(), stream_);
  double sums[2];
  download(sums, sums_.data(), 2);
  if (sums[1] == 0.0) return;
  // Applied with the update, so that gradients() and a step that fails leave the threshold as it was.
  pendingBatchMinimum_ = static_cast<float>(sums[0] / sums[1]);
}

StepStats CudaSae::step(const float* x, int64_t rows, SaeGradients* out, const StepOverrides& overrides,
                        const BatchStaging& staging) {
  if (rows < 1) throwRangeError("Expected at least one row in the batch");
  clock_.startStep(stream_);
  DeviceScope scope(device_);  // the input is checked as it is copied to the GPU
  encodeToCsr(x, rows, true, staging);
  clock_.mark("TopK / BatchTopK selection", stream_);
  const int64_t nnz = nnz_;
  const int64_t total = nnz + auxNnz_;  // main units, then AuxK's
  const float l1 = overrides.l1Coeff >= 0.0f ? overrides.l1Coeff : config_.l1Coeff;
  const float lr = overrides.lr >= 0.0f ? overrides.lr : config_.lr;
  const float gradScale = 2.0f / static_cast<float>(rows);
  const float l1Grad = l1 / static_cast<float>(rows);
  const int64_t rowChunks = ceilDiv(rows, kBiasRowChunk);
  const int64_t featureChunks = ceilDiv(m_, kBiasFeatureChunk);

  // Per row: decode, the error, dLoss/dxhat and dLoss/dpre at the active units.
  outputGrad_.resize(static_cast<size_t>(rows * d_));
  unitGrad_.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
  rowSquared_.resize(static_cast<size_t>(rows));
  rowL1_.resize(static_cast<size_t>(rows));
  partials_.resize(static_cast<size_t>((rowChunks + featureChunks) * d_));
  rowBackward(csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(), rows, decoder_.value.data(),
              decoderBias_.value.data(), x_.data(), d_, gradScale, l1Grad, outputGrad_.data(), unitGrad_.data(),
              rowSquared_.data(), rowL1_.data(), stream_);
  clock_.mark("rows: decode, error, dL/dpre", stream_);
  chunkColumnSums(outputGrad_.data(), nullptr, 1.0f, rows, d_, kBiasRowChunk, partials_.data(), stream_);
  clock_.mark("b_dec gradient partials", stream_);
  const double auxLoss = auxNnz_ > 0 ? auxiliaryLoss(rows, rowChunks) : 0.0;

  // Per feature: the units grouped by feature (rows in order), then the gradients.
  columnStart_.resize(static_cast<size_t>(m_ + 1));
  columnEntry_.resize(static_cast<size_t>(std::max<int64_t>(total, 1)));
  const ColumnTable columns = columnStarts(csr_.indices.data(), total, m_, columnStart_.data(), columnTable_, stream_);
  clock_.mark("units per feature", stream_);
  sortByColumn(csr_.indices.data(), total, columnStart_.data(), columns, columnTable_, columnEntry_.data(), stream_);
  clock_.mark("units sorted by feature", stream_);
  biasGrad_.resize(static_cast<size_t>(m_));
  featureBiasGradients(columnStart_.data(), columnEntry_.data(), unitGrad_.data(), m_, biasGrad_.data(), stream_);
  decoderGrad_.resize(static_cast<size_t>(m_ * d_));
  if (!config_.tied) encoderGrad_.resize(static_cast<size_t>(m_ * d_));
  FeatureGradientArgs args{columnStart_.data(), columnEntry_.data(), csr_.entryRow.data(), csr_.values.data(),
                           unitGrad_.data(), outputGrad_.data(), nnz, auxNnz_ > 0 ? auxGrad_.data() : nullptr,
                           x_.data(), decoderBias_.value.data(), biasGrad_.data(), m_, d_, config_.tied,
                           config_.applyBDecToInput, decoderGrad_.data(),
                           config_.tied ? nullptr : encoderGrad_.data()};
  featureGradients(args, stream_);
  clock_.mark("feature gradients", stream_);
  // The encoder saw x - b_dec: b_dec's gradient gets -sum_j biasGrad_j W_enc[:, j].
  if (config_.applyBDecToInput) {
    chunkColumnSums(encoderRows(), biasGrad_.data(), -1.0f, m_, d_, kBiasFeatureChunk, partials_.data() + rowChunks * d_,
                    stream_);
  }
  decoderBiasGrad_.resize(static_cast<size_t>(d_));
  sumChunks(partials_.data(), config_.applyBDecToInput ? rowChunks + featureChunks : rowChunks, d_,
            decoderBiasGrad_.data(), stream_);

  sumRowStats(rowSquared_.data(), rowL1_.data(), rows, sums_.data(), stream_);
  if (staging.next != nullptr) {
    // Here, with the whole backward pass queued and no wait for the GPU before it ends, the
    // host's copy into pinned memory overlaps the most GPU work. Right after the encoder, a
    // small model's encoder ended first and the GPU waited for the copy.
    stageNextBatch(staging.next, staging.nextRows);
    clock_.mark("staging the next batch", stream_);
  }
  const bool update = out == nullptr;
  // One wait for the GPU: the statistics and, to train, the overflow guard's largest gradient.
  const double largestParameter = update ? parameterBound() : 0.0;  // waits itself only when stale
  readback_.resize(1);
  StepReadback& readback = *readback_.data();
  SAEKIT_CUDA_CHECK(
      cudaMemcpyAsync(readback.sums, sums_.data(), sizeof readback.sums, cudaMemcpyDeviceToHost, stream_));
  if (update) {
    queueLargestMagnitude(decoderGrad_.data(), encoderGrad_.data(), biasGrad_.data(), decoderBiasGrad_.data());
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(&readback.largestGradient, magnitudes_.data(), sizeof(float),
                                      cudaMemcpyDeviceToHost, stream_));
  }
  synchronize();
  const double* sums = readback.sums;
  const double loss = sums[0] + static_cast<double>(l1) * sums[1] + auxLoss * static_cast<double>(rows);
  clock_.mark("b_dec gradient, statistics", stream_);

  if (update) {
    guardAgainstOverflow(loss, rows, lr, largestParameter, readback.largestGradient);
    const int64_t t = steps_ + 1;
    const double bc1 = 1.0 - std::pow(static_cast<double>(config_.beta1), static_cast<double>(t));
    const double bc2 = 1.0 - std::pow(static_cast<double>(config_.beta2), static_cast<double>(t));
    const cpu::AdamStep adamStep{config_.beta1, config_.beta2, config_.eps, static_cast<float>(lr / bc1),
                                 static_cast<float>(std::sqrt(bc2))};
    adamFeatures(decoder_.value.data(), decoder_.m.data(), decoder_.v.data(), decoderGrad_.data(),
                 config_.tied ? nullptr : encoder_.value.data(), encoder_.m.data(), encoder_.v.data(),
                 encoderGrad_.data(), m_, d_, adamStep, stream_);
    adamVector(encoderBias_.value.data(), encoderBias_.m.data(), encoderBias_.v.data(), biasGrad_.data(), m_,
               adamStep, stream_);
    adamVector(decoderBias_.value.data(), decoderBias_.m.data(), decoderBias_.v.data(), decoderBiasGrad_.data(), d_,
               adamStep, stream_);
    if (pendingBatchMinimum_ >= 0.0f) {
      threshold_ = threshold_ < 0.0f ? pendingBatchMinimum_
                                     : config_.thresholdBeta * threshold_ + (1.0f - config_.thresholdBeta) * pendingBatchMinimum_;
      pendingBatchMinimum_ = -1.0f;
    }
    steps_ = t;
    samplesSeen_ += rows;
    markFired(columnStart_.data(), columnEntry_.data(), nnz, m_, samplesSeen_, lastFired_.data(), stream_);
    clock_.mark("Adam, projection, renormalisation", stream_);
  }
  if (!update) {
    out->decoderWeights.resize(static_cast<size_t>(m_ * d_));
    download(out->decoderWeights.data(), decoderGrad_.data(), static_cast<size_t>(m_ * d_));
    out->encoderBias.resize(static_cast<size_t>(m_));
    download(out->encoderBias.data(), biasGrad_.data(), static_cast<size_t>(m_));
    out->decoderBias.resize(static_cast<size_t>(d_));
    download(out->decoderBias.data(), decoderBiasGrad_.data(), static_cast<size_t>(d_));
    out->encoderWeights.resize(config_.tied ? 0 : static_cast<size_t>(m_ * d_));
    if (!config_.tied) {
      // Feature-major rows to the public [dIn, dHidden] layout.
      hostScratch_.resize(static_cast<size_t>(m_ * d_));
      download(hostScratch_.data(), encoderGrad_.data(), static_cast<size_t>(m_ * d_));
      for (int64_t j = 0; j < m_; ++j)
        for (int64_t i = 0; i < d_; ++i) out->encoderWeights[i * m_ + j] = hostScratch_[j * d_ + i];
    }
  }

  StepStats stats;
  stats.mse = sums[0] / static_cast<double>(rows * d_);
  stats.l1 = sums[1] / static_cast<double>(rows);
  stats.l0 = static_cast<double>(nnz) / static_cast<double>(rows);
  stats.auxLoss = auxLoss;
  stats.loss = loss / static_cast<double>(rows);
  return stats;
}

float CudaSae::parameterBound() {
  if (parameterBound_ >= 0.0f) return parameterBound_;
  queueLargestMagnitude(decoder_.value.data(), encoder_.value.data(), encoderBias_.value.data(),
                        decoderBias_.value.data());
  unsigned int bits = 0;
  download(&bits, magnitudes_.data(), 1);
  float bound;
  std::memcpy(&bound, &bits, sizeof bound);
  parameterBound_ = bound;
  return bound;
}

void CudaSae::queueLargestMagnitude(const float* decoder, const float* encoder, const float* encoderBias,
                                    const float* decoderBias) {
  magnitudes_.resize(1);
  SAEKIT_CUDA_CHECK(cudaMemsetAsync(magnitudes_.data(), 0, sizeof(unsigned int), stream_));
  const size_t weights = static_cast<size_t>(m_ * d_);
  largestMagnitude(decoder, weights, magnitudes_.data(), stream_);
  if (!config_.tied) largestMagnitude(encoder, weights, magnitudes_.data(), stream_);
  largestMagnitude(encoderBias, m_, magnitudes_.data(), stream_);
  largestMagnitude(decoderBias, d_, magnitudes_.data(), stream_);
}

void CudaSae::guardAgainstOverflow(double loss, int64_t rows, float lr, double largestParameter,
                                   float largestGradient) {
  const double adamStep = adamStepBound(config_, lr, steps_ + 1);
  if (std::isfinite(loss) && std::isfinite(largestGradient) && largestGradient < kGradientLimit &&
      largestParameter + adamStep < kParameterLimit) {
    parameterBound_ = static_cast<float>(largestParameter + adamStep);  // still a bound after this step's update
    return;
  }
  throwStepOverflow(steps_, "loss " + describeMagnitude(loss / static_cast<double>(rows)) + ", largest gradient " +
                                describeMagnitude(largestGradient) + ", largest parameter " +
                                describeMagnitude(largestParameter));
}

StepStats CudaSae::trainStep(const float* x, int64_t rows, const StepOverrides& overrides,
                             const BatchStaging& staging) {
  BatchStaging checked = staging;
  checked.staged = staging.staged && stagedHost_ == x && stagedRows_ == rows;
  stagedHost_ = nullptr;  // what the last step staged serves this step or none
  return step(x, rows, nullptr, overrides, checked);
}

bool CudaSae::stageBatch(const float* x, int64_t rows, double scale) {
  DeviceScope scope(device_);
  // The last step's queued work (its update) may still read what nextX_ holds.
  SAEKIT_CUDA_CHECK(cudaEventRecord(inputsFree_, stream_));
  stageNextBatch(x, rows, scale);
  return stagedHost_ != nullptr && stagedFinite_;
}

StepStats CudaSae::gradients(const float* x, int64_t rows, SaeGradients& out) {
  return step(x, rows, &out, StepOverrides{}, BatchStaging{});
}

void CudaSae::encode(const float* x, int64_t rows, float* codes) {
  checkFinite(x, rows * d_, d_, "x.data");
  DeviceScope scope(device_);
  const int64_t chunk = inferenceRows(m_);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    encodeToCsr(x + r0 * d_, n, false);
    dense_.resize(static_cast<size_t>(n * m_));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(dense_.data(), 0, static_cast<size_t>(n * m_) * sizeof(float), stream_));
    scatterDense(csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(), n, m_, dense_.data(), stream_);
    download(codes + r0 * m_, dense_.data(), static_cast<size_t>(n * m_));
  }
}

void CudaSae::encodeSparse(const float* x, int64_t rows, SparseCodes& codes) {
  checkFinite(x, rows * d_, d_, "x.data");
  DeviceScope scope(device_);
  std::vector<int64_t> rowStart(static_cast<size_t>(rows + 1), 0);
  std::vector<int32_t> indices;
  std::vector<float> values;
  const int64_t chunk = inferenceRows(d_);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    encodeToCsr(x + r0 * d_, n, false);
    const int64_t before = static_cast<int64_t>(indices.size());
    if (before + nnz_ > std::numeric_limits<int32_t>::max()) {
      throwRangeError("The sparse codes of " + std::to_string(rows) + " rows have more than " +
                      std::to_string(std::numeric_limits<int32_t>::max()) +
                      " active units, more than an Int32Array indptr can address; encode fewer rows at a time");
    }
    download(rowStart.data() + r0, csr_.rowStart.data(), static_cast<size_t>(n + 1));
    for (int64_t r = r0; r <= r0 + n; ++r) rowStart[r] += before;
    indices.resize(static_cast<size_t>(before + nnz_));
    values.resize(static_cast<size_t>(before + nnz_));
    download(indices.data() + before, csr_.indices.data(), static_cast<size_t>(nnz_));
    download(values.data() + before, csr_.values.data(), static_cast<size_t>(nnz_));
  }
  const int64_t nnz = static_cast<int64_t>(indices.size());
  codes.rows = rows;
  codes.cols = m_;
  codes.indptr.resize(static_cast<size_t>(rows + 1));
  for (int64_t r = 0; r <= rows; ++r) codes.indptr[r] = static_cast<int32_t>(rowStart[r]);
  codes.indices.resize(static_cast<size_t>(nnz));
  codes.values.resize(static_cast<size_t>(nnz));
  if (nnz > 0) {
    std::memcpy(codes.indices.data(), indices.data(), static_cast<size_t>(nnz) * sizeof(int32_t));
    std::memcpy(codes.values.data(), values.data(), static_cast<size_t>(nnz) * sizeof(float));
  }
}

void CudaSae::decode(const float* codes, int64_t rows, float* out) {
  checkFinite(codes, rows * m_, m_, "codes.data");
  DeviceScope scope(device_);
  const int64_t chunk = inferenceRows(m_);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    dense_.resize(static_cast<size_t>(n * m_));
    upload(codes + r0 * m_, n, static_cast<size_t>(m_) * sizeof(float), dense_.data(), nullptr);
    csr_.rowStart.resize(static_cast<size_t>(n + 1));
    rowCount_.resize(static_cast<size_t>(n + 1));
    denseRowCounts(dense_.data(), n, m_, rowCount_.data(), stream_);
    exclusiveSum(rowCount_.data(), csr_.rowStart.data(), n + 1, cubTemp_, stream_);
    int64_t nnz = 0;
    download(&nnz, csr_.rowStart.data() + n, 1);
    csr_.reserve(n, nnz);
    gatherDense(dense_.data(), n, m_, csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(),
                csr_.entryRow.data(), stream_);
    rowsOut_.resize(static_cast<size_t>(n * d_));
    decodeRows(csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(), n, decoder_.value.data(),
               decoderBias_.value.data(), d_, rowsOut_.data(), stream_);
    download(out + r0 * d_, rowsOut_.data(), static_cast<size_t>(n * d_));
  }
}

void CudaSae::decodeSparse(const SparseCodesView& codes, float* out) {
  checkFinite(codes.values, codes.indptr[codes.rows], 0, "codes.values");
  DeviceScope scope(device_);
  const int64_t chunk = inferenceRows(d_);
  std::vector<int32_t> indptr;
  for (int64_t r0 = 0; r0 < codes.rows; r0 += chunk) {
    const int64_t n = std::min(chunk, codes.rows - r0);
    const int64_t first = codes.indptr[r0];
    const int64_t nnz = codes.indptr[r0 + n] - first;
    indptr.resize(static_cast<size_t>(n + 1));
    for (int64_t r = 0; r <= n; ++r) indptr[r] = static_cast<int32_t>(codes.indptr[r0 + r] - first);
    indptr_.resize(static_cast<size_t>(n + 1));
    csr_.reserve(n, nnz);
    upload(indptr.data(), n + 1, sizeof(int32_t), indptr_.data(), nullptr);
    upload(codes.indices + first, nnz, sizeof(int32_t), csr_.indices.data(), nullptr);
    upload(codes.values + first, nnz, sizeof(float), csr_.values.data(), nullptr);
    widenIndptr(indptr_.data(), n, csr_.rowStart.data(), csr_.entryRow.data(), stream_);
    rowsOut_.resize(static_cast<size_t>(n * d_));
    decodeRows(csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(), n, decoder_.value.data(),
               decoderBias_.value.data(), d_, rowsOut_.data(), stream_);
    download(out + r0 * d_, rowsOut_.data(), static_cast<size_t>(n * d_));
  }
}

void CudaSae::reconstruct(const float* x, int64_t rows, float* out) {
  checkFinite(x, rows * d_, d_, "x.data");
  DeviceScope scope(device_);
  const int64_t chunk = inferenceRows(d_);
  for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
    const int64_t n = std::min(chunk, rows - r0);
    encodeToCsr(x + r0 * d_, n, false);
    rowsOut_.resize(static_cast<size_t>(n * d_));
    decodeRows(csr_.rowStart.data(), csr_.indices.data(), csr_.values.data(), n, decoder_.value.data(),
               decoderBias_.value.data(), d_, rowsOut_.data(), stream_);
    download(out + r0 * d_, rowsOut_.data(), static_cast<size_t>(n * d_));
  }
}

int64_t CudaSae::resample(const int32_t* features, int64_t count, const float* x, int64_t rows, uint64_t seed) {
  if (count <= 0 || rows <= 0) return 0;
  checkFinite(x, rows * d_, d_, "x.data");
  checkResampleFeatures(features, count, m_);
  parameterBound_ = -1.0f;
  DeviceScope scope(device_);
  Buffer<float> xhat(static_cast<size_t>(rows * d_));
  reconstruct(x, rows, xhat.data());
  const std::vector<int64_t> chosen = chooseResampleRows(x, xhat.data(), rows, d_, count, seed);
  const int64_t n = static_cast<int64_t>(chosen.size());

  rowsOut_.resize(static_cast<size_t>(m_));
  squaredRowNorms(encoderRows(), m_, d_, rowsOut_.data(), stream_);
  Buffer<float> squaredNorms(static_cast<size_t>(m_));
  download(squaredNorms.data(), rowsOut_.data(), static_cast<size_t>(m_));
  const float encoderScale = resampleEncoderScale(squaredNorms.data(), m_, features, count);

  const size_t rowBytes = static_cast<size_t>(d_) * sizeof(float);
  Buffer<float> direction(static_cast<size_t>(2 * d_));  // the decoder row, then the encoder row
  const float zero = 0.0f;
  int64_t done = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t f = features[i];
    const float* v = x + chosen[i] * d_;
    const double norm = std::sqrt(static_cast<double>(kernels_.dot(v, v, d_)));
    if (norm == 0.0) continue;
    const float inv = static_cast<float>(1.0 / norm);
    for (int64_t k = 0; k < d_; ++k) {
      direction[k] = v[k] * inv;
      direction[d_ + k] = v[k] * inv * encoderScale;
    }
    const int64_t offset = f * d_;
    SAEKIT_CUDA_CHECK(
        cudaMemcpyAsync(decoder_.value.data() + offset, direction.data(), rowBytes, cudaMemcpyHostToDevice, stream_));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(decoder_.m.data() + offset, 0, rowBytes, stream_));
    SAEKIT_CUDA_CHECK(cudaMemsetAsync(decoder_.v.data() + offset, 0, rowBytes, stream_));
    if (!config_.tied) {
      SAEKIT_CUDA_CHECK(cudaMemcpyAsync(encoder_.value.data() + offset, direction.data() + d_, rowBytes,
                                        cudaMemcpyHostToDevice, stream_));
      SAEKIT_CUDA_CHECK(cudaMemsetAsync(encoder_.m.data() + offset, 0, rowBytes, stream_));
      SAEKIT_CUDA_CHECK(cudaMemsetAsync(encoder_.v.data() + offset, 0, rowBytes, stream_));
    }
    for (DeviceBuffer<float>* slot : {&encoderBias_.value, &encoderBias_.m, &encoderBias_.v}) {
      SAEKIT_CUDA_CHECK(cudaMemcpyAsync(slot->data() + f, &zero, sizeof(float), cudaMemcpyHostToDevice, stream_));
    }
    // A fresh start: not dead again until a full window passes.
    SAEKIT_CUDA_CHECK(cudaMemcpyAsync(lastFired_.data() + f, &samplesSeen_, sizeof(int64_t), cudaMemcpyHostToDevice,
                                      stream_));
    synchronize();  // `direction` is refilled for the next feature
    ++done;
  }
  return done;
}

const DeviceAdam& CudaSae::stateOf(SaeParam which) const {
  switch (which) {
    case SaeParam::EncoderWeights:
      return config_.tied ? decoder_ : encoder_;
    case SaeParam::EncoderBias:
      return encoderBias_;
    case SaeParam::DecoderWeights:
      return decoder_;
    case SaeParam::DecoderBias:
      return decoderBias_;
  }
  return decoder_;
}

const DeviceBuffer<float>& slotOf(const DeviceAdam& state, SaeSlot slot) {
  switch (slot) {
    case SaeSlot::AdamFirstMoment:
      return state.m;
    case SaeSlot::AdamSecondMoment:
      return state.v;
    default:
      return state.value;
  }
}

void CudaSae::getParameter(SaeParam which, SaeSlot slot, float* out) const {
  DeviceScope scope(device_);
  const float* data = slotOf(stateOf(which), slot).data();
  if (which == SaeParam::EncoderWeights) {
    hostScratch_.resize(static_cast<size_t>(m_ * d_));
    download(hostScratch_.data(), data, static_cast<size_t>(m_ * d_));
    for (int64_t j = 0; j < m_; ++j)
      for (int64_t i = 0; i < d_; ++i) out[i * m_ + j] = hostScratch_[j * d_ + i];
  } else {
    const int64_t n = which == SaeParam::DecoderWeights ? m_ * d_ : which == SaeParam::EncoderBias ? m_ : d_;
    download(out, data, static_cast<size_t>(n));
  }
}

void CudaSae::setParameter(SaeParam which, SaeSlot slot, const float* values) {
  if (which == SaeParam::EncoderWeights && config_.tied) {
    throwError("ERR_TIED", "A tied SparseAutoencoder has no separate encoder weights; set the decoder weights");
  }
  parameterBound_ = -1.0f;
  DeviceScope scope(device_);
  // The same storage getParameter reads; this object owns it, so writing is fine.
  float* data = const_cast<float*>(slotOf(stateOf(which), slot).data());
  const float* from = values;
  int64_t n = which == SaeParam::DecoderWeights ? m_ * d_ : which == SaeParam::EncoderBias ? m_ : d_;
  if (which == SaeParam::EncoderWeights) {
    n = m_ * d_;
    hostScratch_.resize(static_cast<size_t>(n));
    for (int64_t j = 0; j < m_; ++j)
      for (int64_t i = 0; i < d_; ++i) hostScratch_[j * d_ + i] = values[i * m_ + j];
    from = hostScratch_.data();
  }
  SAEKIT_CUDA_CHECK(
      cudaMemcpyAsync(data, from, static_cast<size_t>(n) * sizeof(float), cudaMemcpyHostToDevice, stream_));
  synchronize();
}

void CudaSae::lastFired(int64_t* out) const {
  DeviceScope scope(device_);
  download(out, lastFired_.data(), static_cast<size_t>(m_));
}

void CudaSae::setFiringState(int64_t samplesSeen, const int64_t* lastFired) {
  DeviceScope scope(device_);
  samplesSeen_ = samplesSeen;
  SAEKIT_CUDA_CHECK(cudaMemcpyAsync(lastFired_.data(), lastFired,
                                    static_cast<size_t>(m_) * sizeof(int64_t), cudaMemcpyHostToDevice, stream_));
  synchronize();
}

}  // namespace
}  // namespace cuda

std::unique_ptr<SaeBackend> createCudaSae(const SaeConfig& config) {
  cuda::requireCuda("a SparseAutoencoder", config.cudaDevice);
  return std::make_unique<cuda::CudaSae>(config);
}

}  // namespace saekit
