// The runtime API calls saekit's CUDA code makes, for the GPU emulator (cuda_runtime.h): two
// emulated devices (compute capability 9.0) whose memory is host memory, and memory limits so
// that out-of-memory paths can be tested.
//
// Work runs when it is issued, except host-to-device copies on a stream: those wait, as if
// the copy engine were very slow, until something needs them done: the host synchronizing
// with the stream, an event recorded after them, or the device; another stream waiting on such
// an event; more work issued to the same stream; or a cudaFree/cudaFreeHost. A kernel that
// reads an upload its stream did not wait for therefore reads stale data, and a pinned buffer
// refilled before anything waited for its copy is copied with the new contents: both show as
// wrong results. Pageable sources are read at issue, as the runtime stages them before
// returning. (Kernels still run at launch, so a host refill missing only its event sync is
// not caught once a kernel has waited for the copy.) Device 1 is small (kDeviceBytes[1]), so that a test can
// tell which device a model's memory went to. Work issued to a stream of another device than
// the thread's current one fails: a kernel launch as on a GPU, and also a copy, a memset or
// an event record, which a GPU would let through, so that any call missing its cudaSetDevice
// is caught.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

enum cudaError_t {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorInvalidDeviceFunction = 98,
  cudaErrorNoKernelImageForDevice = 209,
};
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize, cudaFuncAttributePreferredSharedMemoryCarveout };
constexpr int cudaSharedmemCarveoutMaxShared = 100;
constexpr unsigned cudaStreamNonBlocking = 1;
constexpr unsigned cudaEventDisableTiming = 2;
constexpr unsigned cudaHostAllocDefault = 0;
struct CUstream_st {
  int device;
  std::mutex mutex;
  std::deque<std::function<void()>> waiting;  // host-to-device copies not yet carried out
  uint64_t issued = 0;                        // such copies issued so far
  uint64_t done = 0;                          // and carried out
};
struct CUevent_st {
  int device;
  CUstream_st* stream = nullptr;  // where it was last recorded
  uint64_t after = 0;             // the copies issued there before the record
};
using cudaStream_t = CUstream_st*;
using cudaEvent_t = CUevent_st*;

struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlockOptin;
  int major, minor, multiProcessorCount, maxThreadsPerBlock;
};
struct cudaFuncAttributes {
  int binaryVersion, ptxVersion, maxThreadsPerBlock, numRegs;
  size_t sharedSizeBytes;
};

namespace saekit::emulator {
constexpr int kDevices = 2;
// What each emulated device holds at most: larger allocations fail as a GPU's would.
constexpr size_t kDeviceBytes[kDevices] = {size_t{8} << 30, size_t{256} << 20};
// Kernels of different models may run on different threads (the addon's jobs).
inline std::atomic<size_t>& deviceBytesInUse(int device) {
  static std::atomic<size_t> bytes[kDevices];
  return bytes[device];
}
// As on a GPU, each host thread has its own current device, 0 until set.
inline int& currentDevice() {
  static thread_local int device = 0;
  return device;
}
// The error a bad launch leaves for cudaGetLastError, per thread as the runtime's is.
inline cudaError_t& lastError() {
  static thread_local cudaError_t error = cudaSuccess;
  return error;
}
// Work on `stream` (null: the current device's default stream) may be issued from here.
inline bool onCurrentDevice(cudaStream_t stream) { return stream == nullptr || stream->device == currentDevice(); }

// Live streams, to find them from an event and to synchronize a device. Lock order: this
// mutex, then a stream's.
inline std::mutex& streamsMutex() {
  static std::mutex mutex;
  return mutex;
}
inline std::set<cudaStream_t>& liveStreams() {
  static std::set<cudaStream_t> streams;
  return streams;
}
// Pinned host allocations (start -> bytes): copies from them are deferred whole.
inline std::mutex& pinnedMutex() {
  static std::mutex mutex;
  return mutex;
}
inline std::map<const unsigned char*, size_t>& pinnedBlocks() {
  static std::map<const unsigned char*, size_t> blocks;
  return blocks;
}
inline bool isPinned(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lock(pinnedMutex());
  const auto* at = static_cast<const unsigned char*>(p);
  auto block = pinnedBlocks().upper_bound(at);
  if (block == pinnedBlocks().begin()) return false;
  --block;
  return at + bytes <= block->first + block->second;
}

// Carries out the copies issued on `stream` before the first `count` were; the caller holds no
// stream's lock.
inline void finishCopies(cudaStream_t stream, uint64_t count) {
  if (stream == nullptr) return;
  std::lock_guard<std::mutex> lock(stream->mutex);
  while (stream->done < count && !stream->waiting.empty()) {
    stream->waiting.front()();
    stream->waiting.pop_front();
    ++stream->done;
  }
}
inline void finishAllCopies(cudaStream_t stream) { finishCopies(stream, UINT64_MAX); }
inline void finishDevice(int device) {
  std::lock_guard<std::mutex> lock(streamsMutex());
  for (cudaStream_t stream : liveStreams()) {
    if (stream->device == device) finishAllCopies(stream);
  }
}
inline void finishEvent(cudaEvent_t event) {
  std::lock_guard<std::mutex> lock(streamsMutex());
  if (event->stream != nullptr && liveStreams().count(event->stream) > 0) finishCopies(event->stream, event->after);
}
// Before other work on `stream`: whether it may be issued from this thread, and if so the
// stream's earlier copies are carried out, as work on a stream runs in order.
inline bool issueOn(cudaStream_t stream) {
  if (!onCurrentDevice(stream)) return false;
  finishAllCopies(stream);
  return true;
}
}  // namespace saekit::emulator

inline const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    default: return "cudaErrorUnknown";
  }
}
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaErrorMemoryAllocation ? "out of memory" : e == cudaSuccess ? "no error" : "emulated error";
}
inline cudaError_t cudaGetLastError() { return std::exchange(saekit::emulator::lastError(), cudaSuccess); }
inline cudaError_t cudaPeekAtLastError() { return saekit::emulator::lastError(); }
inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = saekit::emulator::kDevices;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= saekit::emulator::kDevices) return cudaErrorInvalidDevice;
  saekit::emulator::currentDevice() = device;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = saekit::emulator::currentDevice();
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device < 0 || device >= saekit::emulator::kDevices) return cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof *p);
  std::strcpy(p->name, device == 0 ? "saekit GPU emulator" : "saekit GPU emulator, small");
  p->totalGlobalMem = saekit::emulator::kDeviceBytes[device];
  p->sharedMemPerBlockOptin = 227 * 1024;
  p->major = 9;
  p->multiProcessorCount = 4;
  p->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
inline cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
inline cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
template <class F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, F) {
  std::memset(a, 0, sizeof *a);
  a->binaryVersion = 90;
  a->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
template <class F>
cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute attribute, int value) {
  if (attribute == cudaFuncAttributeMaxDynamicSharedMemorySize && value > 227 * 1024) return cudaErrorInvalidValue;
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free, size_t* total) {
  const int device = saekit::emulator::currentDevice();
  *total = saekit::emulator::kDeviceBytes[device];
  *free = *total - saekit::emulator::deviceBytesInUse(device);
  return cudaSuccess;
}

// Each allocation carries its size and device in front, for cudaMemGetInfo.
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  using namespace saekit::emulator;
  const int device = currentDevice();
  if (bytes > kDeviceBytes[device] - deviceBytesInUse(device)) return cudaErrorMemoryAllocation;
  auto* block = static_cast<unsigned char*>(std::aligned_alloc(256, 256 + ((bytes + 255) / 256) * 256));
  if (block == nullptr) return cudaErrorMemoryAllocation;
  std::memcpy(block, &bytes, sizeof bytes);
  std::memcpy(block + sizeof bytes, &device, sizeof device);
  // Not zero, as the GPU does not clear what it hands out (the first 64 MB: filling the
  // gigabytes of the out-of-memory tests would only take time).
  std::memset(block + 256, 0xcd, std::min(bytes, size_t{64} << 20));
  deviceBytesInUse(device) += bytes;
  *p = block + 256;
  return cudaSuccess;
}
template <class T>
cudaError_t cudaMalloc(T** p, size_t bytes) {
  return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) {
  if (p == nullptr) return cudaSuccess;
  auto* block = static_cast<unsigned char*>(p) - 256;
  size_t bytes;
  int device;
  std::memcpy(&bytes, block, sizeof bytes);
  std::memcpy(&device, block + sizeof bytes, sizeof device);
  saekit::emulator::finishDevice(device);  // cudaFree waits for the device's work
  saekit::emulator::deviceBytesInUse(device) -= bytes;
  std::free(block);
  return cudaSuccess;
}
inline cudaError_t cudaHostAlloc(void** p, size_t bytes, unsigned) {
  *p = std::malloc(bytes == 0 ? 1 : bytes);
  if (*p == nullptr) return cudaErrorMemoryAllocation;
  std::lock_guard<std::mutex> lock(saekit::emulator::pinnedMutex());
  saekit::emulator::pinnedBlocks()[static_cast<const unsigned char*>(*p)] = bytes;
  return cudaSuccess;
}
template <class T>
cudaError_t cudaHostAlloc(T** p, size_t bytes, unsigned flags) {
  return cudaHostAlloc(reinterpret_cast<void**>(p), bytes, flags);
}
inline cudaError_t cudaFreeHost(void* p) {
  if (p == nullptr) return cudaSuccess;
  // cudaFreeHost waits for the work that may read the memory.
  for (int device = 0; device < saekit::emulator::kDevices; ++device) saekit::emulator::finishDevice(device);
  {
    std::lock_guard<std::mutex> lock(saekit::emulator::pinnedMutex());
    saekit::emulator::pinnedBlocks().erase(static_cast<const unsigned char*>(p));
  }
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* to, const void* from, size_t bytes, cudaMemcpyKind) {
  if (bytes > 0) std::memmove(to, from, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t stream = nullptr) {
  using namespace saekit::emulator;
  if (kind != cudaMemcpyHostToDevice || stream == nullptr || bytes == 0) {
    if (!issueOn(stream)) return cudaErrorInvalidResourceHandle;
    return cudaMemcpy(to, from, bytes, kind);
  }
  if (!onCurrentDevice(stream)) return cudaErrorInvalidResourceHandle;
  std::function<void()> copy;
  if (isPinned(from, bytes)) {
    copy = [to, from, bytes] { std::memcpy(to, from, bytes); };
  } else {
    auto staged = std::make_shared<std::vector<unsigned char>>(static_cast<const unsigned char*>(from),
                                                               static_cast<const unsigned char*>(from) + bytes);
    copy = [to, staged] { std::memcpy(to, staged->data(), staged->size()); };
  }
  std::lock_guard<std::mutex> lock(stream->mutex);
  stream->waiting.push_back(std::move(copy));
  ++stream->issued;
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (bytes > 0) std::memset(p, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream = nullptr) {
  if (!saekit::emulator::issueOn(stream)) return cudaErrorInvalidResourceHandle;
  return cudaMemset(p, value, bytes);
}
inline cudaError_t cudaDeviceSynchronize() {
  saekit::emulator::finishDevice(saekit::emulator::currentDevice());
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = new CUstream_st;
  (*s)->device = saekit::emulator::currentDevice();
  std::lock_guard<std::mutex> lock(saekit::emulator::streamsMutex());
  saekit::emulator::liveStreams().insert(*s);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreate(cudaStream_t* s) { return cudaStreamCreateWithFlags(s, 0); }
inline cudaError_t cudaStreamDestroy(cudaStream_t s) {
  saekit::emulator::finishAllCopies(s);  // the stream's work completes after its destruction
  {
    std::lock_guard<std::mutex> lock(saekit::emulator::streamsMutex());
    saekit::emulator::liveStreams().erase(s);
  }
  delete s;
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  saekit::emulator::finishAllCopies(s);
  return cudaSuccess;
}
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t event, unsigned = 0) {
  saekit::emulator::finishEvent(event);
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) {
  *e = new CUevent_st{saekit::emulator::currentDevice()};
  return cudaSuccess;
}
inline cudaError_t cudaEventCreate(cudaEvent_t* e) { return cudaEventCreateWithFlags(e, 0); }
inline cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete e;
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream = nullptr) {
  const bool sameDevice = saekit::emulator::onCurrentDevice(stream) && event->device == saekit::emulator::currentDevice();
  if (!sameDevice) return cudaErrorInvalidResourceHandle;
  event->stream = stream;
  if (stream != nullptr) {
    std::lock_guard<std::mutex> lock(stream->mutex);
    event->after = stream->issued;
  }
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  saekit::emulator::finishEvent(event);
  return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 0.0f;
  return cudaSuccess;
}

inline size_t __cvta_generic_to_global(const void* p) { return reinterpret_cast<size_t>(p); }

namespace saekit::emulator {
// What translate.py turns `kernel<<<grid, block, shared, stream>>>(args)` into.
template <class Body>
void launchKernel(Body body, dim3 grid, dim3 block, size_t sharedBytes = 0, cudaStream_t stream = nullptr) {
  if (!issueOn(stream)) {
    lastError() = cudaErrorInvalidResourceHandle;
    return;
  }
  launch(grid, block, sharedBytes, std::function<void()>(body));
}
}  // namespace saekit::emulator
