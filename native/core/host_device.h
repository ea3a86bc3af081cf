// Marks functions that CUDA kernels and host code (the CPU backend, the native tests) share;
// plain C++ where nvcc is not the compiler.
#pragma once

#ifndef SAEKIT_HOST_DEVICE
#if defined(__CUDACC__)
#define SAEKIT_HOST_DEVICE __host__ __device__
#else
#define SAEKIT_HOST_DEVICE
#endif
#endif
