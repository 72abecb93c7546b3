// CUDA kernel of upfirdn2d (semantics: upfirdn2d_kernel.h). Free of TensorFlow.
//
// x: [N, in_h, in_w, C], y: [N, out_h, out_w, C], both with C contiguous;
// f: float32 [filter_h, filter_w] in device memory.
//
// Thread layout: threadIdx.x walks the channels of one output pixel in packs
// of V adjacent channels (32 bytes, as two 16-byte loads or stores, where C
// and the pointers allow: V = 8 floats or 16 halves), lanes adjacent in C so
// every access of a warp is contiguous in NHWC; threadIdx.y picks the pixel. A thread works out
// the pixel's input window once and reuses it for every pack it handles;
// blocks stride over all N * out_h * out_w pixels. Index arithmetic is 32-bit
// when every offset fits (the per-pixel divisions dominate the cost
// otherwise), else 64-bit.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_CUH_
#define STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "custom_ops/upfirdn2d/upfirdn2d_kernel.h"

namespace stylegan2 {

constexpr int kUpfirdn2dThreads = 256;
// Filters up to this many taps are staged in shared memory (16 KiB).
constexpr int kUpfirdn2dMaxSharedTaps = 4096;

// V adjacent elements of T, loaded and stored in accesses of up to 16 bytes.
template <typename T, int V>
struct alignas(sizeof(T) * V < 16 ? sizeof(T) * V : 16) Upfirdn2dPack {
  T v[V];
};

// I: index type (int32_t or int64_t). V: channels per pack (C % V == 0, x and
// y aligned to a pack). kSharedTaps: copy the correlation taps to shared
// memory first; otherwise read them from f through Upfirdn2dTap at every use
// (very large filters).
template <typename T, typename I, int V, bool kSharedTaps>
__global__ void __launch_bounds__(kUpfirdn2dThreads)
    Upfirdn2dKernel(const Upfirdn2dParams p, const T* SG2_RESTRICT x,
                    const float* SG2_RESTRICT f, T* SG2_RESTRICT y) {
  using Pack = Upfirdn2dPack<T, V>;
  extern __shared__ float s_taps[];  // [filter_h * filter_w] when kSharedTaps
  const I fw = p.filter_w;
  if (kSharedTaps) {
    const int taps = p.filter_h * p.filter_w;
    for (int t = threadIdx.y * blockDim.x + threadIdx.x; t < taps; t += blockDim.x * blockDim.y)
      s_taps[t] = Upfirdn2dTap(p, f, t / p.filter_w, t % p.filter_w);
    __syncthreads();
  }
  const I C = p.channels, in_h = p.in_h, in_w = p.in_w, out_h = p.out_h, out_w = p.out_w;
  const I pixels = static_cast<I>(p.batch) * out_h * out_w;
  const I pixel_stride = static_cast<I>(gridDim.x) * blockDim.y;
  for (I pix = static_cast<I>(blockIdx.x) * blockDim.y + threadIdx.y; pix < pixels;
       pix += pixel_stride) {
    const I row = pix / out_w;  // n * out_h + oy
    const I ox = pix - row * out_w;
    const I n = row / out_h;
    const I oy = row - n * out_h;
    const BasicAxisWindow<I> wy =
        Upfirdn2dWindow<I>(oy, in_h, p.up_y, p.down_y, p.pad_y0, p.filter_h);
    const BasicAxisWindow<I> wx =
        Upfirdn2dWindow<I>(ox, in_w, p.up_x, p.down_x, p.pad_x0, p.filter_w);
    const T* x_img = x + n * in_h * in_w * C;
    for (I c = threadIdx.x * V; c < C; c += blockDim.x * V) {
      float acc[V];
#pragma unroll
      for (int k = 0; k < V; ++k) acc[k] = 0.0f;
      for (I iy = wy.first, ky = wy.tap0; iy <= wy.last; ++iy, ky += p.up_y) {
        const T* x_row = x_img + iy * in_w * C + c;
        for (I ix = wx.first, kx = wx.tap0; ix <= wx.last; ++ix, kx += p.up_x) {
          const float w = kSharedTaps ? s_taps[ky * fw + kx] : Upfirdn2dTap(p, f, ky, kx);
          const Pack in = *reinterpret_cast<const Pack*>(x_row + ix * C);
#pragma unroll
          for (int k = 0; k < V; ++k) acc[k] += w * static_cast<float>(in.v[k]);
        }
      }
      Pack out;
#pragma unroll
      for (int k = 0; k < V; ++k) out.v[k] = static_cast<T>(acc[k]);
      *reinterpret_cast<Pack*>(y + pix * C + c) = out;
    }
  }
}

// Launches the kernel for index type I and pack width V on `stream`.
template <typename T, typename I, int V>
cudaError_t Upfirdn2dLaunch(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                            cudaStream_t stream) {
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  const int64_t packs = p.channels / V;
  int lanes = 1;  // lanes per pixel: the power of two >= the packs, at most a warp
  while (lanes < 32 && lanes < packs) lanes *= 2;
  const dim3 block(lanes, kUpfirdn2dThreads / lanes);
  const int64_t blocks_needed = (pixels + block.y - 1) / block.y;
  const unsigned grid = static_cast<unsigned>(blocks_needed < 65536 ? blocks_needed : 65536);
  const int64_t taps = static_cast<int64_t>(p.filter_h) * p.filter_w;
  if (taps <= kUpfirdn2dMaxSharedTaps) {
    Upfirdn2dKernel<T, I, V, true><<<grid, block, taps * sizeof(float), stream>>>(p, x, f, y);
  } else {
    Upfirdn2dKernel<T, I, V, false><<<grid, block, 0, stream>>>(p, x, f, y);
  }
  return cudaGetLastError();
}

// Whether x and y can be read and written in packs of V elements of T.
template <typename T, int V>
bool Upfirdn2dPacksFit(const Upfirdn2dParams& p, const T* x, const T* y) {
  const uintptr_t bytes = alignof(Upfirdn2dPack<T, V>);
  return p.channels % V == 0 && reinterpret_cast<uintptr_t>(x) % bytes == 0 &&
         reinterpret_cast<uintptr_t>(y) % bytes == 0;
}

// The widest pack that fits, for index type I: 32 bytes (two 16-byte accesses, so
// that the window arithmetic serves 8 floats or 16 halves), 16 bytes, 2 or 1 elements.
template <typename T, typename I>
cudaError_t Upfirdn2dLaunchPacked(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                                  cudaStream_t stream) {
  constexpr int kWidest = 32 / sizeof(T), kWide = 16 / sizeof(T);
  if (Upfirdn2dPacksFit<T, kWidest>(p, x, y))
    return Upfirdn2dLaunch<T, I, kWidest>(p, x, f, y, stream);
  if (Upfirdn2dPacksFit<T, kWide>(p, x, y)) return Upfirdn2dLaunch<T, I, kWide>(p, x, f, y, stream);
  if (Upfirdn2dPacksFit<T, 2>(p, x, y)) return Upfirdn2dLaunch<T, I, 2>(p, x, f, y, stream);
  return Upfirdn2dLaunch<T, I, 1>(p, x, f, y, stream);
}

// Launches upfirdn2d on `stream`; returns the launch error (cudaSuccess when
// queued). wide_index: use 64-bit index arithmetic even where 32 bits suffice
// (tests exercise both paths).
template <typename T>
cudaError_t Upfirdn2dCuda(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                          cudaStream_t stream, bool wide_index = false) {
  const int64_t pixels = p.batch * p.out_h * p.out_w;
  if (pixels <= 0 || p.channels <= 0) return cudaSuccess;
  // Every offset, and a pixel index one grid stride past the end, must fit in 31 bits.
  const int64_t limit = int64_t{1} << 31;
  const int64_t largest = (p.batch * p.in_h * p.in_w > pixels ? p.batch * p.in_h * p.in_w : pixels);
  const bool narrow = largest * p.channels < limit && pixels + 65536 * kUpfirdn2dThreads < limit;
  if (narrow && !wide_index) return Upfirdn2dLaunchPacked<T, int32_t>(p, x, f, y, stream);
  return Upfirdn2dLaunchPacked<T, int64_t>(p, x, f, y, stream);
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_CUH_
