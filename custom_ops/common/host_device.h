// Shared macros for kernel headers that compile under both g++ and nvcc.
// No TensorFlow include: test harnesses use these headers on their own.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_COMMON_HOST_DEVICE_H_
#define STYLEGAN2_TF_CUSTOM_OPS_COMMON_HOST_DEVICE_H_

#if defined(__CUDACC__)
#define SG2_HOST_DEVICE __host__ __device__
#else
#define SG2_HOST_DEVICE
#endif

#if defined(__GNUC__) || defined(__clang__)
#define SG2_RESTRICT __restrict__
#else
#define SG2_RESTRICT
#endif

// The inline namespace of CPU code compiled for one instruction set: "baseline" unless a
// source compiled with wider vector flags (e.g. upfirdn2d_cpu_avx512.cc) names another
// before its first include.
#ifndef SG2_CPU_ISA
#define SG2_CPU_ISA baseline
#endif

#endif  // STYLEGAN2_TF_CUSTOM_OPS_COMMON_HOST_DEVICE_H_
