#include "memory.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "error.h"

namespace saekit {
namespace {

uint64_t readMemAvailable() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (meminfo >> key >> kib >> unit) {
    if (key == "MemAvailable:") return kib * 1024;
  }
  return 0;
}

uint64_t readCgroupRoom() {
  // cgroup v2: limit minus current usage of this process's group.
  std::ifstream maxFile("/sys/fs/cgroup/memory.max");
  std::string limitText;
  if (!(maxFile >> limitText) || limitText == "max") return 0;
  uint64_t limit = std::strtoull(limitText.c_str(), nullptr, 10);
  std::ifstream currentFile("/sys/fs/cgroup/memory.current");
  uint64_t current = 0;
  currentFile >> current;
  return limit > current ? limit - current : 1;
}

}  // namespace

uint64_t availableMemoryBytes() {
  uint64_t available = readMemAvailable();
  uint64_t room = readCgroupRoom();
  if (room != 0 && (available == 0 || room < available)) available = room;
  return available;
}

std::string formatBytes(uint64_t bytes) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 6) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

void checkMemory(uint64_t bytes, const std::string& what) {
  const uint64_t available = availableMemoryBytes();
  if (available != 0 && bytes > available) {
    throwRangeError(what + " needs " + formatBytes(bytes) + " of memory but only " +
                    formatBytes(available) + " is available");
  }
}

}  // namespace saekit
