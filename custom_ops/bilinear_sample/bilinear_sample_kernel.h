// bilinear_sample: bilinear resampling of NHWC images at arbitrary pixel positions, and its
// adjoint (the gradient with respect to the images).
//
// Free of TensorFlow: the TF op (bilinear_sample_kernel.cc), the CUDA kernels
// (bilinear_sample_kernel.cuh) and the standalone test harness (tests/cuda) share it.
//
// Pixel (x, y) of an image holds images[n, y, x, :] (centres at integer coordinates). Output
// point (n, oy, ox) at position (ix, iy) = positions[n, oy, ox] blends the four pixels around
// it with the weights (1 - fx)(1 - fy), fx (1 - fy), (1 - fx) fy, fx fy (fx = ix - floor(ix),
// fy likewise), in that order; pixels outside the image count as zeros, as torch's
// grid_sample(mode="bilinear", padding_mode="zeros") once its grid is in pixel coordinates.
// Positions outside [-1, size] (and NaN) give zeros.
//
// Sample:  y[n, oy, ox, c] = sum over the four pixels p of w_p * x[n, p, c]
// Adjoint: dx[n, p, c]     = sum over the points (oy, ox) that reach pixel p of w_p * dy[n, oy, ox, c]
// The adjoint is the gradient of Sample with respect to x, and Sample the gradient of the
// adjoint with respect to dy, so gradients of every order are these two loops.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_BILINEAR_SAMPLE_BILINEAR_SAMPLE_KERNEL_H_
#define STYLEGAN2_TF_CUSTOM_OPS_BILINEAR_SAMPLE_BILINEAR_SAMPLE_KERNEL_H_

#include <cmath>
#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace stylegan2 {

struct BilinearSampleParams {
  int64_t batch;     // N
  int64_t in_h;      // image height (images / dx are [N, in_h, in_w, C], C contiguous)
  int64_t in_w;      // image width
  int64_t channels;  // C
  int64_t out_h;     // positions are [N, out_h, out_w]; y / dy are [N, out_h, out_w, C]
  int64_t out_w;
};

// The four pixels a point reads and their weights. offset[k] is the pixel's index within its
// image (y * in_w + x), or -1 when the pixel lies outside the image (weight unused).
template <typename T>
struct BilinearTaps {
  int64_t offset[4];
  T weight[4];
};

// The taps of the point at (ix, iy) (positions of type P, weights of the images' type T).
template <typename T, typename P>
SG2_HOST_DEVICE inline BilinearTaps<T> BilinearSampleTaps(const BilinearSampleParams& p, P ix,
                                                          P iy) {
  BilinearTaps<T> taps;
  const bool usable = ix >= P(-1) && ix <= P(p.in_w) && iy >= P(-1) && iy <= P(p.in_h);
  if (!usable) {  // outside (or NaN): all four pixels outside the image
    for (int k = 0; k < 4; ++k) {
      taps.offset[k] = -1;
      taps.weight[k] = T(0);
    }
    return taps;
  }
  const P x0f = floor(ix), y0f = floor(iy);
  const T fx = static_cast<T>(ix - x0f), fy = static_cast<T>(iy - y0f);
  const int64_t x0 = static_cast<int64_t>(x0f), y0 = static_cast<int64_t>(y0f);
  for (int k = 0; k < 4; ++k) {
    const int64_t dy = k >> 1, dx = k & 1;
    const int64_t x = x0 + dx, y = y0 + dy;
    const T wy = dy ? fy : T(1) - fy;
    const T wx = dx ? fx : T(1) - fx;
    const bool inside = x >= 0 && x < p.in_w && y >= 0 && y < p.in_h;
    taps.offset[k] = inside ? y * p.in_w + x : -1;
    taps.weight[k] = wx * wy;
  }
  return taps;
}

// CPU: output rows [row_begin, row_end) of Sample, row r = n * out_h + oy.
template <typename T, typename P>
void BilinearSampleCpuRows(const BilinearSampleParams& p, const T* SG2_RESTRICT x,
                           const P* SG2_RESTRICT ix, const P* SG2_RESTRICT iy,
                           T* SG2_RESTRICT y, int64_t row_begin, int64_t row_end) {
  const int64_t C = p.channels;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t n = r / p.out_h;
    const T* x_img = x + n * p.in_h * p.in_w * C;
    for (int64_t ox = 0; ox < p.out_w; ++ox) {
      const int64_t point = r * p.out_w + ox;
      const BilinearTaps<T> taps = BilinearSampleTaps<T>(p, ix[point], iy[point]);
      T* yp = y + point * C;
      for (int64_t c = 0; c < C; ++c) yp[c] = T(0);
      for (int k = 0; k < 4; ++k) {
        if (taps.offset[k] < 0) continue;
        const T w = taps.weight[k];
        const T* xp = x_img + taps.offset[k] * C;
        for (int64_t c = 0; c < C; ++c) yp[c] += w * xp[c];
      }
    }
  }
}

// CPU: images [n_begin, n_end) of the adjoint, each zeroed and then accumulated from its own
// points only, so images can go to different threads without races.
template <typename T, typename P>
void BilinearSampleAdjointCpuImages(const BilinearSampleParams& p, const T* SG2_RESTRICT dy,
                                    const P* SG2_RESTRICT ix, const P* SG2_RESTRICT iy,
                                    T* SG2_RESTRICT dx, int64_t n_begin, int64_t n_end) {
  const int64_t C = p.channels;
  const int64_t image_size = p.in_h * p.in_w * C;
  const int64_t points = p.out_h * p.out_w;
  for (int64_t n = n_begin; n < n_end; ++n) {
    T* dx_img = dx + n * image_size;
    for (int64_t i = 0; i < image_size; ++i) dx_img[i] = T(0);
    for (int64_t point = n * points; point < (n + 1) * points; ++point) {
      const BilinearTaps<T> taps = BilinearSampleTaps<T>(p, ix[point], iy[point]);
      const T* dyp = dy + point * C;
      for (int k = 0; k < 4; ++k) {
        if (taps.offset[k] < 0) continue;
        const T w = taps.weight[k];
        T* dxp = dx_img + taps.offset[k] * C;
        for (int64_t c = 0; c < C; ++c) dxp[c] += w * dyp[c];
      }
    }
  }
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_BILINEAR_SAMPLE_BILINEAR_SAMPLE_KERNEL_H_
