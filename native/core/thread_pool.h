// A small fixed pool owned by one model. `run` hands out tasks dynamically, but every
// kernel that uses it writes each task's result to a slot fixed by the task index and
// reduces slots in index order, so results never depend on the number of threads or on
// which thread ran which task.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace saekit {

class ThreadPool {
 public:
  using Task = std::function<void(size_t task, int thread)>;

  // Uses the calling thread plus threads - 1 workers. If the system refuses to start a
  // thread the pool runs with the ones it has.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs fn(task, thread) for every task in [0, tasks) and returns when all are done.
  // `thread` is in [0, size()) and identifies per-thread scratch. The first exception a
  // task throws is rethrown here after the others finish. Not reentrant.
  void run(size_t tasks, const Task& fn);

 private:
  void workerLoop(int thread);
  void drain(int thread);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  int busyWorkers_ = 0;

  const Task* job_ = nullptr;
  size_t tasks_ = 0;
  std::atomic<size_t> next_{0};
  std::exception_ptr error_;
  std::mutex errorMutex_;
};

}  // namespace saekit
