// Naive reference implementations for the CUDA test harness, written from the
// documented semantics (upfirdn2d_kernel.h, bias_act_kernel.h,
// bilinear_sample_kernel.h) and sharing no code with the kernels. Plain C++:
// builds with g++ and nvcc alike.
#ifndef STYLEGAN2_TF_TESTS_CUDA_REFERENCE_H_
#define STYLEGAN2_TF_TESTS_CUDA_REFERENCE_H_

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ref {

// IEEE binary16 kept as bits, converted with round-to-nearest-even; the host
// stand-in for Eigen::half / __half (same 16-bit layout).
struct Half {
  uint16_t bits;
  Half() = default;
  explicit Half(float f) : bits(FromFloat(f)) {}
  explicit operator float() const { return ToFloat(bits); }

  static uint16_t FromFloat(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t mag = u & 0x7fffffffu;
    if (mag > 0x7f800000u) return sign | 0x7e00u;  // NaN
    if (mag >= 0x477ff000u) return sign | 0x7c00u;  // rounds to infinity (>= 65520)
    if (mag < 0x38800000u) {                        // below 2^-14: subnormal half
      float v;
      std::memcpy(&v, &mag, 4);
      return sign | static_cast<uint16_t>(std::nearbyint(v * 16777216.0f));  // v / 2^-24
    }
    const uint32_t m = mag - 0x38000000u;  // exponent bias 127 -> 15
    return sign | static_cast<uint16_t>((m + 0xfffu + ((m >> 13) & 1u)) >> 13);
  }

  static float ToFloat(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
      const float v = std::ldexp(static_cast<float>(mant), -24);
      std::memcpy(&u, &v, 4);
      u |= sign;
    } else if (exp == 31) {
      u = sign | 0x7f800000u | (mant << 13);
    } else {
      u = sign | ((exp + 112u) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// ---------------------------------------------------------------- upfirdn2d

struct UpfirdnCase {
  int n, h, w, c;      // x: [n, h, w, c]
  int up_x, up_y, down_x, down_y;
  int pad_x0, pad_x1, pad_y0, pad_y1;
  int fh, fw;          // f: [fh, fw]
  bool flip;           // true: correlate, false: convolve
  float gain;
};

// Length after upsample, pad and a valid-mode filter, then downsample.
inline int64_t OutLength(int64_t in, int up, int down, int pad0, int pad1, int taps) {
  const int64_t padded = in * up + pad0 + pad1;
  return padded < taps ? 0 : (padded - taps) / down + 1;
}

// y: [n, out_h, out_w, c] in double, plus sum |tap * x| per output (for tolerances).
inline void Upfirdn2d(const UpfirdnCase& k, const std::vector<float>& x,
                      const std::vector<float>& f, std::vector<double>* y,
                      std::vector<double>* abs_sum) {
  const int64_t uh = int64_t{k.h} * k.up_y, uw = int64_t{k.w} * k.up_x;
  const int64_t ph = uh + k.pad_y0 + k.pad_y1, pw = uw + k.pad_x0 + k.pad_x1;
  const int64_t oh = OutLength(k.h, k.up_y, k.down_y, k.pad_y0, k.pad_y1, k.fh);
  const int64_t ow = OutLength(k.w, k.up_x, k.down_x, k.pad_x0, k.pad_x1, k.fw);
  y->assign(k.n * oh * ow * k.c, 0.0);
  abs_sum->assign(y->size(), 0.0);
  std::vector<double> padded(ph * pw);
  for (int n = 0; n < k.n; ++n) {
    for (int c = 0; c < k.c; ++c) {
      // Steps 1 + 2: zero-insert upsample, then pad (negative padding crops).
      for (int64_t j = 0; j < ph; ++j) {
        for (int64_t i = 0; i < pw; ++i) {
          const int64_t uy = j - k.pad_y0, ux = i - k.pad_x0;
          const bool on_sample = uy >= 0 && uy < uh && ux >= 0 && ux < uw &&
                                 uy % k.up_y == 0 && ux % k.up_x == 0;
          padded[j * pw + i] =
              on_sample ? x[((n * int64_t{k.h} + uy / k.up_y) * k.w + ux / k.up_x) * k.c + c]
                        : 0.0;
        }
      }
      // Steps 3 + 4: valid-mode convolution (correlation when flip), every down-th sample.
      for (int64_t oy = 0; oy < oh; ++oy) {
        for (int64_t ox = 0; ox < ow; ++ox) {
          double acc = 0.0, mag = 0.0;
          for (int ky = 0; ky < k.fh; ++ky) {
            for (int kx = 0; kx < k.fw; ++kx) {
              const double w = k.flip ? f[ky * k.fw + kx]
                                      : f[(k.fh - 1 - ky) * k.fw + (k.fw - 1 - kx)];
              const double v = padded[(oy * k.down_y + ky) * pw + ox * k.down_x + kx];
              acc += w * v;
              mag += std::fabs(w * v);
            }
          }
          const int64_t o = ((n * oh + oy) * ow + ox) * k.c + c;
          (*y)[o] = acc * k.gain;
          (*abs_sum)[o] = mag * std::fabs(k.gain);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- bias_act

constexpr double kSeluScale = 1.0507009873554804934193349852946;
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;

inline double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// act(z) for codes 1..9: linear relu lrelu tanh sigmoid elu selu softplus swish.
inline double Act(int act, double z, double alpha) {
  switch (act) {
    case 1: return z;
    case 2: return z > 0 ? z : 0.0;
    case 3: return z > 0 ? z : alpha * z;
    case 4: return std::tanh(z);
    case 5: return Sigmoid(z);
    case 6: return z >= 0 ? z : std::expm1(z);
    case 7: return kSeluScale * (z >= 0 ? z : kSeluAlpha * std::expm1(z));
    case 8: return std::log1p(std::exp(z));
    case 9: return z * Sigmoid(z);
  }
  return NAN;
}

// act'(z) (order 1) or act''(z) (order 2). Every activation but swish is
// written in terms of a = act(z) (the 'y' kinds read it back from yref); swish
// and linear use z.
inline double ActGrad(int act, int order, double z, double a, double alpha) {
  const bool first = order == 1;
  switch (act) {
    case 1: return first ? 1.0 : 0.0;
    case 2: return first ? (a > 0 ? 1.0 : 0.0) : 0.0;
    case 3: return first ? (a > 0 ? 1.0 : alpha) : 0.0;
    case 4: return first ? 1.0 - a * a : -2.0 * a * (1.0 - a * a);
    case 5: return first ? a * (1.0 - a) : a * (1.0 - a) * (1.0 - 2.0 * a);
    case 6: return a >= 0 ? (first ? 1.0 : 0.0) : a + 1.0;  // exp(z) = a + 1 for z < 0
    case 7: return a >= 0 ? (first ? kSeluScale : 0.0) : a + kSeluScale * kSeluAlpha;
    case 8: {
      const double s = 1.0 - std::exp(-a);  // sigmoid(z), as a = log(1 + e^z)
      return first ? s : s * (1.0 - s);
    }
    case 9: {
      const double s = Sigmoid(z);
      return first ? s + z * s * (1.0 - s) : s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s));
    }
  }
  return NAN;
}

struct BiasActArgs {
  int act, grad;
  double alpha, gain, clamp;  // clamp < 0: off
};

// One element: x, b, and (grad > 0) xref, yref, (grad 2) dy.
inline double BiasAct(const BiasActArgs& a, double x, double b, double xref, double yref,
                      double dy) {
  if (a.grad == 0) {
    const double y = a.gain * Act(a.act, x + b, a.alpha);
    return a.clamp < 0 ? y : std::fmin(std::fmax(y, -a.clamp), a.clamp);
  }
  if (a.clamp >= 0 && !(std::fabs(yref) < a.clamp)) return 0.0;
  const double d = ActGrad(a.act, a.grad, xref + b, yref / a.gain, a.alpha);
  return x * a.gain * d * (a.grad == 2 ? dy : 1.0);
}

// ---------------------------------------------------------- bilinear_sample

struct BilinearCase {
  int n, h, w, c;  // images x / dx: [n, h, w, c]
  int oh, ow;      // positions ix, iy: [n, oh, ow]; y / dy: [n, oh, ow, c]
};

// Weight of the pixel at integer coordinate `pixel` for a point at `pos` along one axis:
// the tent 1 - |pos - pixel|, zero beyond one pixel away (and for NaN or infinite pos).
// The product of both axes' tents is the bilinear weight, and every pixel of the image
// is visited, so positions outside the image need no special case.
inline double Tent(double pos, int64_t pixel) {
  return std::fmax(0.0, 1.0 - std::fabs(pos - static_cast<double>(pixel)));
}

// y[n, oy, ox, c] = sum over all pixels (py, px) of tent(ix - px) tent(iy - py) x[n, py, px, c],
// plus sum |x| over the pixels with a nonzero weight per output (for tolerances).
inline void BilinearSample(const BilinearCase& k, const std::vector<double>& x,
                           const std::vector<double>& ix, const std::vector<double>& iy,
                           std::vector<double>* y, std::vector<double>* abs_sum) {
  const int64_t points = int64_t{k.oh} * k.ow;
  y->assign(k.n * points * k.c, 0.0);
  abs_sum->assign(y->size(), 0.0);
  for (int64_t n = 0; n < k.n; ++n) {
    for (int64_t q = n * points; q < (n + 1) * points; ++q) {
      for (int64_t py = 0; py < k.h; ++py) {
        for (int64_t px = 0; px < k.w; ++px) {
          const double w = Tent(ix[q], px) * Tent(iy[q], py);
          if (w == 0.0) continue;
          for (int64_t c = 0; c < k.c; ++c) {
            const double v = x[((n * k.h + py) * k.w + px) * k.c + c];
            (*y)[q * k.c + c] += w * v;
            (*abs_sum)[q * k.c + c] += std::fabs(v);
          }
        }
      }
    }
  }
}

// The adjoint: dx[n, py, px, c] = sum over the points (oy, ox) of image n of
// tent(ix - px) tent(iy - py) dy[n, oy, ox, c], plus sum |dy| over the points with a
// nonzero weight per pixel (for tolerances).
inline void BilinearSampleAdjoint(const BilinearCase& k, const std::vector<double>& dy,
                                  const std::vector<double>& ix, const std::vector<double>& iy,
                                  std::vector<double>* dx, std::vector<double>* abs_sum) {
  const int64_t points = int64_t{k.oh} * k.ow;
  dx->assign(int64_t{k.n} * k.h * k.w * k.c, 0.0);
  abs_sum->assign(dx->size(), 0.0);
  for (int64_t n = 0; n < k.n; ++n) {
    for (int64_t py = 0; py < k.h; ++py) {
      for (int64_t px = 0; px < k.w; ++px) {
        const int64_t pixel = (n * k.h + py) * k.w + px;
        for (int64_t q = n * points; q < (n + 1) * points; ++q) {
          const double w = Tent(ix[q], px) * Tent(iy[q], py);
          if (w == 0.0) continue;
          for (int64_t c = 0; c < k.c; ++c) {
            (*dx)[pixel * k.c + c] += w * dy[q * k.c + c];
            (*abs_sum)[pixel * k.c + c] += std::fabs(dy[q * k.c + c]);
          }
        }
      }
    }
  }
}

}  // namespace ref

#endif  // STYLEGAN2_TF_TESTS_CUDA_REFERENCE_H_
