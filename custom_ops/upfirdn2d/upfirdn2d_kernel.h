// upfirdn2d: upsample, FIR-filter, downsample an NHWC tensor.
//
// Free of TensorFlow: the TF op (upfirdn2d_kernel.cc), its AVX-512 copy of the CPU loops
// (upfirdn2d_cpu_avx512.cc), the CUDA kernels (upfirdn2d_kernel.cuh) and the standalone
// test harness (tests/cuda) share it.
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

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

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

// The input samples that reach output sample `o` along one axis.
// Input index i in [first, last] (inclusive; empty when first > last) meets
// correlation tap k = tap0 + (i - first) * up.
template <typename I>
struct BasicAxisWindow {
  I first;
  I last;
  I tap0;
};
using AxisWindow = BasicAxisWindow<int64_t>;

// The functions below may be compiled twice into one library: for the baseline ISA and,
// in upfirdn2d_cpu_avx512.cc, for AVX-512. The inline namespace SG2_CPU_ISA gives each copy
// its own symbols, so the linker never merges an AVX-512 copy into baseline code.
inline namespace SG2_CPU_ISA {

// Output length along one axis, or a value < 1 when the output would be empty.
SG2_HOST_DEVICE inline int64_t Upfirdn2dOutSize(int64_t in, int up, int down, int pad0,
                                                int pad1, int taps) {
  const int64_t span = in * up + pad0 + pad1 - taps;
  return span < 0 ? 0 : span / down + 1;
}

// floor(a / b) for b > 0, in the index type I (int64_t; the CUDA kernel also int32_t).
template <typename I>
SG2_HOST_DEVICE inline I FloorDiv(I a, I b) {
  return (a >= 0) ? a / b : -((-a + b - 1) / b);
}

// The window (BasicAxisWindow) of output sample `o` along an axis of `in` input samples.
template <typename I = int64_t>
SG2_HOST_DEVICE inline BasicAxisWindow<I> Upfirdn2dWindow(I o, I in, int up, int down, int pad0,
                                                         int taps) {
  // Upsampled+padded index j = o * down + k holds input i when j - pad0 == i * up.
  const I step = up;
  const I j0 = o * down - pad0;
  I first = FloorDiv<I>(j0 + step - 1, step);  // ceil(j0 / up)
  I last = FloorDiv<I>(j0 + taps - 1, step);
  if (first < 0) first = 0;
  if (last > in - 1) last = in - 1;
  BasicAxisWindow<I> w;
  w.first = first;
  w.last = last;
  w.tap0 = first * step - j0;
  return w;
}

// Weight of correlation tap (ky, kx): the filter, flipped unless flip_filter, times gain.
SG2_HOST_DEVICE inline float Upfirdn2dTap(const Upfirdn2dParams& p, const float* f, int64_t ky,
                                          int64_t kx) {
  const int64_t fy = p.flip_filter ? ky : p.filter_h - 1 - ky;
  const int64_t fx = p.flip_filter ? kx : p.filter_w - 1 - kx;
  return f[fy * p.filter_w + fx] * p.gain;
}

// CPU: channels [c0, c0 + kWidth) of one output pixel, any window, accumulated in registers.
template <int kWidth, typename T>
inline void Upfirdn2dCpuAnyWindowBlock(const Upfirdn2dParams& p, const T* SG2_RESTRICT x_img,
                                       const float* SG2_RESTRICT taps, const AxisWindow& wy,
                                       const AxisWindow& wx, int64_t c0, T* SG2_RESTRICT yp) {
  const int64_t C = p.channels;
  const T* x0 = x_img + (wy.first * p.in_w + wx.first) * C + c0;
  const float* t0 = taps + wy.tap0 * p.filter_w + wx.tap0;
  const int64_t x_row_step = p.in_w * C;
  const int64_t tap_row_step = static_cast<int64_t>(p.up_y) * p.filter_w;
  float acc[kWidth];
  for (int k = 0; k < kWidth; ++k) acc[k] = 0.0f;
  for (int64_t ty = 0; ty <= wy.last - wy.first; ++ty) {
    for (int64_t tx = 0; tx <= wx.last - wx.first; ++tx) {
      const float w = t0[ty * tap_row_step + tx * p.up_x];
      const T* SG2_RESTRICT xp = x0 + ty * x_row_step + tx * C;
      for (int k = 0; k < kWidth; ++k) acc[k] += w * static_cast<float>(xp[k]);
    }
  }
  for (int k = 0; k < kWidth; ++k) yp[c0 + k] = static_cast<T>(acc[k]);
}

// CPU: calls block(std::integral_constant<int, W>{}, c) for channel blocks [c, c + W)
// covering [0, channels): blocks of kFirst, then of 8, then one of the rest (W < 8), so
// that each block's sums can stay in registers and its loops be unrolled.
template <int kFirst, typename Block>
inline void Upfirdn2dCpuChannelBlocks(int64_t channels, Block&& block) {
  int64_t c = 0;
  for (; c + kFirst <= channels; c += kFirst) block(std::integral_constant<int, kFirst>{}, c);
  for (; c + 8 <= channels; c += 8) block(std::integral_constant<int, 8>{}, c);
  switch (channels - c) {
    case 1: return block(std::integral_constant<int, 1>{}, c);
    case 2: return block(std::integral_constant<int, 2>{}, c);
    case 3: return block(std::integral_constant<int, 3>{}, c);
    case 4: return block(std::integral_constant<int, 4>{}, c);
    case 5: return block(std::integral_constant<int, 5>{}, c);
    case 6: return block(std::integral_constant<int, 6>{}, c);
    case 7: return block(std::integral_constant<int, 7>{}, c);
    default: return;
  }
}

// CPU: all channels of one output pixel, any window, in blocks of 32, 8, then the rest.
template <typename T>
inline void Upfirdn2dCpuAnyWindowPixel(const Upfirdn2dParams& p, const T* x_img,
                                       const float* taps, const AxisWindow& wy,
                                       const AxisWindow& wx, T* yp) {
  Upfirdn2dCpuChannelBlocks<32>(p.channels, [&](auto width, int64_t c) {
    Upfirdn2dCpuAnyWindowBlock<decltype(width)::value>(p, x_img, taps, wy, wx, c, yp);
  });
}

// CPU: channels [c, c + kWidth) of one output pixel whose window is exactly kTy x kTx taps
// `w` over the input pixels from `x0` (rows x_row_step apart, pixels C apart).
template <int kWidth, int kTy, int kTx, typename T>
inline void Upfirdn2dCpuFixedWindowBlock(const float (&w)[kTy][kTx], const T* SG2_RESTRICT x0,
                                         int64_t x_row_step, int64_t C, int64_t c,
                                         T* SG2_RESTRICT yp) {
  float acc[kWidth];
  for (int k = 0; k < kWidth; ++k) acc[k] = 0.0f;
#pragma GCC unroll 8
  for (int ty = 0; ty < kTy; ++ty) {
#pragma GCC unroll 8
    for (int tx = 0; tx < kTx; ++tx) {
      const T* SG2_RESTRICT xp = x0 + ty * x_row_step + tx * C + c;
      for (int k = 0; k < kWidth; ++k) acc[k] += w[ty][tx] * static_cast<float>(xp[k]);
    }
  }
  for (int k = 0; k < kWidth; ++k) yp[c + k] = static_cast<T>(acc[k]);
}

// Channels per block of Upfirdn2dCpuFixedWindowPixel: one AVX-512 vector of sums, whose
// out-of-order overlap across blocks hides the multiply-adds' latency; without AVX-512,
// four AVX vectors, each block its own four chains of additions.
#ifdef __AVX512F__
constexpr int kUpfirdn2dCpuBlock = 16;
#else
constexpr int kUpfirdn2dCpuBlock = 32;
#endif

// CPU: all channels of one output pixel whose window is exactly kTy x kTx taps: the taps
// held in registers for the whole pixel, the channels in blocks of kUpfirdn2dCpuBlock, 8,
// then the rest.
template <int kTy, int kTx, typename T>
inline void Upfirdn2dCpuFixedWindowPixel(const Upfirdn2dParams& p, const T* x_img,
                                         const float* taps, const AxisWindow& wy,
                                         const AxisWindow& wx, T* yp) {
  const int64_t C = p.channels;
  const T* x0 = x_img + (wy.first * p.in_w + wx.first) * C;
  const float* t0 = taps + wy.tap0 * p.filter_w + wx.tap0;
  const int64_t x_row_step = p.in_w * C;
  float w[kTy][kTx];
  for (int ty = 0; ty < kTy; ++ty)
    for (int tx = 0; tx < kTx; ++tx)
      w[ty][tx] = t0[static_cast<int64_t>(ty) * p.up_y * p.filter_w + tx * p.up_x];
  Upfirdn2dCpuChannelBlocks<kUpfirdn2dCpuBlock>(C, [&](auto width, int64_t c) {
    Upfirdn2dCpuFixedWindowBlock<decltype(width)::value>(w, x0, x_row_step, C, c, yp);
  });
}

// CPU: all channels of one output pixel, with the unrolled kernel for windows of up to
// 4 x 4 taps and single rows of up to 8 (a horizontal pass), the general one otherwise.
template <typename T>
inline void Upfirdn2dCpuPixel(const Upfirdn2dParams& p, const T* x_img, const float* taps,
                              const AxisWindow& wy, const AxisWindow& wx, T* yp) {
  const int64_t ny = wy.last - wy.first + 1, nx = wx.last - wx.first + 1;
#define SG2_UPFIRDN2D_FIXED(TY, TX) \
  case TY * 16 + TX:                \
    return Upfirdn2dCpuFixedWindowPixel<TY, TX>(p, x_img, taps, wy, wx, yp);
  const bool unrolled = ny >= 1 && nx >= 1 && ((ny <= 4 && nx <= 4) || (ny == 1 && nx <= 8));
  switch (unrolled ? ny * 16 + nx : 0) {
    SG2_UPFIRDN2D_FIXED(1, 1) SG2_UPFIRDN2D_FIXED(1, 2) SG2_UPFIRDN2D_FIXED(1, 3)
    SG2_UPFIRDN2D_FIXED(1, 4) SG2_UPFIRDN2D_FIXED(1, 5) SG2_UPFIRDN2D_FIXED(1, 6)
    SG2_UPFIRDN2D_FIXED(1, 7) SG2_UPFIRDN2D_FIXED(1, 8) SG2_UPFIRDN2D_FIXED(2, 1)
    SG2_UPFIRDN2D_FIXED(2, 2) SG2_UPFIRDN2D_FIXED(2, 3) SG2_UPFIRDN2D_FIXED(2, 4)
    SG2_UPFIRDN2D_FIXED(3, 1) SG2_UPFIRDN2D_FIXED(3, 2) SG2_UPFIRDN2D_FIXED(3, 3)
    SG2_UPFIRDN2D_FIXED(3, 4) SG2_UPFIRDN2D_FIXED(4, 1) SG2_UPFIRDN2D_FIXED(4, 2)
    SG2_UPFIRDN2D_FIXED(4, 3) SG2_UPFIRDN2D_FIXED(4, 4)
    default:
      return Upfirdn2dCpuAnyWindowPixel(p, x_img, taps, wy, wx, yp);
  }
#undef SG2_UPFIRDN2D_FIXED
}

// CPU: asks for the input pixels [col_begin, col_end) of rows [row_begin, row_end) of one
// image to be brought into cache ahead of their use (a hint: never faults, never required).
template <typename T>
inline void Upfirdn2dCpuPrefetch(const Upfirdn2dParams& p, const T* x_img, int64_t row_begin,
                                 int64_t row_end, int64_t col_begin, int64_t col_end) {
  constexpr int64_t kLine = 64;  // bytes per cache line
  const int64_t bytes = (col_end - col_begin) * p.channels * static_cast<int64_t>(sizeof(T));
  for (int64_t row = row_begin; row < row_end; ++row) {
    const char* start =
        reinterpret_cast<const char*>(x_img + (row * p.in_w + col_begin) * p.channels);
    for (int64_t b = 0; b < bytes; b += kLine) __builtin_prefetch(start + b, 0, 3);
  }
}

// CPU: computes output rows [row_begin, row_end), row r = n * out_h + oy.
// `taps` holds filter_h * filter_w correlation weights (Upfirdn2dTap order);
// `x_windows` the out_w windows along x (Upfirdn2dWindow of each ox), shared by
// every row. While a row is computed, the input rows that the next output row of the
// image adds are prefetched a pixel at a time, so they arrive from memory in the
// shadow of the arithmetic instead of stalling the next row.
template <typename T>
void Upfirdn2dCpuRows(const Upfirdn2dParams& p, const T* SG2_RESTRICT x,
                      const float* SG2_RESTRICT taps, const AxisWindow* SG2_RESTRICT x_windows,
                      T* SG2_RESTRICT y, int64_t row_begin, int64_t row_end) {
  const int64_t C = p.channels;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.out_h;
    const int64_t oy = r - n * p.out_h;
    const AxisWindow wy = Upfirdn2dWindow(oy, p.in_h, p.up_y, p.down_y, p.pad_y0, p.filter_h);
    // The rows of the next output row's window that this row's window lacks (none after
    // the image's last row).
    int64_t ahead_begin = 0, ahead_end = 0;
    if (oy + 1 < p.out_h) {
      const AxisWindow next = Upfirdn2dWindow(oy + 1, p.in_h, p.up_y, p.down_y, p.pad_y0,
                                              p.filter_h);
      ahead_begin = wy.last + 1 > next.first ? wy.last + 1 : next.first;
      if (ahead_begin < 0) ahead_begin = 0;
      ahead_end = next.last + 1;
    }
    const T* x_img = x + n * p.in_h * p.in_w * C;
    T* y_row = y + r * p.out_w * C;
    // Pixels under a cache line are left to the hardware's prefetcher: a few more rows
    // of a dense stream, not worth an instruction per pixel.
    int64_t prefetched_cols = C * static_cast<int64_t>(sizeof(T)) < 64 ? p.in_w : 0;
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const AxisWindow& wx = x_windows[ox];
      Upfirdn2dCpuPixel(p, x_img, taps, wy, wx, y_row + ox * C);
      if (wx.last + 1 > prefetched_cols) {
        Upfirdn2dCpuPrefetch(p, x_img, ahead_begin, ahead_end,
                             wx.first > prefetched_cols ? wx.first : prefetched_cols,
                             wx.last + 1);
        prefetched_cols = wx.last + 1;
      }
    }
  }
}

// True when the op filters along y only: a [filter_h, 1] filter with no resampling, padding
// or cropping along x, so every output row is a weighted sum of whole input rows.
inline bool Upfirdn2dIsColumnPass(const Upfirdn2dParams& p) {
  return p.filter_w == 1 && p.up_x == 1 && p.down_x == 1 && p.pad_x0 == 0 && p.out_w == p.in_w;
}

// CPU, for Upfirdn2dIsColumnPass: output rows [row_begin, row_end) (row r = n * out_h + oy),
// each the sum of its window's input rows times their taps, over the row's W * C values as
// one contiguous vector (whatever C is), in chunks whose sums stay in registers or L1.
template <typename T>
void Upfirdn2dCpuColumnRows(const Upfirdn2dParams& p, const T* SG2_RESTRICT x,
                            const float* SG2_RESTRICT taps, T* SG2_RESTRICT y,
                            int64_t row_begin, int64_t row_end) {
  constexpr int64_t kChunk = 512;
  const int64_t row_len = p.in_w * p.channels;
  float acc[kChunk];
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.out_h;
    const int64_t oy = r - n * p.out_h;
    const AxisWindow wy = Upfirdn2dWindow(oy, p.in_h, p.up_y, p.down_y, p.pad_y0, p.filter_h);
    const T* x_first = x + (n * p.in_h + wy.first) * row_len;
    T* y_row = y + r * row_len;
    for (int64_t c0 = 0; c0 < row_len; c0 += kChunk) {
      const int64_t len = row_len - c0 < kChunk ? row_len - c0 : kChunk;
      for (int64_t k = 0; k < len; ++k) acc[k] = 0.0f;
      for (int64_t i = 0; i <= wy.last - wy.first; ++i) {
        const float w = taps[wy.tap0 + i * p.up_y];
        const T* SG2_RESTRICT xr = x_first + i * row_len + c0;
        for (int64_t k = 0; k < len; ++k) acc[k] += w * static_cast<float>(xr[k]);
      }
      for (int64_t k = 0; k < len; ++k) y_row[c0 + k] = static_cast<T>(acc[k]);
    }
  }
}

// Pixels narrower than this many channels leave per-pixel loops too short to vectorize.
constexpr int64_t kUpfirdn2dFewChannels = 8;

// The largest down_x that Upfirdn2dCpuFewChannelRows takes: it sums every position of the
// up_x phases, down_x times the positions that the output keeps.
constexpr int kUpfirdn2dFewChannelMaxDown = 4;

// True when the op filters along x only, on pixels of fewer than kUpfirdn2dFewChannels
// channels: a [1, filter_w] filter with no resampling, padding or cropping along y, and
// downsampling along x by at most kUpfirdn2dFewChannelMaxDown.
inline bool Upfirdn2dIsFewChannelRowPass(const Upfirdn2dParams& p) {
  return p.channels < kUpfirdn2dFewChannels && p.filter_h == 1 && p.up_y == 1 &&
         p.down_y == 1 && p.pad_y0 == 0 && p.out_h == p.in_h &&
         p.down_x <= kUpfirdn2dFewChannelMaxDown;
}

// CPU, for Upfirdn2dIsFewChannelRowPass: output rows [row_begin, row_end) (row r = n * out_h
// + oy). Output ox is sum q = ox * down_x of the row filtered at up_x times the input rate:
// phase q % up_x, position q / up_x. Position j of phase ph adds tap t times input pixel
// j + FloorDiv(ph + t - pad_x0, up_x) for each t where ph + t - pad_x0 is a multiple of up_x
// (the other taps meet inserted zeros). Each phase is summed tap by tap over the positions
// whose pixel lies in the row, as contiguous vectors of whole rows (whatever C is); then
// every down_x-th sum is gathered into the output row.
template <typename T>
void Upfirdn2dCpuFewChannelRows(const Upfirdn2dParams& p, const T* SG2_RESTRICT x,
                                const float* SG2_RESTRICT taps, T* SG2_RESTRICT y,
                                int64_t row_begin, int64_t row_end) {
  const int64_t C = p.channels, up = p.up_x;
  const int64_t phase_len = (p.out_w - 1) * p.down_x / up + 1;  // positions per phase
  const int64_t phase_floats = phase_len * C;
  std::vector<float> sums(static_cast<size_t>(up * phase_floats));
  const int64_t converted_floats = std::is_same<T, float>::value ? 0 : p.in_w * C;
  std::vector<float> converted(static_cast<size_t>(converted_floats));
  for (int64_t r = row_begin; r < row_end; ++r) {
    const T* x_row = x + r * p.in_w * C;
    const float* SG2_RESTRICT row;
    if constexpr (std::is_same<T, float>::value) {
      row = x_row;
    } else {
      for (int64_t k = 0; k < p.in_w * C; ++k) converted[k] = static_cast<float>(x_row[k]);
      row = converted.data();
    }
    for (int64_t phase = 0; phase < up; ++phase) {
      float* SG2_RESTRICT sum = sums.data() + phase * phase_floats;
      for (int64_t k = 0; k < phase_floats; ++k) sum[k] = 0.0f;
      for (int64_t t = 0; t < p.filter_w; ++t) {
        const int64_t at = phase + t - p.pad_x0;
        const int64_t offset = FloorDiv<int64_t>(at, up);  // input pixel of position 0
        if (at != offset * up) continue;
        const int64_t first = offset < 0 ? -offset : 0;
        const int64_t end = p.in_w - offset < phase_len ? p.in_w - offset : phase_len;
        if (first >= end) continue;
        const float w = taps[t];
        const float* SG2_RESTRICT src = row + (offset + first) * C;
        float* SG2_RESTRICT dst = sum + first * C;
        for (int64_t k = 0; k < (end - first) * C; ++k) dst[k] += w * src[k];
      }
    }
    T* SG2_RESTRICT y_row = y + r * p.out_w * C;
    Upfirdn2dCpuChannelBlocks<kUpfirdn2dFewChannels>(C, [&](auto width, int64_t) {
      constexpr int kC = decltype(width)::value;
      for (int64_t ox = 0; ox < p.out_w; ++ox) {
        const int64_t q = ox * p.down_x;
        const float* SG2_RESTRICT src = sums.data() + (q % up) * phase_floats + (q / up) * kC;
        for (int k = 0; k < kC; ++k) y_row[ox * kC + k] = static_cast<T>(src[k]);
      }
    });
  }
}

// The out_w windows along x that Upfirdn2dCpuRows reads.
inline void Upfirdn2dXWindows(const Upfirdn2dParams& p, AxisWindow* x_windows) {
  for (int64_t ox = 0; ox < p.out_w; ++ox)
    x_windows[ox] = Upfirdn2dWindow(ox, p.in_w, p.up_x, p.down_x, p.pad_x0, p.filter_w);
}

// Fills `taps` (filter_h * filter_w floats) with the correlation weights.
inline void Upfirdn2dCorrelationTaps(const Upfirdn2dParams& p, const float* f, float* taps) {
  for (int64_t ky = 0; ky < p.filter_h; ++ky)
    for (int64_t kx = 0; kx < p.filter_w; ++kx)
      taps[ky * p.filter_w + kx] = Upfirdn2dTap(p, f, ky, kx);
}

}  // namespace SG2_CPU_ISA
}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_UPFIRDN2D_UPFIRDN2D_KERNEL_H_
