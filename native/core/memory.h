// What a model will hold, checked before allocating: on Linux a huge allocation can succeed
// and then kill the process when its pages are first touched, so the allocator failing is
// no protection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace saekit {

// Bytes of memory available to this process now (MemAvailable, bounded by a cgroup limit
// where one is set), or 0 if it cannot be determined.
uint64_t availableMemoryBytes();

// "1.5 GiB", "12.0 MiB"
std::string formatBytes(uint64_t bytes);

// Throws a RangeError naming `what` if `bytes` is more than is available.
void checkMemory(uint64_t bytes, const std::string& what);

}  // namespace saekit
