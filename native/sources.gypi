# Paths are relative to the package root. Kept to JSON syntax (no comments past this line,
# no trailing commas) so that CMakeLists.txt can parse it with string(JSON).
{
  "variables": {
    "saekit_core_sources": [
      "native/core/checks.cc",
      "native/core/fista_lipschitz.cc",
      "native/core/memory.cc",
      "native/core/sae_guard.cc",
      "native/core/sae_resample.cc",
      "native/core/thread_pool.cc",
      "native/core/toy.cc",
      "native/cpu/activation.cc",
      "native/cpu/fista_cpu.cc",
      "native/cpu/fista_learning.cc",
      "native/cpu/gemm.cc",
      "native/cpu/kernels.cc",
      "native/cpu/kernels_avx2.cc",
      "native/cpu/kernels_generic.cc",
      "native/cpu/lbfgs.cc",
      "native/cpu/matmul.cc",
      "native/cpu/model_support.cc",
      "native/cpu/rica_cpu.cc",
      "native/cpu/sae_cpu.cc",
      "native/cpu/toy_cpu.cc"
    ],
    "saekit_binding_sources": [
      "native/binding/addon.cc",
      "native/binding/args.cc",
      "native/binding/fista_wrap.cc",
      "native/binding/job.cc",
      "native/binding/js_error.cc",
      "native/binding/matrix_functions.cc",
      "native/binding/rica_wrap.cc",
      "native/binding/sae_wrap.cc",
      "native/binding/toy_binding.cc"
    ],
    "saekit_cuda_sources": [
      "native/cuda/activation.cu",
      "native/cuda/common.cu",
      "native/cuda/fista_cuda.cu",
      "native/cuda/gemm.cu",
      "native/cuda/gemm_fp32.cu",
      "native/cuda/gemm_tf32.cu",
      "native/cuda/matmul.cu",
      "native/cuda/rica_cuda.cu",
      "native/cuda/sae_cuda.cu",
      "native/cuda/sae_kernels.cu",
      "native/cuda/sparse.cu",
      "native/cuda/status.cu"
    ],
    "saekit_cflags": [
      "-O3",
      "-fexceptions",
      "-ffp-contract=fast",
      "-fno-math-errno",
      "-fvisibility=hidden"
    ]
  }
}
