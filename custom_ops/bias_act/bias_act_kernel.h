// bias_act: fused bias + activation + gain + clamp, and its first and second
// derivatives, element-wise over a tensor of any layout.
//
// Free of TensorFlow: the TF op (bias_act_kernel.cc), the CUDA kernels
// (bias_act_kernel.cuh) and the standalone test harness (tests/cuda) share it.
//
// With z = xref + b (grad > 0) or z = x + b (grad 0) and a = act(z):
//   grad 0:  y = clamp(gain * act(x + b))                x: input
//   grad 1:  y = x * gain * act'(z) * inside             x: gradient of the grad-0 output
//   grad 2:  y = x * dy * gain * act''(z) * inside       x: gradient of the grad-1 output,
//                                                        dy: the grad-1 op's input gradient
// where inside = |yref| < clamp (1 when clamp < 0), yref = the grad-0 output.
// Activations of kind 'y' read act(z) back from yref / gain; kind 'x' read z.
// For grad > 0 with a bias, the op also sums y over every axis but the bias
// axis: the gradient of the bias, without another pass over memory.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_BIAS_ACT_BIAS_ACT_KERNEL_H_
#define STYLEGAN2_TF_CUSTOM_OPS_BIAS_ACT_BIAS_ACT_KERNEL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "custom_ops/common/host_device.h"

namespace stylegan2 {

// Activation codes; the Python activation table uses the same numbers.
enum BiasActKind : int {
  kActLinear = 1,
  kActRelu = 2,
  kActLrelu = 3,
  kActTanh = 4,
  kActSigmoid = 5,
  kActElu = 6,
  kActSelu = 7,
  kActSoftplus = 8,
  kActSwish = 9,
};

struct BiasActParams {
  int64_t size;         // number of elements of x (and of every other full-size tensor)
  int64_t bias_size;    // length of b along the bias axis; 0 when there is no bias
  int64_t bias_stride;  // elements between consecutive bias indices (product of the
                        // dims after the bias axis); element i uses b[(i / stride) % size]
  int act;              // BiasActKind
  int grad;             // 0, 1 or 2 (see above)
  float alpha;          // lrelu slope
  float gain;           // output scale
  float clamp;          // output clamp; < 0 disables
};

constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;

SG2_HOST_DEVICE inline float SigmoidF(float z) { return 1.0f / (1.0f + expf(-z)); }

// One element. `A`, `G` and `kClamp` (clamp >= 0) are compile-time and the
// body is branch-free selects, so that loops over it vectorize.
// inv_gain: 1 / gain, or 0 when gain is 0.
template <int A, int G, bool kClamp>
SG2_HOST_DEVICE inline float BiasActValue(float x, float b, float xref, float yref, float dy,
                                          float alpha, float gain, float inv_gain, float clamp) {
  const float z = (G == 0) ? x + b : xref + b;
  const float a = yref * inv_gain;  // act(z) for 'y' kinds, G > 0
  float d = 0.0f;  // G 0: act(z); G 1: act'(z); G 2: act''(z)
  if (A == kActLinear) {
    d = (G == 0) ? z : (G == 1) ? 1.0f : 0.0f;
  } else if (A == kActRelu) {
    d = (G == 0) ? (z > 0.0f ? z : 0.0f) : (G == 1) ? (a > 0.0f ? 1.0f : 0.0f) : 0.0f;
  } else if (A == kActLrelu) {
    d = (G == 0) ? (z > 0.0f ? z : z * alpha) : (G == 1) ? (a > 0.0f ? 1.0f : alpha) : 0.0f;
  } else if (A == kActTanh) {
    d = (G == 0) ? tanhf(z) : (G == 1) ? 1.0f - a * a : (1.0f - a * a) * (-2.0f * a);
  } else if (A == kActSigmoid) {
    d = (G == 0) ? SigmoidF(z) : (G == 1) ? a * (1.0f - a) : a * (1.0f - a) * (1.0f - 2.0f * a);
  } else if (A == kActElu) {
    d = (G == 0) ? (z >= 0.0f ? z : expm1f(z))
                 : (G == 1) ? (a >= 0.0f ? 1.0f : a + 1.0f) : (a >= 0.0f ? 0.0f : a + 1.0f);
  } else if (A == kActSelu) {
    d = (G == 0) ? (z >= 0.0f ? kSeluScale * z : kSeluScale * kSeluAlpha * expm1f(z))
        : (G == 1) ? (a >= 0.0f ? kSeluScale : a + kSeluScale * kSeluAlpha)
                   : (a >= 0.0f ? 0.0f : a + kSeluScale * kSeluAlpha);
  } else if (A == kActSoftplus) {
    // act'(z) = sigmoid(z) = 1 - exp(-act(z)).
    const float e = expf(-a);
    d = (G == 0) ? (z > 20.0f ? z : log1pf(expf(z))) : (G == 1) ? 1.0f - e : e * (1.0f - e);
  } else if (A == kActSwish) {
    const float s = SigmoidF(z);
    d = (G == 0) ? z * s
        : (G == 1) ? s * (1.0f + z * (1.0f - s))
                   : s * (1.0f - s) * (2.0f + z * (1.0f - 2.0f * s));
  }
  float y = (G == 0) ? d * gain : x * d * gain * ((G == 2) ? dy : 1.0f);
  if (kClamp) {
    if (G == 0) {
      y = (y > clamp) ? clamp : y;
      y = (y < -clamp) ? -clamp : y;
    } else {
      y = ((yref > -clamp) & (yref < clamp)) ? y : 0.0f;
    }
  }
  return y;
}

SG2_HOST_DEVICE inline float BiasActInvGain(float gain) { return gain != 0.0f ? 1.0f / gain : 0.0f; }

// Which optional inputs (A, G, clamp) reads. Callers pass x in place of the
// others, so every pointer is valid and loops carry no branches on them.
SG2_HOST_DEVICE inline bool BiasActNeedsXref(int act, int grad) {
  return grad > 0 && act == kActSwish;
}
SG2_HOST_DEVICE inline bool BiasActNeedsYref(int act, int grad, float clamp) {
  return grad > 0 && (clamp >= 0.0f || (act != kActLinear && act != kActSwish));
}
SG2_HOST_DEVICE inline bool BiasActNeedsDy(int grad) { return grad == 2; }

// CPU: `len` consecutive elements with one bias run (b_run: per element,
// else b_scalar for all); flat, branch-free loops that vectorize.
template <typename T, int A, int G, bool kClamp>
void BiasActCpuRun(const BiasActParams& p, int64_t len, const T* SG2_RESTRICT x,
                   const T* SG2_RESTRICT b_run, float b_scalar, const T* SG2_RESTRICT xref,
                   const T* SG2_RESTRICT yref, const T* SG2_RESTRICT dy, T* SG2_RESTRICT y) {
  const float alpha = p.alpha, gain = p.gain, clamp = p.clamp;
  const float inv_gain = BiasActInvGain(gain);
  if (b_run) {
    for (int64_t k = 0; k < len; ++k)
      y[k] = static_cast<T>(BiasActValue<A, G, kClamp>(
          static_cast<float>(x[k]), static_cast<float>(b_run[k]), static_cast<float>(xref[k]),
          static_cast<float>(yref[k]), static_cast<float>(dy[k]), alpha, gain, inv_gain, clamp));
  } else {
    for (int64_t k = 0; k < len; ++k)
      y[k] = static_cast<T>(BiasActValue<A, G, kClamp>(
          static_cast<float>(x[k]), b_scalar, static_cast<float>(xref[k]),
          static_cast<float>(yref[k]), static_cast<float>(dy[k]), alpha, gain, inv_gain, clamp));
  }
}

// CPU: adds the outputs of one run to the bias sums (bias index advances with
// k when per_element, else all go to sums[0]). The run is still in cache.
template <typename T>
void BiasActCpuSumRun(const T* SG2_RESTRICT y, int64_t len, bool per_element,
                      double* SG2_RESTRICT sums) {
  if (per_element) {
    for (int64_t k = 0; k < len; ++k) sums[k] += static_cast<double>(static_cast<float>(y[k]));
  } else {
    double total = 0.0;
    for (int64_t k = 0; k < len; ++k) total += static_cast<double>(static_cast<float>(y[k]));
    sums[0] += total;
  }
}

// CPU: elements [begin, end). b is null when bias_size == 0; xref, yref and dy
// are never null (see above). When bias_sum is not null (bias_size doubles),
// each output is also added to bias_sum[its bias index].
template <typename T, int A, int G>
void BiasActCpuRange(const BiasActParams& p, const T* x, const T* b, const T* xref,
                     const T* yref, const T* dy, T* y, double* bias_sum, int64_t begin,
                     int64_t end) {
  const auto run = [&](int64_t i, int64_t len, const T* b_run, float b_scalar) {
    if (p.clamp >= 0.0f) {
      BiasActCpuRun<T, A, G, true>(p, len, x + i, b_run, b_scalar, xref + i, yref + i, dy + i,
                                   y + i);
    } else {
      BiasActCpuRun<T, A, G, false>(p, len, x + i, b_run, b_scalar, xref + i, yref + i, dy + i,
                                    y + i);
    }
  };
  if (p.bias_size == 0) {
    run(begin, end - begin, nullptr, 0.0f);
    return;
  }
  if (p.bias_stride == 1) {
    // Rows of bias_size elements, bias index = position in the row; one division.
    int64_t i = begin;
    int64_t bi = begin % p.bias_size;
    while (i < end) {
      const int64_t len = std::min(p.bias_size - bi, end - i);
      run(i, len, b + bi, 0.0f);
      if (bias_sum != nullptr) BiasActCpuSumRun(y + i, len, true, bias_sum + bi);
      i += len;
      bi = 0;
    }
    return;
  }
  // Runs of bias_stride elements that share one bias value.
  int64_t i = begin;
  while (i < end) {
    const int64_t block = i / p.bias_stride;  // index along the merged [outer, bias] dims
    const int64_t bi = block % p.bias_size;
    const int64_t len = std::min((block + 1) * p.bias_stride, end) - i;
    run(i, len, nullptr, static_cast<float>(b[bi]));
    if (bias_sum != nullptr) BiasActCpuSumRun(y + i, len, false, bias_sum + bi);
    i += len;
  }
}

// Calls fn.template operator()<A, G>() for the runtime (act, grad); false if unknown.
template <typename Fn>
bool BiasActDispatch(int act, int grad, Fn&& fn) {
#define SG2_BIAS_ACT_CASE(A)                       \
  case A:                                          \
    if (grad == 0) fn.template operator()<A, 0>(); \
    else if (grad == 1) fn.template operator()<A, 1>(); \
    else if (grad == 2) fn.template operator()<A, 2>(); \
    else return false;                             \
    return true;
  switch (act) {
    SG2_BIAS_ACT_CASE(kActLinear)
    SG2_BIAS_ACT_CASE(kActRelu)
    SG2_BIAS_ACT_CASE(kActLrelu)
    SG2_BIAS_ACT_CASE(kActTanh)
    SG2_BIAS_ACT_CASE(kActSigmoid)
    SG2_BIAS_ACT_CASE(kActElu)
    SG2_BIAS_ACT_CASE(kActSelu)
    SG2_BIAS_ACT_CASE(kActSoftplus)
    SG2_BIAS_ACT_CASE(kActSwish)
    default:
      return false;
  }
#undef SG2_BIAS_ACT_CASE
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_BIAS_ACT_BIAS_ACT_KERNEL_H_
