// Standalone checks of the upfirdn2d, bias_act and bilinear_sample kernels (no TensorFlow).
//
// 1. The header CPU loops (Upfirdn2dCpuRows, Upfirdn2dCpuColumnRows,
//    Upfirdn2dCpuFewChannelRows, BiasActCpuRange: float and half; BilinearSampleCpuRows,
//    BilinearSampleAdjointCpuImages: float and double) against the naive references in
//    reference.h.  (always)
// 2. The CUDA kernels (.cuh) against the same references.   (nvcc build + GPU)
// 3. CUDA timings on StyleGAN2-sized shapes, in GB/s.       (nvcc build + GPU)
// Built by tests/cuda/run.sh: nvcc compiles all three; `--cpu-only` compiles
// part 1 alone with g++ -x c++ (no __CUDACC__). Exit status 1 on any failure.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <vector>

#include "custom_ops/bias_act/bias_act_kernel.h"
#include "custom_ops/bilinear_sample/bilinear_sample_kernel.h"
#include "custom_ops/upfirdn2d/upfirdn2d_kernel.h"
#include "tests/cuda/reference.h"

#if defined(__CUDACC__)
#include <cuda_fp16.h>

#include "custom_ops/bias_act/bias_act_kernel.cuh"
#include "custom_ops/bilinear_sample/bilinear_sample_kernel.cuh"
#include "custom_ops/upfirdn2d/upfirdn2d_kernel.cuh"
#endif

namespace {

using stylegan2::BiasActParams;
using stylegan2::BilinearSampleParams;
using stylegan2::Upfirdn2dParams;

int g_failures = 0;

void Report(bool ok, const char* what, const char* detail) {
  std::printf("%s %s%s%s\n", ok ? "PASS" : "FAIL", what, detail[0] ? ": " : "", detail);
  if (!ok) ++g_failures;
}

// Converts host values to T (float, double or ref::Half) and back.
template <typename T, typename S>
std::vector<T> Cast(const std::vector<S>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<T>(v[i]);
  return out;
}
template <typename T>
std::vector<float> ToFloat(const std::vector<T>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(v[i]);
  return out;
}
// Rounds every value through T, so that the reference sees the kernel's inputs.
template <typename T>
std::vector<float> Quantize(const std::vector<float>& v) {
  return ToFloat(Cast<T>(v));
}

std::vector<float> Uniform(std::mt19937* rng, size_t n, float lo, float hi) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& e : v) e = dist(*rng);
  return v;
}

// Relative tolerance of a type's output rounding (plus arithmetic in that type or float).
template <typename T>
double Rtol() {
  return sizeof(T) == 2 ? 1.0e-3 : sizeof(T) == 4 ? 2.0e-5 : 1.0e-12;
}

// Counts |got - want| > tol[i] (got: floats or doubles); describes the first miss in `detail`.
template <typename G>
int CountMisses(const std::vector<G>& got, const std::vector<double>& want,
                const std::vector<double>& tol, char* detail, size_t detail_size) {
  int misses = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const bool bad = got.size() != want.size() || !(std::fabs(got[i] - want[i]) <= tol[i]);
    if (bad && misses++ == 0)
      std::snprintf(detail, detail_size, "element %zu: got %.8g, want %.8g (tol %.3g)", i,
                    i < got.size() ? got[i] : NAN, want[i], tol[i]);
  }
  return misses;
}

// One line for a check over `total` cases, `failed` of them failing (the first: `first`).
void ReportCases(const char* what, int total, int failed, const char* first) {
  char line[640];
  std::snprintf(line, sizeof(line), "%d/%d cases%s%s", total - failed, total,
                failed ? "; first: " : "", first);
  Report(failed == 0, what, line);
}

// ------------------------------------------------------------ upfirdn2d cases

Upfirdn2dParams MakeParams(const ref::UpfirdnCase& k) {
  Upfirdn2dParams p{};
  p.batch = k.n, p.in_h = k.h, p.in_w = k.w, p.channels = k.c;
  p.out_h = stylegan2::Upfirdn2dOutSize(k.h, k.up_y, k.down_y, k.pad_y0, k.pad_y1, k.fh);
  p.out_w = stylegan2::Upfirdn2dOutSize(k.w, k.up_x, k.down_x, k.pad_x0, k.pad_x1, k.fw);
  p.up_x = k.up_x, p.up_y = k.up_y, p.down_x = k.down_x, p.down_y = k.down_y;
  p.pad_x0 = k.pad_x0, p.pad_y0 = k.pad_y0, p.filter_h = k.fh, p.filter_w = k.fw;
  p.flip_filter = k.flip, p.gain = k.gain;
  return p;
}

std::vector<ref::UpfirdnCase> UpfirdnCases() {
  std::vector<ref::UpfirdnCase> cases = {
      // StyleGAN2 resampling with a 4x4 filter: up 2, down 2, and plain blur.
      {2, 8, 6, 5, 2, 2, 1, 1, 2, 1, 2, 1, 4, 4, false, 4.0f},
      {2, 8, 6, 5, 1, 1, 2, 2, 1, 1, 1, 1, 4, 4, false, 1.0f},
      {1, 7, 9, 3, 1, 1, 1, 1, 2, 1, 2, 1, 4, 4, true, 1.0f},
      // Separable use: one axis only; negative padding crops.
      {1, 5, 11, 2, 2, 1, 1, 1, 2, 1, 0, 0, 1, 4, false, 2.0f},
      {1, 9, 4, 33, 1, 1, 1, 1, -2, -1, -1, -3, 2, 1, false, 1.0f},
      // Filters too large for shared memory (> 4096 taps): the kernel reads f directly.
      {1, 3, 4, 2, 1, 1, 1, 1, 33, 34, 33, 34, 70, 70, false, 1.0f},
  };
  std::mt19937 rng(1234);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const int factors[] = {1, 2, 4};
  const int channels[] = {1, 3, 4, 8, 17, 32, 45};  // CPU blocks of 16 or 32, 8, the rest; GPU lanes
  const float gains[] = {1.0f, 2.0f, 0.5f, -1.5f};
  while (cases.size() < 400) {
    ref::UpfirdnCase k{};
    k.n = pick(1, 2), k.h = pick(1, 9), k.w = pick(1, 9), k.c = channels[pick(0, 6)];
    k.up_x = factors[pick(0, 2)], k.up_y = factors[pick(0, 2)];
    k.down_x = factors[pick(0, 2)], k.down_y = factors[pick(0, 2)];
    k.fh = pick(1, 6), k.fw = pick(1, 6);
    k.pad_x0 = pick(-3, 5), k.pad_x1 = pick(-3, 5), k.pad_y0 = pick(-3, 5), k.pad_y1 = pick(-3, 5);
    k.flip = pick(0, 1) == 1, k.gain = gains[pick(0, 3)];
    if (ref::OutLength(k.h, k.up_y, k.down_y, k.pad_y0, k.pad_y1, k.fh) >= 1 &&
        ref::OutLength(k.w, k.up_x, k.down_x, k.pad_x0, k.pad_x1, k.fw) >= 1)
      cases.push_back(k);
  }
  return cases;
}

// Column passes (Upfirdn2dIsColumnPass: a [fh, 1] filter, no resampling, padding or cropping
// along x), whose rows of W * C values the CPU loop sums in chunks of 512: rows shorter
// than a chunk, of exactly two, and one value over a chunk boundary.
std::vector<ref::UpfirdnCase> UpfirdnColumnCases() {
  return {
      // n, h, w, c, up (x, y), down (x, y), pad (x0, x1, y0, y1), fh, fw, flip, gain
      {2, 8, 6, 5, 1, 2, 1, 1, 0, 0, 2, 1, 4, 1, false, 2.0f},     // up 2, rows of 30
      {1, 9, 300, 3, 1, 1, 1, 2, 0, 0, 1, 1, 4, 1, false, 1.0f},   // down 2, rows of 900
      {2, 5, 128, 8, 1, 1, 1, 1, 0, 0, 3, 3, 7, 1, true, 1.0f},    // rows of 1024
      {1, 7, 513, 1, 1, 1, 1, 1, 0, 0, -1, 2, 6, 1, false, 0.5f},  // C = 1, crop, rows of 513
      {1, 6, 171, 3, 1, 4, 1, 1, 0, 0, 5, 4, 12, 1, false, 4.0f},  // up 4, 12 taps, rows of 513
      {2, 4, 40, 13, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false, -1.5f},  // one tap: gain only
      {1, 40, 20, 3, 1, 1, 1, 1, 0, 0, 33, 34, 70, 1, false, 1.0f},  // windows clipped both ends
  };
}

// Horizontal passes on pixels of under 8 channels (Upfirdn2dIsFewChannelRowPass), which the
// CPU loop computes as up_x phases over whole rows, then gathers every down_x-th sum.
std::vector<ref::UpfirdnCase> UpfirdnFewChannelRowCases() {
  return {
      // n, h, w, c, up (x, y), down (x, y), pad (x0, x1, y0, y1), fh, fw, flip, gain
      {2, 3, 64, 3, 2, 1, 1, 1, 2, 1, 0, 0, 1, 4, false, 2.0f},    // up 2: an RGB upsample
      {2, 3, 64, 3, 1, 1, 2, 1, 1, 1, 0, 0, 1, 4, true, 1.0f},     // down 2: its gradient
      {1, 2, 37, 7, 4, 1, 2, 1, 3, -2, 0, 0, 1, 9, false, 1.0f},   // up 4, down 2, crop behind
      {1, 4, 20, 1, 3, 1, 2, 1, -4, 5, 0, 0, 1, 5, false, 0.5f},   // C = 1, crop in front
      {1, 2, 9, 6, 2, 1, 3, 1, 0, 7, 0, 0, 1, 2, true, 1.0f},      // up 2, down 3
      {1, 2, 6, 3, 4, 1, 1, 1, 1, 2, 0, 0, 1, 1, false, 1.0f},     // phases without a tap
      {2, 2, 10, 5, 1, 1, 1, 1, 30, 31, 0, 0, 1, 60, false, 1.0f},  // windows clipped both ends
      {1, 3, 17, 2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, false, -1.5f},   // one tap: gain only
  };
}

struct UpfirdnData {
  ref::UpfirdnCase k;
  Upfirdn2dParams p;
  std::vector<float> x, f;  // x already rounded to the tested type
  std::vector<double> want, tol;
};

template <typename T>
UpfirdnData MakeUpfirdnData(const ref::UpfirdnCase& k, std::mt19937* rng) {
  UpfirdnData d{k, MakeParams(k), {}, {}, {}, {}};
  d.x = Quantize<T>(Uniform(rng, size_t{1} * k.n * k.h * k.w * k.c, -2.0f, 2.0f));
  d.f = Uniform(rng, size_t{1} * k.fh * k.fw, -1.0f, 1.0f);
  std::vector<double> abs_sum;
  ref::Upfirdn2d(k, d.x, d.f, &d.want, &abs_sum);
  d.tol.resize(d.want.size());
  for (size_t i = 0; i < d.want.size(); ++i)
    d.tol[i] = Rtol<T>() * std::fabs(d.want[i]) + 1e-6 * abs_sum[i] + 1e-7;
  return d;
}

bool SameOutShape(const UpfirdnData& d) {
  return d.p.out_h == ref::OutLength(d.k.h, d.k.up_y, d.k.down_y, d.k.pad_y0, d.k.pad_y1, d.k.fh) &&
         d.p.out_w == ref::OutLength(d.k.w, d.k.up_x, d.k.down_x, d.k.pad_x0, d.k.pad_x1, d.k.fw);
}

// The header CPU loop, run over two row ranges to exercise row_begin > 0.
template <typename T>
std::vector<float> Upfirdn2dOnCpu(const Upfirdn2dParams& p, const std::vector<float>& x,
                                  const std::vector<float>& f) {
  const std::vector<T> xt = Cast<T>(x);
  std::vector<T> y(p.batch * p.out_h * p.out_w * p.channels);
  std::vector<float> taps(f.size());
  stylegan2::Upfirdn2dCorrelationTaps(p, f.data(), taps.data());
  const int64_t rows = p.batch * p.out_h, split = rows / 3;
  std::vector<stylegan2::AxisWindow> windows(p.out_w);
  stylegan2::Upfirdn2dXWindows(p, windows.data());
  stylegan2::Upfirdn2dCpuRows<T>(p, xt.data(), taps.data(), windows.data(), y.data(), 0, split);
  stylegan2::Upfirdn2dCpuRows<T>(p, xt.data(), taps.data(), windows.data(), y.data(), split,
                                 rows);
  return ToFloat(y);
}

// A whole-row CPU loop, `loop(p, x, taps, y, row_begin, row_end)`, over two row ranges; y
// starts as NaN, so that unwritten values fail, and is empty (a failed comparison) when
// `applies(p)` says the case is not one the loop is for.
template <typename T, typename Applies, typename Loop>
std::vector<float> Upfirdn2dRowLoopOnCpu(Applies applies, Loop loop, const Upfirdn2dParams& p,
                                         const std::vector<float>& x,
                                         const std::vector<float>& f) {
  if (!applies(p)) return {};
  const std::vector<T> xt = Cast<T>(x);
  std::vector<T> y(p.batch * p.out_h * p.out_w * p.channels, T(NAN));
  std::vector<float> taps(f.size());
  stylegan2::Upfirdn2dCorrelationTaps(p, f.data(), taps.data());
  const int64_t bounds[] = {0, p.batch * p.out_h / 3, p.batch * p.out_h};
  for (int r = 0; r < 2; ++r) loop(p, xt.data(), taps.data(), y.data(), bounds[r], bounds[r + 1]);
  return ToFloat(y);
}

template <typename T>
std::vector<float> Upfirdn2dColumnOnCpu(const Upfirdn2dParams& p, const std::vector<float>& x,
                                        const std::vector<float>& f) {
  return Upfirdn2dRowLoopOnCpu<T>(stylegan2::Upfirdn2dIsColumnPass,
                                  stylegan2::Upfirdn2dCpuColumnRows<T>, p, x, f);
}

template <typename T>
std::vector<float> Upfirdn2dFewChannelOnCpu(const Upfirdn2dParams& p,
                                            const std::vector<float>& x,
                                            const std::vector<float>& f) {
  return Upfirdn2dRowLoopOnCpu<T>(stylegan2::Upfirdn2dIsFewChannelRowPass,
                                  stylegan2::Upfirdn2dCpuFewChannelRows<T>, p, x, f);
}

// Runs `run(p, x, f)` (returning y as floats) on every case; one line per type.
template <typename T, typename Run>
void CheckUpfirdn(const char* what, Run run,
                  const std::vector<ref::UpfirdnCase>& cases = UpfirdnCases()) {
  std::mt19937 rng(99);
  int failed = 0, total = 0;
  char detail[512] = "";
  for (const ref::UpfirdnCase& k : cases) {
    const UpfirdnData d = MakeUpfirdnData<T>(k, &rng);
    char miss[256] = "";
    const int misses = SameOutShape(d) ? CountMisses(run(d.p, d.x, d.f), d.want, d.tol, miss,
                                                     sizeof(miss))
                                       : 1;
    ++total;
    if (misses && failed++ == 0)
      std::snprintf(detail, sizeof(detail),
                    "x [%d,%d,%d,%d] up (%d,%d) down (%d,%d) pad (%d,%d,%d,%d) f %dx%d flip %d: "
                    "%d misses, %s",
                    k.n, k.h, k.w, k.c, k.up_x, k.up_y, k.down_x, k.down_y, k.pad_x0, k.pad_x1,
                    k.pad_y0, k.pad_y1, k.fh, k.fw, k.flip, misses, SameOutShape(d) ? miss : "shape");
  }
  ReportCases(what, total, failed, detail);
}

// ------------------------------------------------------------- bias_act cases

struct BiasActShape {
  std::vector<int64_t> dims;
  int axis;  // bias axis, or -1 for no bias
};

const std::vector<BiasActShape>& BiasActShapes() {
  static const std::vector<BiasActShape> shapes = {
      {{2, 3, 5, 7}, 3},   // NHWC bias: stride 1
      {{2, 5, 3, 4}, 1},   // NCHW bias: stride 12
      {{3, 37}, -1},       // no bias; size not a multiple of the vector width
      {{1, 1, 1, 1}, 3},
  };
  return shapes;
}

struct BiasActData {
  BiasActParams p;
  std::vector<float> x, b, xref, yref, dy;  // rounded to the tested type; empty when absent
  std::vector<double> want, tol;
};

template <typename T>
BiasActData MakeBiasActData(const BiasActShape& s, int act, int grad, float clamp, float gain,
                            std::mt19937* rng) {
  BiasActData d{};
  int64_t size = 1;
  for (int64_t e : s.dims) size *= e;
  d.p.size = size;
  d.p.bias_size = s.axis < 0 ? 0 : s.dims[s.axis];
  d.p.bias_stride = 1;
  for (size_t i = s.axis + 1; s.axis >= 0 && i < s.dims.size(); ++i) d.p.bias_stride *= s.dims[i];
  d.p.act = act, d.p.grad = grad, d.p.alpha = 0.2f, d.p.gain = gain, d.p.clamp = clamp;
  const ref::BiasActArgs args{act, grad, d.p.alpha, gain, clamp};
  d.x = Quantize<T>(Uniform(rng, size, -3.0f, 3.0f));
  d.b = Quantize<T>(Uniform(rng, d.p.bias_size, -1.0f, 1.0f));
  auto bias = [&](int64_t i) {
    return d.p.bias_size ? d.b[(i / d.p.bias_stride) % d.p.bias_size] : 0.0;
  };
  // Inputs that the formulas read; absent ones stay empty (x stands in for them).
  // xref: the forward input (only swish reads z); yref: the forward output.
  const bool needs_yref = grad > 0 && (clamp >= 0 || (act != 1 && act != 9));
  const std::vector<float> xref = Quantize<T>(Uniform(rng, size, -3.0f, 3.0f));
  if (grad > 0 && act == 9) d.xref = xref;
  if (needs_yref) {
    std::vector<float> yref(size);
    const ref::BiasActArgs forward{act, 0, d.p.alpha, gain, clamp};
    for (int64_t i = 0; i < size; ++i)
      yref[i] = static_cast<float>(ref::BiasAct(forward, xref[i], bias(i), 0, 0, 0));
    d.yref = Quantize<T>(yref);
  }
  if (grad == 2) d.dy = Quantize<T>(Uniform(rng, size, -2.0f, 2.0f));
  d.want.resize(size);
  d.tol.resize(size);
  for (int64_t i = 0; i < size; ++i) {
    const double xr = d.xref.empty() ? 0.0 : d.xref[i], yr = d.yref.empty() ? 0.0 : d.yref[i];
    const double dy = d.dy.empty() ? 1.0 : d.dy[i];
    d.want[i] = ref::BiasAct(args, d.x[i], bias(i), xr, yr, dy);
    // Float intermediates (e.g. 1 - a * a) lose ~1e-6 of the operands' scale.
    d.tol[i] = Rtol<T>() * std::fabs(d.want[i]) + 1e-5 * (1.0 + std::fabs(d.x[i] * gain * dy));
  }
  return d;
}

// b is null without a bias; x stands in for absent xref, yref, dy.
template <typename T>
const T* OrNull(const std::vector<T>& v) {
  return v.empty() ? nullptr : v.data();
}
template <typename T>
const T* OrX(const std::vector<T>& v, const std::vector<T>& x) {
  return v.empty() ? x.data() : v.data();
}

// BiasActDispatch callback running the header CPU loop over two ranges.
template <typename T>
struct CpuBiasAct {
  const BiasActParams& p;
  const std::vector<T> &x, &b, &xref, &yref, &dy;
  std::vector<T>* y;
  template <int A, int G>
  void operator()() const {
    const int64_t bounds[] = {0, p.size / 3, p.size};
    for (int r = 0; r < 2; ++r)
      stylegan2::BiasActCpuRange<T, A, G>(p, x.data(), OrNull(b), OrX(xref, x), OrX(yref, x),
                                          OrX(dy, x), y->data(), nullptr, bounds[r],
                                          bounds[r + 1]);
  }
};

template <typename T>
std::vector<float> BiasActOnCpu(const BiasActData& d) {
  const std::vector<T> x = Cast<T>(d.x), b = Cast<T>(d.b), xref = Cast<T>(d.xref),
                       yref = Cast<T>(d.yref), dy = Cast<T>(d.dy);
  std::vector<T> y(d.p.size);
  if (!stylegan2::BiasActDispatch(d.p.act, d.p.grad, CpuBiasAct<T>{d.p, x, b, xref, yref, dy, &y}))
    return {};
  return ToFloat(y);
}

// Runs `run(data)` over shapes x activations x grads x clamp; one line per type.
template <typename T, typename Run>
void CheckBiasAct(const char* what, Run run) {
  std::mt19937 rng(7);
  int failed = 0, total = 0;
  char detail[512] = "";
  const float gains[] = {1.0f, 1.41421356f, 0.6f};
  for (const BiasActShape& s : BiasActShapes()) {
    for (int act = 1; act <= 9; ++act) {
      for (int grad = 0; grad <= 2; ++grad) {
        for (float clamp : {-1.0f, 0.8f}) {
          const float gain = gains[total % 3];
          const BiasActData d = MakeBiasActData<T>(s, act, grad, clamp, gain, &rng);
          char miss[256] = "";
          const int misses = CountMisses(run(d), d.want, d.tol, miss, sizeof(miss));
          ++total;
          if (misses && failed++ == 0)
            std::snprintf(detail, sizeof(detail), "act %d grad %d clamp %g gain %g axis %d: %d misses, %s",
                          act, grad, clamp, gain, s.axis, misses, miss);
        }
      }
    }
  }
  ReportCases(what, total, failed, detail);
}

// ------------------------------------------------------ bilinear_sample cases

// Batch > 1, C = 1, 3, 5 and more than a warp, odd sizes, a single pixel, and many points
// per pixel (the GPU adjoint's atomics collide).
std::vector<ref::BilinearCase> BilinearCases() {
  return {
      // n, h, w, c, oh, ow
      {2, 5, 7, 1, 6, 9},   {3, 3, 4, 5, 4, 3},   {2, 7, 3, 3, 5, 5},  {1, 1, 1, 2, 3, 3},
      {2, 9, 11, 5, 7, 13}, {2, 3, 3, 3, 16, 16}, {1, 6, 5, 40, 4, 4}, {1, 4, 5, 3, 12, 12},
  };
}

// Positions along an axis of `size` pixels that the taps must get exactly right: -1 and
// size (the last positions that read the image, with zero weight), just inside and outside
// them, pixel centres and midpoints, and far or non-finite values.
std::vector<double> SpecialPositions(int size) {
  const double s = size;
  return {-1.0, s, -0.999, s - 0.001, -1.25, s + 0.25, 0.0, s - 1.0, -0.5, s - 0.5,
          NAN, INFINITY, -INFINITY, 1e30};
}

// n * oh * ow positions along an axis of `size` pixels, rounded to P (as the kernel sees
// them): a special one with probability 1/3, else uniform over [-1.5, size + 0.5].
template <typename P>
std::vector<double> BilinearPositions(const ref::BilinearCase& k, int size, std::mt19937* rng) {
  const std::vector<double> special = SpecialPositions(size);
  std::uniform_real_distribution<double> uniform(-1.5, size + 0.5);
  std::uniform_int_distribution<size_t> pick(0, 3 * special.size() - 1);
  std::vector<double> v(size_t{1} * k.n * k.oh * k.ow);
  for (double& e : v) {
    const size_t i = pick(*rng);
    e = static_cast<P>(i < special.size() ? special[i] : uniform(*rng));
  }
  return v;
}

struct BilinearData {
  BilinearSampleParams p;
  std::vector<double> in;      // x (sample) or dy (adjoint), values of the tested type
  std::vector<double> ix, iy;  // positions, values of the position type
  std::vector<double> want, tol;
};

// Sample (adjoint false) or adjoint data of case k for images of type T, positions of type P.
template <typename T, typename P>
BilinearData MakeBilinearData(const ref::BilinearCase& k, bool adjoint, std::mt19937* rng) {
  BilinearData d{};
  d.p = {k.n, k.h, k.w, k.c, k.oh, k.ow};
  d.ix = BilinearPositions<P>(k, k.w, rng);
  d.iy = BilinearPositions<P>(k, k.h, rng);
  const int64_t in_size = int64_t{k.n} * (adjoint ? k.oh * k.ow : k.h * k.w) * k.c;
  d.in = Cast<double>(Uniform(rng, in_size, -2.0f, 2.0f));  // floats: exact in T
  std::vector<double> abs_sum;
  if (adjoint) {
    ref::BilinearSampleAdjoint(k, d.in, d.ix, d.iy, &d.want, &abs_sum);
  } else {
    ref::BilinearSample(k, d.in, d.ix, d.iy, &d.want, &abs_sum);
  }
  // The taps take the fraction ix - floor(ix) in P, which rounds it for ix in (-1, 0).
  const double rtol = Rtol<T>() + std::numeric_limits<P>::epsilon();
  d.tol.resize(d.want.size());
  for (size_t i = 0; i < d.want.size(); ++i) d.tol[i] = rtol * abs_sum[i];
  return d;
}

// The header CPU loops, over two ranges each (rows; images) to exercise begin > 0. The
// outputs start as NaN, so that unwritten values fail.
template <typename T, typename P>
std::vector<double> BilinearSampleOnCpu(const BilinearData& d) {
  const std::vector<T> x = Cast<T>(d.in);
  const std::vector<P> ix = Cast<P>(d.ix), iy = Cast<P>(d.iy);
  std::vector<T> y(d.want.size(), T(NAN));
  const int64_t bounds[] = {0, d.p.batch * d.p.out_h / 3, d.p.batch * d.p.out_h};
  for (int r = 0; r < 2; ++r)
    stylegan2::BilinearSampleCpuRows<T, P>(d.p, x.data(), ix.data(), iy.data(), y.data(),
                                           bounds[r], bounds[r + 1]);
  return Cast<double>(y);
}

template <typename T, typename P>
std::vector<double> BilinearSampleAdjointOnCpu(const BilinearData& d) {
  const std::vector<T> dy = Cast<T>(d.in);
  const std::vector<P> ix = Cast<P>(d.ix), iy = Cast<P>(d.iy);
  std::vector<T> dx(d.want.size(), T(NAN));
  const int64_t bounds[] = {0, d.p.batch / 2, d.p.batch};
  for (int r = 0; r < 2; ++r)
    stylegan2::BilinearSampleAdjointCpuImages<T, P>(d.p, dy.data(), ix.data(), iy.data(),
                                                    dx.data(), bounds[r], bounds[r + 1]);
  return Cast<double>(dx);
}

// Runs the sample's or (adjoint) the adjoint's runner on every case, once with float
// positions (run_float: P = float) and once with double (run_double); one line per type T.
using BilinearRun = std::vector<double> (*)(const BilinearData&);
template <typename T>
void CheckBilinear(const char* what, bool adjoint, BilinearRun run_float, BilinearRun run_double) {
  std::mt19937 rng(adjoint ? 11 : 10);
  int failed = 0, total = 0;
  char detail[512] = "";
  for (const ref::BilinearCase& k : BilinearCases()) {
    for (const bool float_positions : {true, false}) {
      const BilinearData d = float_positions ? MakeBilinearData<T, float>(k, adjoint, &rng)
                                             : MakeBilinearData<T, double>(k, adjoint, &rng);
      const BilinearRun run = float_positions ? run_float : run_double;
      char miss[256] = "";
      const int misses = CountMisses(run(d), d.want, d.tol, miss, sizeof(miss));
      ++total;
      if (misses && failed++ == 0)
        std::snprintf(detail, sizeof(detail), "x [%d,%d,%d,%d] points [%d,%d] %s positions: "
                      "%d misses, %s", k.n, k.h, k.w, k.c, k.oh, k.ow,
                      float_positions ? "float" : "double", misses, miss);
    }
  }
  ReportCases(what, total, failed, detail);
}

// The reference derivatives (written in terms of a = act(z)) against central
// differences of the reference activations: checks reference.h itself.
void CheckReferenceDerivatives() {
  const double h = 1e-5, alpha = 0.2;
  int failed = 0;
  for (int act = 1; act <= 9; ++act) {
    for (double z : {-2.3, -0.7, -0.1, 0.35, 1.2, 3.1}) {
      auto grad1 = [&](double t) { return ref::ActGrad(act, 1, t, ref::Act(act, t, alpha), alpha); };
      const double num1 = (ref::Act(act, z + h, alpha) - ref::Act(act, z - h, alpha)) / (2 * h);
      const double num2 = (grad1(z + h) - grad1(z - h)) / (2 * h);
      const double a = ref::Act(act, z, alpha);
      if (std::fabs(ref::ActGrad(act, 1, z, a, alpha) - num1) > 1e-6 ||
          std::fabs(ref::ActGrad(act, 2, z, a, alpha) - num2) > 1e-6)
        ++failed;
    }
  }
  char line[64];
  std::snprintf(line, sizeof(line), "%d mismatches over 9 activations x 6 points", failed);
  Report(failed == 0, "reference act'/act'' match finite differences", line);
}

void CheckHalfConversion() {
  int failed = 0;
  for (uint32_t bits = 0; bits < 0x10000u; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu)) continue;  // NaN payloads
    if (ref::Half::FromFloat(ref::Half::ToFloat(h)) != h) ++failed;
  }
  // Ties round to even: 1 + 2^-11 -> 1, 1 + 3 * 2^-11 -> 1 + 2^-9.
  if (ref::Half::FromFloat(1.0f + std::ldexp(1.0f, -11)) != 0x3c00u) ++failed;
  if (ref::Half::FromFloat(1.0f + 3 * std::ldexp(1.0f, -11)) != 0x3c02u) ++failed;
  if (ref::Half::FromFloat(65520.0f) != 0x7c00u || ref::Half::FromFloat(65519.0f) != 0x7bffu)
    ++failed;
  char line[64];
  std::snprintf(line, sizeof(line), "%d mismatches", failed);
  Report(failed == 0, "reference half conversion round-trips", line);
}

void RunCpuChecks() {
  CheckHalfConversion();
  CheckReferenceDerivatives();
  CheckUpfirdn<float>("cpu Upfirdn2dCpuRows<float>", Upfirdn2dOnCpu<float>);
  CheckUpfirdn<ref::Half>("cpu Upfirdn2dCpuRows<half>", Upfirdn2dOnCpu<ref::Half>);
  CheckUpfirdn<float>("cpu Upfirdn2dCpuColumnRows<float>", Upfirdn2dColumnOnCpu<float>,
                      UpfirdnColumnCases());
  CheckUpfirdn<ref::Half>("cpu Upfirdn2dCpuColumnRows<half>", Upfirdn2dColumnOnCpu<ref::Half>,
                          UpfirdnColumnCases());
  CheckUpfirdn<float>("cpu Upfirdn2dCpuFewChannelRows<float>", Upfirdn2dFewChannelOnCpu<float>,
                      UpfirdnFewChannelRowCases());
  CheckUpfirdn<ref::Half>("cpu Upfirdn2dCpuFewChannelRows<half>",
                          Upfirdn2dFewChannelOnCpu<ref::Half>, UpfirdnFewChannelRowCases());
  CheckBiasAct<float>("cpu BiasActCpuRange<float>", BiasActOnCpu<float>);
  CheckBiasAct<ref::Half>("cpu BiasActCpuRange<half>", BiasActOnCpu<ref::Half>);
  CheckBilinear<float>("cpu BilinearSampleCpuRows<float>", false, BilinearSampleOnCpu<float, float>,
                       BilinearSampleOnCpu<float, double>);
  CheckBilinear<double>("cpu BilinearSampleCpuRows<double>", false,
                        BilinearSampleOnCpu<double, float>, BilinearSampleOnCpu<double, double>);
  CheckBilinear<float>("cpu BilinearSampleAdjointCpuImages<float>", true,
                       BilinearSampleAdjointOnCpu<float, float>,
                       BilinearSampleAdjointOnCpu<float, double>);
  CheckBilinear<double>("cpu BilinearSampleAdjointCpuImages<double>", true,
                        BilinearSampleAdjointOnCpu<double, float>,
                        BilinearSampleAdjointOnCpu<double, double>);
}

}  // namespace

#if defined(__CUDACC__)
#include "tests/cuda/harness_gpu.cuh"
#endif

int main(int argc, char** argv) {
  (void)argc, (void)argv;
  RunCpuChecks();
#if defined(__CUDACC__)
  RunGpuChecksAndTimings();
#else
  std::printf("SKIP built without CUDA (g++): skipped GPU checks\n");
#endif
  std::printf("%s: %d failure(s)\n", g_failures ? "FAILED" : "ALL PASSED", g_failures);
  return g_failures ? 1 : 0;
}
