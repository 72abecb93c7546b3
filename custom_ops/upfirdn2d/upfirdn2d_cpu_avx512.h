// The CPU loops of upfirdn2d compiled a second time, for AVX-512 (upfirdn2d_cpu_avx512.cc).
//
// Free of TensorFlow. The build compiles upfirdn2d_cpu_avx512.cc alone with the AVX-512
// flags (custom_ops/build.py AVX512_FLAGS, the Bazel rule's avx512_srcs) and defines
// SG2_HAVE_AVX512_KERNELS for the op's other sources; upfirdn2d_kernel.cc calls this copy
// only where Upfirdn2dCpuHasAvx512() says the CPU and the OS can run it.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_CPU_AVX512_H_
#define STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_CPU_AVX512_H_

#include <cstdint>

#include "custom_ops/upfirdn2d/upfirdn2d_kernel.h"

namespace stylegan2 {

// Upfirdn2dCpuRows<float> (upfirdn2d_kernel.h) built for AVX-512: the same loops, results
// equal to float rounding (its multiply-adds are fused).
void Upfirdn2dCpuRowsAvx512(const Upfirdn2dParams& p, const float* x, const float* taps,
                            const AxisWindow* x_windows, float* y, int64_t row_begin,
                            int64_t row_end);

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_CPU_AVX512_H_
