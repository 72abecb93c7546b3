// CUDA kernels of bilinear_sample and its adjoint (semantics: bilinear_sample_kernel.h).
// Free of TensorFlow.
//
// x, dx: [N, in_h, in_w, C]; y, dy: [N, out_h, out_w, C], all with C contiguous;
// ix, iy: [N, out_h, out_w]. T (images) and P (positions) are float or double.
//
// Thread layout (both kernels): threadIdx.y picks an output point, threadIdx.x walks its
// channels, lanes adjacent in C so that every access of a warp to x, y, dx or dy is
// contiguous in NHWC; blocks stride over all N * out_h * out_w points. A thread works out
// the point's four taps (BilinearSampleTaps) once and reuses them for every channel it
// handles. The sample gathers the four pixels into y; the adjoint zeroes dx
// (cudaMemsetAsync) and scatters w * dy into the four pixels with atomicAdd, since several
// points can reach the same pixel (double atomicAdd needs sm_60, below every target that
// build_cuda.py compiles for). Index arithmetic is 64-bit: one division per point.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_BILINEAR_SAMPLE_BILINEAR_SAMPLE_KERNEL_CUH_
#define STYLEGAN2_TF_CUSTOM_OPS_BILINEAR_SAMPLE_BILINEAR_SAMPLE_KERNEL_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "custom_ops/bilinear_sample/bilinear_sample_kernel.h"

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 600
#error "bilinear_sample's adjoint needs atomicAdd(double*) of sm_60 or newer"
#endif

namespace stylegan2 {

constexpr int kBilinearSampleThreads = 256;
constexpr int64_t kBilinearSampleMaxBlocks = 65536;

// y[point, c] = sum over the four taps of w * x[n, tap, c], for every point of the grid stride.
template <typename T, typename P>
__global__ void __launch_bounds__(kBilinearSampleThreads)
    BilinearSampleKernel(const BilinearSampleParams p, const T* SG2_RESTRICT x,
                         const P* SG2_RESTRICT ix, const P* SG2_RESTRICT iy,
                         T* SG2_RESTRICT y) {
  const int64_t C = p.channels;
  const int64_t image_points = p.out_h * p.out_w;
  const int64_t points = p.batch * image_points;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.y;
  for (int64_t point = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
       point < points; point += stride) {
    const BilinearTaps<T> taps = BilinearSampleTaps<T>(p, ix[point], iy[point]);
    const T* x_img = x + point / image_points * p.in_h * p.in_w * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      T acc = T(0);
#pragma unroll
      for (int k = 0; k < 4; ++k)
        if (taps.offset[k] >= 0) acc += taps.weight[k] * x_img[taps.offset[k] * C + c];
      y[point * C + c] = acc;
    }
  }
}

// dx[n, tap, c] += w * dy[point, c] for the four taps of every point of the grid stride;
// dx must be zero before.
template <typename T, typename P>
__global__ void __launch_bounds__(kBilinearSampleThreads)
    BilinearSampleAdjointKernel(const BilinearSampleParams p, const T* SG2_RESTRICT dy,
                                const P* SG2_RESTRICT ix, const P* SG2_RESTRICT iy,
                                T* SG2_RESTRICT dx) {
  const int64_t C = p.channels;
  const int64_t image_points = p.out_h * p.out_w;
  const int64_t points = p.batch * image_points;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.y;
  for (int64_t point = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
       point < points; point += stride) {
    const BilinearTaps<T> taps = BilinearSampleTaps<T>(p, ix[point], iy[point]);
    T* dx_img = dx + point / image_points * p.in_h * p.in_w * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      const T g = dy[point * C + c];
#pragma unroll
      for (int k = 0; k < 4; ++k)
        if (taps.offset[k] >= 0) atomicAdd(dx_img + taps.offset[k] * C + c, taps.weight[k] * g);
    }
  }
}

// Block and grid of both kernels: lanes per point the power of two >= C, at most a warp;
// enough blocks for one point per row of threads, at most kBilinearSampleMaxBlocks.
struct BilinearSampleLaunchShape {
  dim3 grid, block;
};

inline BilinearSampleLaunchShape BilinearSampleShape(const BilinearSampleParams& p) {
  int lanes = 1;
  while (lanes < 32 && lanes < p.channels) lanes *= 2;
  const dim3 block(lanes, kBilinearSampleThreads / lanes);
  const int64_t points = p.batch * p.out_h * p.out_w;
  const int64_t blocks_needed = (points + block.y - 1) / block.y;
  const int64_t blocks =
      blocks_needed < kBilinearSampleMaxBlocks ? blocks_needed : kBilinearSampleMaxBlocks;
  return {dim3(static_cast<unsigned>(blocks)), block};
}

// Launches y = Sample(x) on `stream`; returns the launch error (cudaSuccess when queued).
template <typename T, typename P>
cudaError_t BilinearSampleCuda(const BilinearSampleParams& p, const T* x, const P* ix,
                               const P* iy, T* y, cudaStream_t stream) {
  if (p.batch * p.out_h * p.out_w <= 0 || p.channels <= 0) return cudaSuccess;
  const BilinearSampleLaunchShape shape = BilinearSampleShape(p);
  BilinearSampleKernel<T, P><<<shape.grid, shape.block, 0, stream>>>(p, x, ix, iy, y);
  return cudaGetLastError();
}

// Launches dx = Adjoint(dy) on `stream` (zeroes dx, then scatters); returns the first error.
template <typename T, typename P>
cudaError_t BilinearSampleAdjointCuda(const BilinearSampleParams& p, const T* dy, const P* ix,
                                      const P* iy, T* dx, cudaStream_t stream) {
  const int64_t dx_size = p.batch * p.in_h * p.in_w * p.channels;
  if (dx_size <= 0) return cudaSuccess;
  const cudaError_t error = cudaMemsetAsync(dx, 0, dx_size * sizeof(T), stream);
  if (error != cudaSuccess || p.out_h * p.out_w <= 0) return error;
  const BilinearSampleLaunchShape shape = BilinearSampleShape(p);
  BilinearSampleAdjointKernel<T, P><<<shape.grid, shape.block, 0, stream>>>(p, dy, ix, iy, dx);
  return cudaGetLastError();
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_BILINEAR_SAMPLE_BILINEAR_SAMPLE_KERNEL_CUH_
