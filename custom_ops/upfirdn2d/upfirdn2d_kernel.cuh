// CUDA kernel of upfirdn2d (semantics: upfirdn2d_kernel.h). Free of TensorFlow.
//
// x: [N, in_h, in_w, C], y: [N, out_h, out_w, C], both with C contiguous;
// f: float32 [filter_h, filter_w] in device memory.
//
// Thread layout: threadIdx.x walks the channels of one output pixel (lanes
// adjacent in C, so every load and store of a warp is contiguous in NHWC),
// threadIdx.y picks the pixel. A thread works out the pixel's input window
// once and reuses it for channels c, c + lanes, c + 2 * lanes, ...; blocks
// stride over all N * out_h * out_w pixels. Indices are 64-bit.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_CUH_
#define STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "custom_ops/upfirdn2d/upfirdn2d_kernel.h"

namespace stylegan2 {

constexpr int kUpfirdn2dThreads = 256;
// Filters up to this many taps are staged in shared memory (16 KiB).
constexpr int kUpfirdn2dMaxSharedTaps = 4096;

// kSharedTaps: copy the correlation taps to shared memory first; otherwise
// read them from f through Upfirdn2dTap at every use (very large filters).
template <typename T, bool kSharedTaps>
__global__ void __launch_bounds__(kUpfirdn2dThreads)
    Upfirdn2dKernel(const Upfirdn2dParams p, const T* SG2_RESTRICT x,
                    const float* SG2_RESTRICT f, T* SG2_RESTRICT y) {
  extern __shared__ float s_taps[];  // [filter_h * filter_w] when kSharedTaps
  const int64_t fw = p.filter_w;
  if (kSharedTaps) {
    const int taps = p.filter_h * p.filter_w;
    for (int t = threadIdx.y * blockDim.x + threadIdx.x; t < taps; t += blockDim.x * blockDim.y)
      s_taps[t] = Upfirdn2dTap(p, f, t / p.filter_w, t % p.filter_w);
    __syncthreads();
  }
  const int64_t C = p.channels;
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  const int64_t pixel_stride = static_cast<int64_t>(gridDim.x) * blockDim.y;
  for (int64_t pix = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y; pix < pixels;
       pix += pixel_stride) {
    const int64_t row = pix / p.out_w;  // n * out_h + oy
    const int64_t ox = pix - row * p.out_w;
    const int64_t n = row / p.out_h;
    const int64_t oy = row - n * p.out_h;
    const AxisWindow wy = Upfirdn2dWindow(oy, p.in_h, p.up_y, p.down_y, p.pad_y0, p.filter_h);
    const AxisWindow wx = Upfirdn2dWindow(ox, p.in_w, p.up_x, p.down_x, p.pad_x0, p.filter_w);
    const T* x_img = x + n * p.in_h * p.in_w * C;
    T* y_pix = y + pix * C;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
      float acc = 0.0f;
      for (int64_t iy = wy.first, ky = wy.tap0; iy <= wy.last; ++iy, ky += p.up_y) {
        const T* x_row = x_img + iy * p.in_w * C + c;
        for (int64_t ix = wx.first, kx = wx.tap0; ix <= wx.last; ++ix, kx += p.up_x) {
          const float w = kSharedTaps ? s_taps[ky * fw + kx] : Upfirdn2dTap(p, f, ky, kx);
          acc += w * static_cast<float>(x_row[ix * C]);
        }
      }
      y_pix[c] = static_cast<T>(acc);
    }
  }
}

// Launches the kernel on `stream`; returns the launch error (cudaSuccess when queued).
template <typename T>
cudaError_t Upfirdn2dCuda(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                          cudaStream_t stream) {
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  if (pixels <= 0 || p.channels <= 0) return cudaSuccess;
  int lanes = 1;  // channel lanes per pixel: the power of two >= C, at most a warp
  while (lanes < 32 && lanes < p.channels) lanes *= 2;
  const dim3 block(lanes, kUpfirdn2dThreads / lanes);
  const int64_t blocks_needed = (pixels + block.y - 1) / block.y;
  const unsigned grid = static_cast<unsigned>(blocks_needed < 65536 ? blocks_needed : 65536);
  const int64_t taps = static_cast<int64_t>(p.filter_h) * p.filter_w;
  if (taps <= kUpfirdn2dMaxSharedTaps) {
    Upfirdn2dKernel<T, true><<<grid, block, taps * sizeof(float), stream>>>(p, x, f, y);
  } else {
    Upfirdn2dKernel<T, false><<<grid, block, 0, stream>>>(p, x, f, y);
  }
  return cudaGetLastError();
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_CUH_
