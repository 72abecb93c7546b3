// Upfirdn2dCpuRows<float> built with the AVX-512 flags (see upfirdn2d_cpu_avx512.h). Its
// header functions land in namespace stylegan2::avx512, apart from the baseline copy.
#define SG2_CPU_ISA avx512

#include "custom_ops/upfirdn2d/upfirdn2d_cpu_avx512.h"

#include "custom_ops/upfirdn2d/upfirdn2d_kernel.h"

#ifndef __AVX512F__
#error "upfirdn2d_cpu_avx512.cc must be compiled with the AVX-512 flags (custom_ops/build.py)"
#endif

namespace stylegan2 {

void Upfirdn2dCpuRowsAvx512(const Upfirdn2dParams& p, const float* x, const float* taps,
                            const AxisWindow* x_windows, float* y, int64_t row_begin,
                            int64_t row_end) {
  avx512::Upfirdn2dCpuRows<float>(p, x, taps, x_windows, y, row_begin, row_end);
}

}  // namespace stylegan2
