// The fused CPU training step. With batch B, input size d, m features and L0 active units per
// row, only the encoder product is dense (2 B d m flops); everything after the ReLU runs over
// the active units alone (about 8 B L0 d flops), and the gradients, the decoder projection,
// Adam and the renormalisation are applied feature by feature while each row is in cache.
//
// Parameters are stored feature-major: row j of `decoder_` is W_dec[j, :] and row j of
// `encoder_` is W_enc[:, j], so every per-feature operation reads and writes contiguous rows.
//
// Every reduction is split into fixed-size chunks whose partial results are combined in
// chunk order, so results are bit-identical whatever the thread count.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../core/ceil_div.h"
#include "../core/checks.h"
#include "../core/error.h"
#include "../core/memory.h"
#include "../core/sae.h"
#include "../core/sae_guard.h"
#include "../core/sae_resample.h"
#include "../core/thread_pool.h"
#include "activation.h"
#include "gemm.h"
#include "kernels.h"
#include "model_support.h"

namespace saekit {

size_t saeStateBytes(const SaeConfig& config) {
  // Parameters, Adam's two moments, and the packed copy of the encoder the matrix product
  // reads: saturating, since dIn * dHidden may overflow for absurd requests.
  const long double weights = static_cast<long double>(config.dIn) * config.dHidden;
  const long double floats =
      weights * (config.tied ? 4 : 7) + 3.0L * (config.dIn + config.dHidden);
  const long double bytes = floats * sizeof(float);
  if (bytes >= static_cast<long double>(std::numeric_limits<size_t>::max() / 2)) {
    return std::numeric_limits<size_t>::max() / 2;
  }
  return static_cast<size_t>(bytes);
}

namespace cpu {
namespace {

constexpr int64_t kRowChunk = 16;      // rows per task in the per-row phase
constexpr int64_t kFeatureChunk = 32;  // features per task in the per-feature phase



struct AdamState {
  Buffer<float> value, m, v;  // the parameter and Adam's first and second moments
  void allocate(size_t n) {
    value.resize(n);
    m.resize(n);
    v.resize(n);
    m.zero();
    v.zero();
  }
  size_t bytes() const { return value.bytes() + m.bytes() + v.bytes(); }
};

class CpuSae final : public SaeBackend {
 public:
  explicit CpuSae(const SaeConfig& config);

  const SaeConfig& config() const override { return config_; }
  const char* device() const override { return "cpu"; }
  int64_t stepsTaken() const override { return steps_; }
  size_t bytesHeld() const override;

  StepStats trainStep(const float* x, int64_t rows, const StepOverrides& overrides, const BatchStaging&) override;
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
  void lastFired(int64_t* out) const override {
    std::memcpy(out, lastFired_.data(), static_cast<size_t>(m_) * sizeof(int64_t));
  }
  void setFiringState(int64_t samplesSeen, const int64_t* lastFired) override {
    samplesSeen_ = samplesSeen;
    std::memcpy(lastFired_.data(), lastFired, static_cast<size_t>(m_) * sizeof(int64_t));
  }
  int64_t resample(const int32_t* features, int64_t count, const float* x, int64_t rows, uint64_t seed) override;

 private:
  // Active units of each row block, filled by the encoder's epilogue.
  struct BlockCodes {
    Buffer<int32_t> indices;
    Buffer<float> values;
    Buffer<int64_t> rowEnd;  // end offset of each row of the block
  };

  const AdamState& stateOf(SaeParam which) const;
  const float* encoderRows() const { return config_.tied ? decoder_.value.data() : encoder_.value.data(); }
  // What the encoder subtracts from its input: b_dec, or nothing.
  const float* inputShift() const { return config_.applyBDecToInput ? decoderBias_.value.data() : nullptr; }
  void checkFinite(const float* x, int64_t count, int64_t cols, const char* name);
  // Encoder product, bias, activation and extraction of the active units into csr*_. In
  // training BatchTopK selects over the batch; at inference it applies its threshold.
  void encodeToCsr(const float* x, int64_t rows, bool training);
  void packEncoder() {
    if (packedCurrent_) return;
    packB(kernels_, pool_, encoderRows(), d_, Layout::RowsAreColumnsOfC, m_, d_, packed_);
    packedCurrent_ = true;
  }
  // BatchTopK: keeps the k * rows largest active units of the batch and tracks the threshold.
  void keepBatchTopK(int64_t rows);
  // AuxK: a row block's units among dead features (epilogue), then their place after the
  // main units in csr*_ (auxRowStart_ gives each row's range).
  void extractAux(BlockCodes& codes, const float* c, int64_t ldc, int64_t blockRows, int thread);
  void appendAuxCodes(int64_t blockCount, int64_t blockSize, int64_t rows);
  // Throws NON_FINITE, before any parameter changes, if this step's gradients or update could
  // overflow float: every gradient entry is a sum of products of the quantities bounded below,
  // so bounding them bounds it (and its square, which Adam's second moment takes).
  void guardAgainstOverflow(const float* x, int64_t rows, int64_t nnz, int64_t total, const Buffer<double>& squared,
                            const Buffer<double>& l1Sums, float l1, float lr);
  // An upper bound of |every parameter|, rescanned when stale (after external writes).
  float parameterBound();
  // AuxK's loss term; fills csrGrad_ for its units and auxGrad_. Needs the row phase's
  // outputGrad_, rowSquaredError_ and row-chunk partials.
  double auxiliaryLoss(int64_t rows, int64_t rowChunks);
  // Shared by trainStep and gradients: forward, backward, and (when `out` is null) the update.
  StepStats step(const float* x, int64_t rows, SaeGradients* out, const StepOverrides& overrides);
  void decodeRows(const int64_t* rowStart, const int32_t* indices, const float* values,
                  int64_t rows, float* out);

  SaeConfig config_;
  int64_t d_;
  int64_t m_;
  ThreadPool pool_;
  const Kernels& kernels_;
  AdamState decoder_;  // [m, d]
  AdamState encoder_;  // [m, d], untied only
  AdamState encoderBias_;  // [m]
  AdamState decoderBias_;  // [d]
  int64_t steps_ = 0;
  float parameterBound_ = -1.0f;  // < 0: unknown, rescan
  // packed_ holds the encoder rows as they are: training repacks each row as Adam updates it,
  // so only writes from outside (setParameter, resample) make the next product pack them all.
  bool packedCurrent_ = false;
  float threshold_ = -1.0f;     // BatchTopK inference threshold
  // BatchTopK in training: extraction keeps only values above this (half the smallest value
  // the last step kept), so a batch with half its units positive is not extracted in full;
  // encodeToCsr falls back to every positive value when that leaves too few. 0: no prefilter.
  float batchPrefilter_ = 0.0f;
  float pendingBatchMinimum_ = -1.0f;  // this step's contribution to it, applied with the update
  int64_t samplesSeen_ = 0;
  Buffer<int64_t> lastFired_;   // [m]: samplesSeen_ when each feature last fired, -1 never

  PackedB packed_;
  std::vector<TopkScratch> topkScratch_;  // per thread
  Buffer<float> selectScratch_;
  GemmScratch gemmScratch_;
  std::vector<BlockCodes> blocks_;
  std::vector<BlockCodes> auxBlocks_;    // AuxK's units among dead features, per row block
  std::vector<int32_t> deadFeatures_;    // for AuxK, found at the start of each training step
  Buffer<float> deadPre_;                // per thread: a row's pre-activations of dead features
  Buffer<float> deadBias_;               // b_enc of the dead features
  Buffer<int64_t> auxRowStart_;          // [rows + 1]; AuxK's units follow the main ones in csr*_
  Buffer<float> auxGrad_;                // [rows, d]: dLoss/d(AuxK's reconstruction)
  Buffer<double> rowAuxError_;
  Buffer<int64_t> csrRowStart_;  // [rows + 1]
  Buffer<int32_t> csrIndices_;
  Buffer<float> csrValues_;
  Buffer<float> csrGrad_;  // dLoss/dpre at each active unit
  Buffer<int64_t> cscStart_;  // [m + 1]
  Buffer<int64_t> cscFill_;
  Buffer<int64_t> cscEntry_;  // position in the CSR arrays, grouped by feature
  Buffer<int32_t> cscRow_;
  Buffer<float> outputGrad_;  // [rows, d]: dLoss/dxhat
  Buffer<double> rowSquaredError_;
  Buffer<double> rowL1_;
  Buffer<float> partials_;    // per-chunk partial gradients of b_dec
  Buffer<float> featureRows_;  // per thread: two rows of d
  Buffer<float> biasGrad_;     // [m] gradient of b_enc
  Buffer<float> decoderBiasGrad_;
};

CpuSae::CpuSae(const SaeConfig& config)
    : config_(config),
      d_(config.dIn),
      m_(config.dHidden),
      pool_(config.threads),
      kernels_(requireKernels(config.cpuKernels)) {
  checkMemory(saeStateBytes(config), "A SparseAutoencoder with dIn " + std::to_string(d_) +
                                         " and dHidden " + std::to_string(m_) +
                                         " (parameters and optimizer state)");
  const size_t weights = static_cast<size_t>(d_ * m_);
  decoder_.allocate(weights);
  if (!config_.tied) encoder_.allocate(weights);
  encoderBias_.allocate(static_cast<size_t>(m_));
  decoderBias_.allocate(static_cast<size_t>(d_));
  encoderBias_.value.zero();
  decoderBias_.value.zero();
  lastFired_.resize(static_cast<size_t>(m_));
  for (int64_t j = 0; j < m_; ++j) lastFired_[j] = -1;
  if ((config_.activation == Activation::TopK || config_.activation == Activation::BatchTopK) && config_.k < 1) {
    throwRangeError("TopK and BatchTopK need k >= 1");
  }

  // Decoder rows: standard normal directions, normalised, the same whatever the thread count.
  // The encoder starts as the decoder's transpose.
  randomUnitRows(pool_, decoder_.value.data(), m_, d_, config_.seed);
  if (!config_.tied) std::memcpy(encoder_.value.data(), decoder_.value.data(), weights * sizeof(float));
}

size_t CpuSae::bytesHeld() const {
  size_t total = decoder_.bytes() + encoder_.bytes() + encoderBias_.bytes() +
                 decoderBias_.bytes() + packed_.data.bytes() + gemmScratch_.bytes();
  for (const auto& block : blocks_) {
    total += block.indices.bytes() + block.values.bytes() + block.rowEnd.bytes();
  }
  total += lastFired_.bytes() + selectScratch_.bytes();
  for (const auto& scratch : topkScratch_) total += scratch.bytes();
  total += csrRowStart_.bytes() + csrIndices_.bytes() + csrValues_.bytes() + csrGrad_.bytes() +
           cscStart_.bytes() + cscFill_.bytes() + cscEntry_.bytes() + cscRow_.bytes() +
           outputGrad_.bytes() + rowSquaredError_.bytes() + rowL1_.bytes() + partials_.bytes() +
           featureRows_.bytes() + biasGrad_.bytes() + decoderBiasGrad_.bytes();
  return total;
}

void CpuSae::checkFinite(const float* x, int64_t count, int64_t cols, const char* name) {
  checkFiniteParallel(pool_, kernels_, x, count, cols, name);
}

void CpuSae::encodeToCsr(const float* x, int64_t rows, bool training) {
  packEncoder();
  const RowBlocking blocking = chooseRowBlocking(rows, pool_.size(), kernels_.mr);
  if (blocks_.size() < static_cast<size_t>(blocking.count)) blocks_.resize(blocking.count);
  if (topkScratch_.size() < static_cast<size_t>(pool_.size())) topkScratch_.resize(pool_.size());
  const bool topk = config_.activation == Activation::TopK;
  const float* bias = encoderBias_.value.data();
  // What extraction keeps values above: BatchTopK's threshold at inference, its prefilter in
  // training, else the ReLU's 0.
  const bool batchTopK = config_.activation == Activation::BatchTopK;
  const float above = !batchTopK ? 0.0f : training ? batchPrefilter_ : std::max(threshold_, 0.0f);
  const bool aux = training && !deadFeatures_.empty();
  const int64_t deadCount = static_cast<int64_t>(deadFeatures_.size());
  if (aux) {
    if (auxBlocks_.size() < static_cast<size_t>(blocking.count)) auxBlocks_.resize(blocking.count);
    deadPre_.resize(static_cast<size_t>(pool_.size() * deadCount));
    deadBias_.resize(static_cast<size_t>(deadCount));
    for (int64_t i = 0; i < deadCount; ++i) deadBias_[i] = bias[deadFeatures_[i]];
  }
  gemm(kernels_, pool_, gemmScratch_, OperandA{x, d_, false, inputShift()}, rows, packed_, nullptr, 0,
       blocking, [&](int thread, int64_t block, int64_t, int64_t blockRows, float* c, int64_t ldc) {
         BlockCodes& codes = blocks_[block];
         codes.rowEnd.resize(static_cast<size_t>(blockRows));
         codes.indices.clear();
         codes.values.clear();
         int64_t count = 0;
         for (int64_t r = 0; r < blockRows; ++r) {
           // Room for a full row; resize (not reserve) keeps what earlier rows wrote.
           codes.indices.resize(static_cast<size_t>(count + m_));
           codes.values.resize(static_cast<size_t>(count + m_));
           int32_t* indices = codes.indices.data() + count;
           float* values = codes.values.data() + count;
           const int64_t found = topk ? topkExtract(kernels_, c + r * ldc, bias, m_, config_.k, indices, values, topkScratch_[thread])
                                      : kernels_.extractAbove(c + r * ldc, bias, m_, above, indices, values);
           count += found;
           codes.rowEnd[r] = count;
         }
         codes.indices.resize(static_cast<size_t>(count));
         codes.values.resize(static_cast<size_t>(count));
         if (aux) extractAux(auxBlocks_[block], c, ldc, blockRows, thread);
       });

  // Concatenate the blocks into one CSR.
  csrRowStart_.resize(static_cast<size_t>(rows + 1));
  std::vector<int64_t> blockStart(static_cast<size_t>(blocking.count) + 1, 0);
  for (int64_t b = 0; b < blocking.count; ++b) {
    const BlockCodes& codes = blocks_[b];
    const int64_t row0 = b * blocking.size;
    for (int64_t r = 0; r < static_cast<int64_t>(codes.rowEnd.size()); ++r) {
      csrRowStart_[row0 + r + 1] = blockStart[b] + codes.rowEnd[r];
    }
    blockStart[b + 1] = blockStart[b] + static_cast<int64_t>(codes.indices.size());
  }
  csrRowStart_[0] = 0;
  const int64_t nnz = blockStart[blocking.count];
  csrIndices_.resize(static_cast<size_t>(nnz));
  csrValues_.resize(static_cast<size_t>(nnz));
  pool_.run(static_cast<size_t>(blocking.count), [&](size_t b, int) {
    const BlockCodes& codes = blocks_[b];
    const size_t n = codes.indices.size();
    if (n == 0) return;
    std::memcpy(csrIndices_.data() + blockStart[b], codes.indices.data(), n * sizeof(int32_t));
    std::memcpy(csrValues_.data() + blockStart[b], codes.values.data(), n * sizeof(float));
  });
  if (batchTopK && training) {
    // With at least k * rows values above the prefilter, the batch's k * rows largest are all
    // among them (and ties keep their order), so the selection is the one every positive
    // value would give; with fewer, extract again without it.
    if (above > 0.0f && nnz < config_.k * rows) {
      batchPrefilter_ = 0.0f;
      encodeToCsr(x, rows, training);
      return;
    }
    keepBatchTopK(rows);
  }
  appendAuxCodes(aux ? blocking.count : 0, blocking.size, rows);
}

void CpuSae::extractAux(BlockCodes& codes, const float* c, int64_t ldc, int64_t blockRows, int thread) {
  // The top auxK of ReLU(pre) among dead features, as indices into deadFeatures_ (ascending,
  // so the global indices come out ascending too).
  const int64_t deadCount = static_cast<int64_t>(deadFeatures_.size());
  float* pre = deadPre_.data() + static_cast<int64_t>(thread) * deadCount;
  codes.rowEnd.resize(static_cast<size_t>(blockRows));
  codes.indices.clear();
  codes.values.clear();
  int64_t count = 0;
  for (int64_t r = 0; r < blockRows; ++r) {
    for (int64_t i = 0; i < deadCount; ++i) pre[i] = c[r * ldc + deadFeatures_[i]];
    codes.indices.resize(static_cast<size_t>(count + deadCount));
    codes.values.resize(static_cast<size_t>(count + deadCount));
    int32_t* indices = codes.indices.data() + count;
    const int64_t found = topkExtract(kernels_, pre, deadBias_.data(), deadCount, config_.auxK, indices, codes.values.data() + count,
                                      topkScratch_[thread]);
    for (int64_t e = 0; e < found; ++e) indices[e] = deadFeatures_[indices[e]];
    count += found;
    codes.rowEnd[r] = count;
  }
  codes.indices.resize(static_cast<size_t>(count));
  codes.values.resize(static_cast<size_t>(count));
}

void CpuSae::appendAuxCodes(int64_t blockCount, int64_t blockSize, int64_t rows) {
  const int64_t nnz = csrRowStart_[rows];
  auxRowStart_.resize(static_cast<size_t>(rows + 1));
  auxRowStart_[0] = nnz;
  int64_t total = 0;
  for (int64_t b = 0; b < blockCount; ++b) total += static_cast<int64_t>(auxBlocks_[b].indices.size());
  if (blockCount == 0) {
    for (int64_t r = 0; r < rows; ++r) auxRowStart_[r + 1] = nnz;
    return;
  }
  csrIndices_.resize(static_cast<size_t>(nnz + total));
  csrValues_.resize(static_cast<size_t>(nnz + total));
  int64_t at = nnz;
  for (int64_t b = 0; b < blockCount; ++b) {
    const BlockCodes& codes = auxBlocks_[b];
    const int64_t row0 = b * blockSize;
    const size_t n = codes.indices.size();
    if (n > 0) {
      std::memcpy(csrIndices_.data() + at, codes.indices.data(), n * sizeof(int32_t));
      std::memcpy(csrValues_.data() + at, codes.values.data(), n * sizeof(float));
    }
    for (int64_t r = 0; r < static_cast<int64_t>(codes.rowEnd.size()); ++r) auxRowStart_[row0 + r + 1] = at + codes.rowEnd[r];
    at += static_cast<int64_t>(n);
  }
}

void CpuSae::keepBatchTopK(int64_t rows) {
  const int64_t candidates = csrRowStart_[rows];
  const float smallestKept =
      keepLargest(csrIndices_.data(), csrValues_.data(), csrRowStart_.data() + 1, rows, config_.k * rows, selectScratch_);
  batchPrefilter_ = candidates > config_.k * rows ? 0.5f * smallestKept : 0.0f;
  // The inference threshold follows dictionary_learning's trainers/batch_top_k.py: an EMA of
  // the mean over rows of each row's smallest kept activation, from thresholdStartStep on.
  pendingBatchMinimum_ = -1.0f;
  if (steps_ < config_.thresholdStartStep) return;
  double sum = 0.0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (csrRowStart_[r + 1] == csrRowStart_[r]) continue;
    float smallest = csrValues_[csrRowStart_[r]];
    for (int64_t e = csrRowStart_[r]; e < csrRowStart_[r + 1]; ++e) smallest = std::min(smallest, csrValues_[e]);
    sum += smallest;
    ++counted;
  }
  if (counted == 0) return;
  // Applied with the update, so that a step that fails leaves the threshold as it was.
  pendingBatchMinimum_ = static_cast<float>(sum / counted);
}

void CpuSae::decodeRows(const int64_t* rowStart, const int32_t* indices, const float* values,
                        int64_t rows, float* out) {
  const float* dec = decoder_.value.data();
  const float* bDec = decoderBias_.value.data();
  pool_.run(static_cast<size_t>(ceilDiv(rows, kRowChunk)), [&](size_t task, int) {
    const int64_t r1 = std::min(rows, static_cast<int64_t>(task + 1) * kRowChunk);
    for (int64_t r = static_cast<int64_t>(task) * kRowChunk; r < r1; ++r) {
      // The sum over the row's units in registers, four decoder rows at a time (a row of
      // axpys would load and store the output once per unit), then b_dec.
      float* row = out + r * d_;
      kernels_.combineRows(dec, d_, indices + rowStart[r], values + rowStart[r], rowStart[r + 1] - rowStart[r], row, d_);
      kernels_.axpy(1.0f, bDec, row, d_);
    }
  });
}

StepStats CpuSae::step(const float* x, int64_t rows, SaeGradients* out, const StepOverrides& overrides) {
  if (rows < 1) throwRangeError("Expected at least one row in the batch");
  checkFinite(x, rows * d_, d_, "batch.data");
  deadFeatures_.clear();
  if (config_.auxK > 0) {
    for (int64_t j = 0; j < m_; ++j) {
      const int64_t silent = lastFired_[j] < 0 ? samplesSeen_ : samplesSeen_ - lastFired_[j];
      if (silent >= config_.auxKWindow) deadFeatures_.push_back(static_cast<int32_t>(j));
    }
  }
  encodeToCsr(x, rows, true);
  const int64_t nnz = csrRowStart_[rows];
  const int64_t total = auxRowStart_[rows];  // main units, then AuxK's
  const float* dec = decoder_.value.data();
  const float* enc = encoderRows();
  const float* bDec = decoderBias_.value.data();
  const float l1 = overrides.l1Coeff >= 0.0f ? overrides.l1Coeff : config_.l1Coeff;
  const float lr = overrides.lr >= 0.0f ? overrides.lr : config_.lr;
  const float gradScale = 2.0f / static_cast<float>(rows);
  const float l1Grad = l1 / static_cast<float>(rows);

  // Per row: decode, the error, dLoss/dxhat, and dLoss/dpre at the active units.
  const int64_t rowChunks = ceilDiv(rows, kRowChunk);
  const int64_t featureChunks = ceilDiv(m_, kFeatureChunk);
  outputGrad_.resize(static_cast<size_t>(rows * d_));
  csrGrad_.resize(static_cast<size_t>(total));
  rowSquaredError_.resize(static_cast<size_t>(rows));
  rowL1_.resize(static_cast<size_t>(rows));
  partials_.resize(static_cast<size_t>((rowChunks + featureChunks) * d_));
  partials_.zero();
  decodeRows(csrRowStart_.data(), csrIndices_.data(), csrValues_.data(), rows, outputGrad_.data());
  pool_.run(static_cast<size_t>(rowChunks), [&](size_t task, int) {
    float* partial = partials_.data() + task * d_;
    const int64_t r1 = std::min(rows, static_cast<int64_t>(task + 1) * kRowChunk);
    for (int64_t r = static_cast<int64_t>(task) * kRowChunk; r < r1; ++r) {
      float* g = outputGrad_.data() + r * d_;
      const float* xr = x + r * d_;
      double squared = 0.0;
      for (int64_t i = 0; i < d_; ++i) {
        const float err = g[i] - xr[i];
        squared += static_cast<double>(err) * err;
        g[i] = gradScale * err;
      }
      double rowL1 = 0.0;
      for (int64_t e = csrRowStart_[r]; e < csrRowStart_[r + 1]; ++e) {
        rowL1 += csrValues_[e];
        csrGrad_[e] = kernels_.dot(g, dec + static_cast<int64_t>(csrIndices_[e]) * d_, d_) + l1Grad;
      }
      rowSquaredError_[r] = squared;
      rowL1_[r] = rowL1;
      kernels_.axpy(1.0f, g, partial, d_);
    }
  });
  const double auxLoss = total > nnz ? auxiliaryLoss(rows, rowChunks) : 0.0;

  if (out == nullptr) guardAgainstOverflow(x, rows, nnz, total, rowSquaredError_, rowL1_, l1, lr);

  // Group the active units by feature (counting sort, rows stay in order within a feature).
  cscStart_.resize(static_cast<size_t>(m_ + 1));
  cscFill_.resize(static_cast<size_t>(m_));
  cscEntry_.resize(static_cast<size_t>(total));
  cscRow_.resize(static_cast<size_t>(total));
  cscStart_.zero();
  for (int64_t e = 0; e < total; ++e) ++cscStart_[csrIndices_[e] + 1];
  for (int64_t j = 0; j < m_; ++j) {
    cscStart_[j + 1] += cscStart_[j];
    cscFill_[j] = cscStart_[j];
  }
  for (const int64_t* rowStart : {csrRowStart_.data(), auxRowStart_.data()}) {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t e = rowStart[r]; e < rowStart[r + 1]; ++e) {
        const int64_t slot = cscFill_[csrIndices_[e]]++;
        cscEntry_[slot] = e;
        cscRow_[slot] = static_cast<int32_t>(r);
      }
    }
  }

  // Per feature: gradients of its decoder row, encoder row and bias; then (training) the
  // projection, Adam and renormalisation, while the rows are in cache.
  const bool update = out == nullptr;
  const int64_t t = steps_ + 1;
  const double bc1 = 1.0 - std::pow(static_cast<double>(config_.beta1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(config_.beta2), static_cast<double>(t));
  const AdamStep adamStep{config_.beta1, config_.beta2, config_.eps,
                          static_cast<float>(lr / bc1),
                          static_cast<float>(std::sqrt(bc2))};
  // Per thread: the feature's two gradient rows, a row for AuxK's part, and its units'
  // activations and gradients (a feature has at most one main and one AuxK unit per row).
  const int64_t perThread = 3 * d_ + 4 * rows;
  featureRows_.resize(static_cast<size_t>(pool_.size() * perThread));
  biasGrad_.resize(static_cast<size_t>(m_));
  if (out != nullptr) {
    out->decoderWeights.resize(static_cast<size_t>(m_ * d_));
    out->encoderWeights.resize(config_.tied ? 0 : static_cast<size_t>(m_ * d_));
  }
  pool_.run(static_cast<size_t>(featureChunks), [&](size_t task, int thread) {
    float* gDec = featureRows_.data() + static_cast<int64_t>(thread) * perThread;
    float* gEnc = gDec + d_;
    float* auxPart = gEnc + d_;
    float* unitValues = auxPart + d_;
    float* unitGrads = unitValues + 2 * rows;
    float* partial = partials_.data() + (rowChunks + static_cast<int64_t>(task)) * d_;
    const int64_t j1 = std::min(m_, static_cast<int64_t>(task + 1) * kFeatureChunk);
    for (int64_t j = static_cast<int64_t>(task) * kFeatureChunk; j < j1; ++j) {
      // Sums over the feature's units (rows in order; its main units come before its AuxK
      // ones), four rows per pass in registers: decoder row += activation * dLoss/dxhat of the
      // unit's row (AuxK's for its units), encoder row += dLoss/dpre * x.
      const int64_t first = cscStart_[j];
      const int64_t count = cscStart_[j + 1] - first;
      const int32_t* unitRows = cscRow_.data() + first;
      float gBias = 0.0f;
      int64_t mainUnits = 0;
      for (int64_t u = 0; u < count; ++u) {
        const int64_t e = cscEntry_[first + u];
        mainUnits += e < nnz;
        unitValues[u] = csrValues_[e];
        unitGrads[u] = csrGrad_[e];
        gBias += csrGrad_[e];
      }
      kernels_.combineRows(outputGrad_.data(), d_, unitRows, unitValues, mainUnits, gDec, d_);
      if (count > mainUnits) {
        kernels_.combineRows(auxGrad_.data(), d_, unitRows + mainUnits, unitValues + mainUnits, count - mainUnits,
                             auxPart, d_);
        kernels_.axpy(1.0f, auxPart, gDec, d_);
      }
      kernels_.combineRows(x, d_, unitRows, unitGrads, count, gEnc, d_);
      // The encoder saw x - b_dec: that shifts its gradient and feeds b_dec's.
      const float* encRow = enc + j * d_;
      if (gBias != 0.0f && config_.applyBDecToInput) {
        kernels_.axpy(-gBias, bDec, gEnc, d_);
        kernels_.axpy(-gBias, encRow, partial, d_);
      }
      if (config_.tied) kernels_.axpy(1.0f, gEnc, gDec, d_);
      biasGrad_[j] = gBias;

      if (!update) {
        std::memcpy(out->decoderWeights.data() + j * d_, gDec, static_cast<size_t>(d_) * sizeof(float));
        if (!config_.tied) {
          std::memcpy(out->encoderWeights.data() + j * d_, gEnc, static_cast<size_t>(d_) * sizeof(float));
        }
        continue;
      }
      float* decRow = decoder_.value.data() + j * d_;
      const float rowNorm2 = kernels_.dot(decRow, decRow, d_);
      if (rowNorm2 > 0.0f) {
        kernels_.axpy(-kernels_.dot(gDec, decRow, d_) / rowNorm2, decRow, gDec, d_);
      }
      kernels_.adam(decRow, decoder_.m.data() + j * d_, decoder_.v.data() + j * d_, gDec, d_,
                    adamStep);
      const float newNorm2 = kernels_.dot(decRow, decRow, d_);
      if (newNorm2 > 0.0f) {
        const float inv = 1.0f / std::sqrt(newNorm2);
        for (int64_t i = 0; i < d_; ++i) decRow[i] *= inv;
      }
      if (!config_.tied) {
        kernels_.adam(encoder_.value.data() + j * d_, encoder_.m.data() + j * d_,
                      encoder_.v.data() + j * d_, gEnc, d_, adamStep);
      }
      // Each thread writes only its features' columns of packed_.
      packRow(packed_, j, enc + j * d_);
    }
  });

  decoderBiasGrad_.resize(static_cast<size_t>(d_));
  decoderBiasGrad_.zero();
  for (int64_t c = 0; c < rowChunks + featureChunks; ++c) {
    kernels_.axpy(1.0f, partials_.data() + c * d_, decoderBiasGrad_.data(), d_);
  }

  if (update) {
    kernels_.adam(encoderBias_.value.data(), encoderBias_.m.data(), encoderBias_.v.data(),
                  biasGrad_.data(), m_, adamStep);
    kernels_.adam(decoderBias_.value.data(), decoderBias_.m.data(), decoderBias_.v.data(),
                  decoderBiasGrad_.data(), d_, adamStep);
    steps_ = t;
    if (pendingBatchMinimum_ >= 0.0f) {
      threshold_ = threshold_ < 0.0f ? pendingBatchMinimum_
                                     : config_.thresholdBeta * threshold_ + (1.0f - config_.thresholdBeta) * pendingBatchMinimum_;
      pendingBatchMinimum_ = -1.0f;
    }
    // Dead-feature tracking: a feature fired in this batch if it has an active unit (AuxK's
    // units do not count: they are how dead features are reached, not activity).
    samplesSeen_ += rows;
    for (int64_t e = 0; e < nnz; ++e) lastFired_[csrIndices_[e]] = samplesSeen_;
  } else {
    out->encoderBias.resize(static_cast<size_t>(m_));
    std::memcpy(out->encoderBias.data(), biasGrad_.data(), static_cast<size_t>(m_) * sizeof(float));
    out->decoderBias.resize(static_cast<size_t>(d_));
    std::memcpy(out->decoderBias.data(), decoderBiasGrad_.data(), static_cast<size_t>(d_) * sizeof(float));
    if (!config_.tied) {
      // Feature-major rows to the public [dIn, dHidden] layout.
      Buffer<float> transposed(static_cast<size_t>(m_ * d_));
      for (int64_t j = 0; j < m_; ++j)
        for (int64_t i = 0; i < d_; ++i) transposed[i * m_ + j] = out->encoderWeights[j * d_ + i];
      out->encoderWeights = std::move(transposed);
    }
  }

  StepStats stats;
  double squared = 0.0, l1Sum = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    squared += rowSquaredError_[r];
    l1Sum += rowL1_[r];
  }
  stats.mse = squared / static_cast<double>(rows * d_);
  stats.l1 = l1Sum / static_cast<double>(rows);
  stats.l0 = static_cast<double>(nnz) / static_cast<double>(rows);
  stats.auxLoss = auxLoss;
  stats.loss = (squared + static_cast<double>(l1) * l1Sum) / static_cast<double>(rows) + auxLoss;
  return stats;
}

float CpuSae::parameterBound() {
  if (parameterBound_ >= 0.0f) return parameterBound_;
  float bound = 0.0f;
  const auto scan = [&bound](const Buffer<float>& values) {
    for (size_t i = 0; i < values.size(); ++i) bound = std::max(bound, std::fabs(values[i]));
  };
  scan(decoder_.value);
  scan(encoder_.value);
  scan(encoderBias_.value);
  scan(decoderBias_.value);
  parameterBound_ = bound;
  return bound;
}

void CpuSae::guardAgainstOverflow(const float* x, int64_t rows, int64_t nnz, int64_t total, const Buffer<double>& squared,
                                  const Buffer<double>& l1Sums, float l1, float lr) {
  const auto maxAbs = [](const float* v, int64_t n) {
    float best = 0.0f;
    for (int64_t i = 0; i < n; ++i) best = std::max(best, std::fabs(v[i]));
    return static_cast<double>(best);
  };
  double loss = 0.0;
  for (int64_t r = 0; r < rows; ++r) loss += squared[r] + static_cast<double>(l1) * l1Sums[r];
  const double b = static_cast<double>(rows);
  const double maxG = std::max(maxAbs(outputGrad_.data(), rows * d_), total > nnz ? maxAbs(auxGrad_.data(), rows * d_) : 0.0);
  const double maxH = maxAbs(csrValues_.data(), total);
  const double maxDpre = maxAbs(csrGrad_.data(), total);
  const double maxX = maxAbs(x, rows * d_);
  const double maxP = parameterBound();
  const double encoderGrad = b * maxDpre * (maxX + maxP);
  const double decoderGrad = b * maxH * maxG + (config_.tied ? encoderGrad : 0.0);
  const double decoderBiasGrad = b * maxG + static_cast<double>(m_) * b * maxDpre * maxP;
  const double adamStep = adamStepBound(config_, lr, steps_ + 1);
  const bool finite = std::isfinite(loss) && std::isfinite(maxG) && std::isfinite(maxDpre) && std::isfinite(maxH);
  if (finite && encoderGrad < kGradientLimit && decoderGrad < kGradientLimit && decoderBiasGrad < kGradientLimit &&
      maxP + adamStep < kParameterLimit) {
    parameterBound_ = static_cast<float>(maxP + adamStep);  // still a bound after this step's update
    return;
  }
  throwStepOverflow(steps_, "loss " + describeMagnitude(loss / b) + ", largest |dLoss/dxhat| " + describeMagnitude(maxG) +
                                ", largest code " + describeMagnitude(maxH) + ", largest parameter " + describeMagnitude(maxP));
}

double CpuSae::auxiliaryLoss(int64_t rows, int64_t rowChunks) {
  // The residual e = x - xhat = -(rows / 2) g per row. Its variance over the batch, summed
  // over coordinates: mean ||e||^2 - ||mean e||^2, with mean e = -(1/2) sum of g.
  const int64_t nnz = csrRowStart_[rows];
  double meanNorm2 = 0.0;
  for (int64_t i = 0; i < d_; ++i) {
    double sum = 0.0;
    for (int64_t c = 0; c < rowChunks; ++c) sum += partials_[c * d_ + i];
    meanNorm2 += (0.5 * sum) * (0.5 * sum);
  }
  double squared = 0.0;
  for (int64_t r = 0; r < rows; ++r) squared += rowSquaredError_[r];
  const double variance = squared / static_cast<double>(rows) - meanNorm2;
  auxGrad_.resize(static_cast<size_t>(rows * d_));
  if (!(variance > 0.0)) {
    // No spread in the residual: the normalised loss is undefined, and taken as 0 (as
    // dictionary_learning's nan_to_num does), with no gradient.
    auxGrad_.zero();
    for (int64_t e = nnz; e < auxRowStart_[rows]; ++e) csrGrad_[e] = 0.0f;
    return 0.0;
  }
  const float* dec = decoder_.value.data();
  const float errScale = static_cast<float>(rows) / 2.0f;
  const float gradScale = static_cast<float>(2.0 * config_.auxKCoeff / (static_cast<double>(rows) * variance));
  rowAuxError_.resize(static_cast<size_t>(rows));
  pool_.run(static_cast<size_t>(rowChunks), [&](size_t task, int) {
    const int64_t r1 = std::min(rows, static_cast<int64_t>(task + 1) * kRowChunk);
    for (int64_t r = static_cast<int64_t>(task) * kRowChunk; r < r1; ++r) {
      float* a = auxGrad_.data() + r * d_;
      const float* g = outputGrad_.data() + r * d_;
      kernels_.combineRows(dec, d_, csrIndices_.data() + auxRowStart_[r], csrValues_.data() + auxRowStart_[r],
                           auxRowStart_[r + 1] - auxRowStart_[r], a, d_);
      // AuxK's reconstruction minus the residual it targets: ehat - e = ehat + err.
      double error = 0.0;
      for (int64_t i = 0; i < d_; ++i) {
        a[i] += errScale * g[i];
        error += static_cast<double>(a[i]) * a[i];
        a[i] *= gradScale;
      }
      rowAuxError_[r] = error;
      for (int64_t e = auxRowStart_[r]; e < auxRowStart_[r + 1]; ++e) {
        csrGrad_[e] = kernels_.dot(a, dec + static_cast<int64_t>(csrIndices_[e]) * d_, d_);
      }
    }
  });
  double error = 0.0;
  for (int64_t r = 0; r < rows; ++r) error += rowAuxError_[r];
  return config_.auxKCoeff * error / static_cast<double>(rows) / variance;
}

StepStats CpuSae::trainStep(const float* x, int64_t rows, const StepOverrides& overrides, const BatchStaging&) {
  return step(x, rows, nullptr, overrides);
}

StepStats CpuSae::gradients(const float* x, int64_t rows, SaeGradients& out) {
  return step(x, rows, &out, StepOverrides{});
}

void CpuSae::encode(const float* x, int64_t rows, float* codes) {
  checkFinite(x, rows * d_, d_, "x.data");
  if (rows == 0) return;  // empty arrays may come with null data pointers
  if (config_.activation != Activation::ReLU) {
    encodeToCsr(x, rows, false);
    std::memset(codes, 0, static_cast<size_t>(rows * m_) * sizeof(float));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t e = csrRowStart_[r]; e < csrRowStart_[r + 1]; ++e) codes[r * m_ + csrIndices_[e]] = csrValues_[e];
    }
    return;
  }
  packEncoder();
  const float* bias = encoderBias_.value.data();
  gemm(kernels_, pool_, gemmScratch_, OperandA{x, d_, false, inputShift()}, rows, packed_, codes, m_,
       chooseRowBlocking(rows, pool_.size(), kernels_.mr),
       [&](int, int64_t, int64_t, int64_t blockRows, float* c, int64_t ldc) {
         for (int64_t r = 0; r < blockRows; ++r) kernels_.reluBias(c + r * ldc, bias, m_);
       });
}

void CpuSae::encodeSparse(const float* x, int64_t rows, SparseCodes& codes) {
  checkFinite(x, rows * d_, d_, "x.data");
  encodeToCsr(x, rows, false);
  const int64_t nnz = csrRowStart_[rows];
  if (nnz > std::numeric_limits<int32_t>::max()) {
    throwRangeError("The sparse codes of " + std::to_string(rows) + " rows have " +
                    std::to_string(nnz) +
                    " active units, more than an Int32Array indptr can address; encode fewer rows at a time");
  }
  codes.rows = rows;
  codes.cols = m_;
  codes.indptr.resize(static_cast<size_t>(rows + 1));
  for (int64_t r = 0; r <= rows; ++r) codes.indptr[r] = static_cast<int32_t>(csrRowStart_[r]);
  codes.indices.resize(static_cast<size_t>(nnz));
  codes.values.resize(static_cast<size_t>(nnz));
  if (nnz > 0) {
    std::memcpy(codes.indices.data(), csrIndices_.data(), static_cast<size_t>(nnz) * sizeof(int32_t));
    std::memcpy(codes.values.data(), csrValues_.data(), static_cast<size_t>(nnz) * sizeof(float));
  }
}

void CpuSae::decode(const float* codes, int64_t rows, float* out) {
  checkFinite(codes, rows * m_, m_, "codes.data");
  // Gather each row's non-zeros: decoding is then the same sparse sum as in training.
  // Dense codes cost m*d per row either way; sparse ones (the usual case) far less.
  CodeRows sparse;
  denseToRows(codes, rows, m_, sparse);
  decodeRows(sparse.start.data(), sparse.index.data(), sparse.value.data(), rows, out);
}

void CpuSae::decodeSparse(const SparseCodesView& codes, float* out) {
  checkFinite(codes.values, codes.indptr[codes.rows], 0, "codes.values");
  Buffer<int64_t> rowStart(static_cast<size_t>(codes.rows + 1));
  for (int64_t r = 0; r <= codes.rows; ++r) rowStart[r] = codes.indptr[r];
  decodeRows(rowStart.data(), codes.indices, codes.values, codes.rows, out);
}

void CpuSae::reconstruct(const float* x, int64_t rows, float* out) {
  checkFinite(x, rows * d_, d_, "x.data");
  encodeToCsr(x, rows, false);
  decodeRows(csrRowStart_.data(), csrIndices_.data(), csrValues_.data(), rows, out);
}

int64_t CpuSae::resample(const int32_t* features, int64_t count, const float* x, int64_t rows, uint64_t seed) {
  if (count <= 0 || rows <= 0) return 0;
  checkFinite(x, rows * d_, d_, "x.data");
  checkResampleFeatures(features, count, m_);
  // Each row's squared reconstruction error decides how likely it is to be drawn.
  Buffer<float> xhat(static_cast<size_t>(rows * d_));
  encodeToCsr(x, rows, false);
  decodeRows(csrRowStart_.data(), csrIndices_.data(), csrValues_.data(), rows, xhat.data());
  const std::vector<int64_t> chosen = chooseResampleRows(x, xhat.data(), rows, d_, count, seed);
  const int64_t n = static_cast<int64_t>(chosen.size());

  const float* enc = encoderRows();
  Buffer<float> squaredNorms(static_cast<size_t>(m_));
  for (int64_t j = 0; j < m_; ++j) squaredNorms[j] = kernels_.dot(enc + j * d_, enc + j * d_, d_);
  const float encoderScale = resampleEncoderScale(squaredNorms.data(), m_, features, count);
  parameterBound_ = -1.0f;
  packedCurrent_ = false;  // the rows change below
  const size_t rowBytes = static_cast<size_t>(d_) * sizeof(float);
  int64_t done = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int32_t f = features[i];
    const float* v = x + chosen[i] * d_;
    const double norm = std::sqrt(static_cast<double>(kernels_.dot(v, v, d_)));
    if (norm == 0.0) continue;
    const float inv = static_cast<float>(1.0 / norm);
    float* dec = decoder_.value.data() + static_cast<int64_t>(f) * d_;
    for (int64_t k = 0; k < d_; ++k) dec[k] = v[k] * inv;
    std::memset(decoder_.m.data() + static_cast<int64_t>(f) * d_, 0, rowBytes);
    std::memset(decoder_.v.data() + static_cast<int64_t>(f) * d_, 0, rowBytes);
    if (!config_.tied) {
      float* e = encoder_.value.data() + static_cast<int64_t>(f) * d_;
      for (int64_t k = 0; k < d_; ++k) e[k] = v[k] * inv * encoderScale;
      std::memset(encoder_.m.data() + static_cast<int64_t>(f) * d_, 0, rowBytes);
      std::memset(encoder_.v.data() + static_cast<int64_t>(f) * d_, 0, rowBytes);
    }
    encoderBias_.value[f] = 0.0f;
    encoderBias_.m[f] = 0.0f;
    encoderBias_.v[f] = 0.0f;
    lastFired_[f] = samplesSeen_;  // a fresh start: not dead again until a full window passes
    ++done;
  }
  return done;
}

const Buffer<float>& slotOf(const AdamState& state, SaeSlot slot) {
  switch (slot) {
    case SaeSlot::AdamFirstMoment:
      return state.m;
    case SaeSlot::AdamSecondMoment:
      return state.v;
    default:
      return state.value;
  }
}

const AdamState& CpuSae::stateOf(SaeParam which) const {
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

void CpuSae::getParameter(SaeParam which, SaeSlot slot, float* out) const {
  const float* data = slotOf(stateOf(which), slot).data();
  if (which == SaeParam::EncoderWeights) {
    // Feature-major rows to the public [dIn, dHidden] layout.
    for (int64_t j = 0; j < m_; ++j)
      for (int64_t i = 0; i < d_; ++i) out[i * m_ + j] = data[j * d_ + i];
  } else {
    const int64_t n = which == SaeParam::DecoderWeights ? m_ * d_ : which == SaeParam::EncoderBias ? m_ : d_;
    std::memcpy(out, data, static_cast<size_t>(n) * sizeof(float));
  }
}

void CpuSae::setParameter(SaeParam which, SaeSlot slot, const float* values) {
  const int64_t count = which == SaeParam::EncoderWeights || which == SaeParam::DecoderWeights ? m_ * d_
                        : which == SaeParam::EncoderBias                                      ? m_
                                                                                             : d_;
  const int64_t bad = kernels_.firstNonFinite(values, count);
  if (bad < count) throwNonFinite("values", values[bad], bad, 0);
  parameterBound_ = -1.0f;
  packedCurrent_ = false;
  if (which == SaeParam::EncoderWeights && config_.tied) {
    throwError("ERR_TIED", "A tied SparseAutoencoder has no separate encoder weights; set the decoder weights");
  }
  // The same storage getParameter reads; this object owns it, so writing is fine.
  float* data = const_cast<float*>(slotOf(stateOf(which), slot).data());
  if (which == SaeParam::EncoderWeights) {
    for (int64_t j = 0; j < m_; ++j)
      for (int64_t i = 0; i < d_; ++i) data[j * d_ + i] = values[i * m_ + j];
  } else {
    const int64_t n = which == SaeParam::DecoderWeights ? m_ * d_ : which == SaeParam::EncoderBias ? m_ : d_;
    std::memcpy(data, values, static_cast<size_t>(n) * sizeof(float));
  }
}

}  // namespace
}  // namespace cpu

std::unique_ptr<SaeBackend> createCpuSae(const SaeConfig& config) {
  return std::make_unique<cpu::CpuSae>(config);
}

}  // namespace saekit
