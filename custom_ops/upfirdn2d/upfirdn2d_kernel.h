// upfirdn2d: upsample, FIR-filter, downsample an NHWC tensor.
//
// Free of TensorFlow: the TF op (upfirdn2d_kernel.cc), the CUDA kernels
// (upfirdn2d_kernel.cuh) and the standalone test harness (tests/cuda) share it.
//
// Along each spatial axis, for input length `in`:
//   1. upsample: insert `up - 1` zeros after every sample      (length in * up)
//   2. pad `pad0` zeros in front, `pad1` behind; negative crops (length in * up + pad0 + pad1)
//   3. convolve with the filter (correlate with it when flip_filter is set)
//   4. keep every `down`-th sample, starting with the first
// Output length: (in * up + pad0 + pad1 - taps) / down + 1.
// Zeros inserted by step 1 are never multiplied: each output sample sums only
// the input samples whose filter tap lands on it.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_H_
#define STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_H_

#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace stylegan2 {

struct Upfirdn2dParams {
  int64_t batch;     // N
  int64_t in_h;      // input height  (x is [N, in_h, in_w, C], C contiguous)
  int64_t in_w;      // input width
  int64_t channels;  // C
  int64_t out_h;     // output height (y is [N, out_h, out_w, C])
  int64_t out_w;     // output width
  int up_x, up_y;      // upsampling factors, >= 1
  int down_x, down_y;  // downsampling factors, >= 1
  int pad_x0, pad_y0;  // leading padding in upsampled pixels; negative crops
  int filter_h;        // filter is float32 [filter_h, filter_w], row-major
  int filter_w;
  bool flip_filter;  // false: convolution (filter flipped); true: correlation
  float gain;        // every filter tap is multiplied by this
};

// Output length along one axis, or a value < 1 when the output would be empty.
SG2_HOST_DEVICE inline int64_t Upfirdn2dOutSize(int64_t in, int up, int down, int pad0,
                                                int pad1, int taps) {
  const int64_t span = in * up + pad0 + pad1 - taps;
  return span < 0 ? 0 : span / down + 1;
}

// floor(a / b) for b > 0.
SG2_HOST_DEVICE inline int64_t FloorDiv(int64_t a, int64_t b) {
  return (a >= 0) ? a / b : -((-a + b - 1) / b);
}

// The input samples that reach output sample `o` along one axis.
// Input index i in [first, last] (inclusive; empty when first > last) meets
// correlation tap k = tap0 + (i - first) * up.
struct AxisWindow {
  int64_t first;
  int64_t last;
  int64_t tap0;
};

SG2_HOST_DEVICE inline AxisWindow Upfirdn2dWindow(int64_t o, int64_t in, int up, int down,
                                                  int pad0, int taps) {
  // Upsampled+padded index j = o * down + k holds input i when j - pad0 == i * up.
  const int64_t j0 = o * down - pad0;
  int64_t first = FloorDiv(j0 + up - 1, up);  // ceil(j0 / up)
  int64_t last = FloorDiv(j0 + taps - 1, up);
  if (first < 0) first = 0;
  if (last > in - 1) last = in - 1;
  AxisWindow w;
  w.first = first;
  w.last = last;
  w.tap0 = first * up - j0;
  return w;
}

// Weight of correlation tap (ky, kx): the filter, flipped unless flip_filter, times gain.
SG2_HOST_DEVICE inline float Upfirdn2dTap(const Upfirdn2dParams& p, const float* f, int64_t ky,
                                          int64_t kx) {
  const int64_t fy = p.flip_filter ? ky : p.filter_h - 1 - ky;
  const int64_t fx = p.flip_filter ? kx : p.filter_w - 1 - kx;
  return f[fy * p.filter_w + fx] * p.gain;
}

// CPU: one output pixel, channels [c0, c0 + kWidth), accumulated in registers.
template <int kWidth, typename T>
inline void Upfirdn2dCpuPixel(const Upfirdn2dParams& p, const T* SG2_RESTRICT x_img,
                              const float* SG2_RESTRICT taps, const AxisWindow& wy,
                              const AxisWindow& wx, int64_t c0, T* SG2_RESTRICT yp) {
  const int64_t C = p.channels;
  float acc[kWidth];
  for (int k = 0; k < kWidth; ++k) acc[k] = 0.0f;
  for (int64_t iy = wy.first, ky = wy.tap0; iy <= wy.last; ++iy, ky += p.up_y) {
    const float* tap_row = taps + ky * p.filter_w;
    const T* x_row = x_img + iy * p.in_w * C + c0;
    for (int64_t ix = wx.first, kx = wx.tap0; ix <= wx.last; ++ix, kx += p.up_x) {
      const float w = tap_row[kx];
      const T* SG2_RESTRICT xp = x_row + ix * C;
      for (int k = 0; k < kWidth; ++k) acc[k] += w * static_cast<float>(xp[k]);
    }
  }
  for (int k = 0; k < kWidth; ++k) yp[c0 + k] = static_cast<T>(acc[k]);
}

// CPU: computes output rows [row_begin, row_end), row r = n * out_h + oy.
// `taps` holds filter_h * filter_w correlation weights (Upfirdn2dTap order).
// Channels go in blocks of 32, then 8, then 1, each block's sums in registers.
template <typename T>
void Upfirdn2dCpuRows(const Upfirdn2dParams& p, const T* SG2_RESTRICT x,
                      const float* SG2_RESTRICT taps, T* SG2_RESTRICT y, int64_t row_begin,
                      int64_t row_end) {
  const int64_t C = p.channels;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.out_h;
    const int64_t oy = r - n * p.out_h;
    const AxisWindow wy = Upfirdn2dWindow(oy, p.in_h, p.up_y, p.down_y, p.pad_y0, p.filter_h);
    const T* x_img = x + n * p.in_h * p.in_w * C;
    T* y_row = y + r * p.out_w * C;
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const AxisWindow wx = Upfirdn2dWindow(ox, p.in_w, p.up_x, p.down_x, p.pad_x0, p.filter_w);
      T* yp = y_row + ox * C;
      int64_t c0 = 0;
      for (; c0 + 32 <= C; c0 += 32) Upfirdn2dCpuPixel<32>(p, x_img, taps, wy, wx, c0, yp);
      for (; c0 + 8 <= C; c0 += 8) Upfirdn2dCpuPixel<8>(p, x_img, taps, wy, wx, c0, yp);
      for (; c0 < C; ++c0) Upfirdn2dCpuPixel<1>(p, x_img, taps, wy, wx, c0, yp);
    }
  }
}

// Fills `taps` (filter_h * filter_w floats) with the correlation weights.
inline void Upfirdn2dCorrelationTaps(const Upfirdn2dParams& p, const float* f, float* taps) {
  for (int64_t ky = 0; ky < p.filter_h; ++ky)
    for (int64_t kx = 0; kx < p.filter_w; ++kx)
      taps[ky * p.filter_w + kx] = Upfirdn2dTap(p, f, ky, kx);
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_H_
