# Paths are relative to the package root. Kept to JSON syntax (no comments past this line,
# no trailing commas) so that CMakeLists.txt can parse it with string(JSON).
{
  "variables": {
    "saekit_core_sources": [
      "native/core/memory.cc",
      "native/core/checks.cc",
      "native/core/thread_pool.cc",
      "native/cpu/gemm.cc",
      "native/cpu/kernels.cc",
      "native/cpu/kernels_avx2.cc",
      "native/cpu/kernels_generic.cc",
      "native/cpu/sae_cpu.cc",
      "native/cpu/fista_cpu.cc"
    ],
    "saekit_binding_sources": [
      "native/binding/addon.cc",
      "native/binding/args.cc",
      "native/binding/job.cc",
      "native/binding/js_error.cc",
      "native/binding/sae_wrap.cc",
      "native/binding/fista_wrap.cc"
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
