// GPU half of harness.cu (included there under __CUDACC__, after the CPU
// checks): the .cuh kernels against the naive references, then timings.
#ifndef STYLEGAN2_TF_TESTS_CUDA_HARNESS_GPU_CUH_
#define STYLEGAN2_TF_TESTS_CUDA_HARNESS_GPU_CUH_

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstring>
#include <vector>

namespace {

// Host type with the device type's bits: float, double as they are, __half -> ref::Half.
template <typename D>
struct HostOf {
  using type = D;
};
template <>
struct HostOf<__half> {
  using type = ref::Half;
};

// Device allocations of one call, freed together. Buffers are filled with
// 0xff bytes (NaN in float and half) so that unwritten outputs fail.
class Arena {
 public:
  ~Arena() {
    for (void* p : blocks_) cudaFree(p);
  }
  // `offset` elements past a 256-byte aligned allocation (misaligned when > 0).
  template <typename D>
  D* Alloc(size_t n, size_t offset = 0) {
    void* p = nullptr;
    if (cudaMalloc(&p, (n + offset) * sizeof(D)) != cudaSuccess) return nullptr;
    blocks_.push_back(p);
    cudaMemset(p, 0xff, (n + offset) * sizeof(D));
    return static_cast<D*>(p) + offset;
  }
  // Copies host values (converted to D's host type) to the device.
  template <typename D, typename S>
  D* Upload(const std::vector<S>& v, size_t offset = 0) {
    using H = typename HostOf<D>::type;
    static_assert(sizeof(H) == sizeof(D), "host and device types differ in size");
    const std::vector<H> host = Cast<H>(v);
    D* d = Alloc<D>(v.size(), offset);
    if (d) cudaMemcpy(d, host.data(), v.size() * sizeof(D), cudaMemcpyHostToDevice);
    return d;
  }

 private:
  std::vector<void*> blocks_;
};

// n values of device memory, converted to R.
template <typename R = float, typename D>
std::vector<R> Download(const D* d, size_t n) {
  std::vector<typename HostOf<D>::type> host(n);
  cudaMemcpy(host.data(), d, n * sizeof(D), cudaMemcpyDeviceToHost);
  return Cast<R>(host);
}

// Returns y, or nothing (a failed comparison) when a CUDA call fails. kOffset > 0
// misaligns x and y (one-element packs); kWideIndex forces 64-bit index arithmetic.
template <typename D, int kOffset = 0, bool kWideIndex = false>
std::vector<float> Upfirdn2dOnGpu(const Upfirdn2dParams& p, const std::vector<float>& x,
                                  const std::vector<float>& f) {
  Arena arena;
  const size_t out = p.batch * p.out_h * p.out_w * p.channels;
  const D* dx = arena.Upload<D>(x, kOffset);
  const float* df = arena.Upload<float>(f);
  D* dy = arena.Alloc<D>(out, kOffset);
  if (!dx || !df || !dy) return {};
  if (stylegan2::Upfirdn2dCuda<D>(p, dx, df, dy, nullptr, kWideIndex) != cudaSuccess) return {};
  if (cudaDeviceSynchronize() != cudaSuccess) return {};
  return Download(dy, out);
}

// kOffset > 0 misaligns every array, forcing the one-element path. b is null
// without a bias; x stands in for absent xref, yref, dy.
template <typename D, int kOffset>
std::vector<float> BiasActOnGpu(const BiasActData& d) {
  Arena arena;
  const D* x = arena.Upload<D>(d.x, kOffset);
  auto upload = [&](const std::vector<float>& v, const D* absent) -> const D* {
    return v.empty() ? absent : arena.Upload<D>(v, kOffset);
  };
  D* y = arena.Alloc<D>(d.p.size, kOffset);
  const cudaError_t error =
      stylegan2::BiasActCuda<D>(d.p, x, upload(d.b, nullptr), upload(d.xref, x),
                                upload(d.yref, x), upload(d.dy, x), y, nullptr, nullptr,
                                nullptr);
  if (error != cudaSuccess || cudaDeviceSynchronize() != cudaSuccess) return {};
  return Download(y, d.p.size);
}

// y, or nothing (a failed comparison) when a CUDA call fails; y starts as NaN.
template <typename T, typename P>
std::vector<double> BilinearSampleOnGpu(const BilinearData& d) {
  Arena arena;
  const T* x = arena.Upload<T>(d.in);
  const P* ix = arena.Upload<P>(d.ix);
  const P* iy = arena.Upload<P>(d.iy);
  T* y = arena.Alloc<T>(d.want.size());
  if (!x || !ix || !iy || !y) return {};
  if (stylegan2::BilinearSampleCuda<T, P>(d.p, x, ix, iy, y, nullptr) != cudaSuccess) return {};
  if (cudaDeviceSynchronize() != cudaSuccess) return {};
  return Download<double>(y, d.want.size());
}

// dx, or nothing when a CUDA call fails; dx starts as NaN (the launch must zero it).
template <typename T, typename P>
std::vector<double> BilinearSampleAdjointOnGpu(const BilinearData& d) {
  Arena arena;
  const T* dy = arena.Upload<T>(d.in);
  const P* ix = arena.Upload<P>(d.ix);
  const P* iy = arena.Upload<P>(d.iy);
  T* dx = arena.Alloc<T>(d.want.size());
  if (!dy || !ix || !iy || !dx) return {};
  if (stylegan2::BilinearSampleAdjointCuda<T, P>(d.p, dy, ix, iy, dx, nullptr) != cudaSuccess)
    return {};
  if (cudaDeviceSynchronize() != cudaSuccess) return {};
  return Download<double>(dx, d.want.size());
}

// |gpu - cpu| <= rtol * |cpu| + atol everywhere.
void CompareToCpu(const char* what, const std::vector<float>& gpu, const std::vector<float>& cpu,
                  double rtol, double atol) {
  std::vector<double> want(cpu.begin(), cpu.end()), tol(cpu.size());
  for (size_t i = 0; i < cpu.size(); ++i) tol[i] = rtol * std::fabs(cpu[i]) + atol;
  char miss[256] = "";
  const int misses = CountMisses(gpu, want, tol, miss, sizeof(miss));
  Report(misses == 0, what, misses ? miss : "");
}

// Mean milliseconds of `launch()` over `iters` runs, after warm-up.
template <typename Launch>
float TimeMs(Launch launch, int iters = 20) {
  for (int i = 0; i < 3; ++i) launch();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start);
  for (int i = 0; i < iters; ++i) launch();
  cudaEventRecord(stop);
  cudaEventSynchronize(stop);
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms / iters;
}

// The limits each timing is compared to (MeasureBandwidthLimits): bytes read + written per
// second of a device-to-device copy, and the memory's nominal peak.
double g_copy_gbps = 0.0;
double g_peak_gbps = 0.0;

void MeasureBandwidthLimits() {
  const size_t bytes = size_t{256} << 20;
  void* a = nullptr;
  void* b = nullptr;
  if (cudaMalloc(&a, bytes) == cudaSuccess && cudaMalloc(&b, bytes) == cudaSuccess) {
    cudaMemset(a, 0, bytes);
    const float ms = TimeMs([&] { cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice); });
    g_copy_gbps = 2.0 * bytes / (ms * 1e-3) / 1e9;
  }
  cudaFree(a);
  cudaFree(b);
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  g_peak_gbps = 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;  // two transfers per clock
  std::printf("LIMIT copy %.1f GB/s (cudaMemcpy device to device, 256 MiB), nominal peak %.1f GB/s "
              "(%d-bit bus at %d MHz)\n", g_copy_gbps, g_peak_gbps, bus_bits, clock_khz / 1000);
}

// One timing: milliseconds, GB/s, and the fractions of the copy rate and of the peak.
void PrintTime(const char* what, float ms, double bytes) {
  const double gbps = bytes / (ms * 1e-3) / 1e9;
  std::printf("TIME %-46s %8.3f ms %8.1f GB/s  %.2f of copy  %.2f of peak\n", what, ms, gbps,
              g_copy_gbps > 0 ? gbps / g_copy_gbps : 0.0, g_peak_gbps > 0 ? gbps / g_peak_gbps : 0.0);
}

// x [4, 256, 256, 64] with StyleGAN2's [1, 3, 3, 1] filter: 2x up or 2x down.
template <typename D>
void TimeUpfirdn2d(const char* what, int up, int down) {
  const int taps = 4;
  ref::UpfirdnCase k{4, 256, 256, 64, up, up, down, down, 0, 0, 0, 0, taps, taps, false, 1.0f};
  const int p0 = up > 1 ? (taps + up - 1) / 2 : (taps - down + 1) / 2;
  const int p1 = up > 1 ? (taps - up) / 2 : (taps - down) / 2;
  k.pad_x0 = k.pad_y0 = p0, k.pad_x1 = k.pad_y1 = p1, k.gain = static_cast<float>(up * up);
  const Upfirdn2dParams p = MakeParams(k);
  const float f1[taps] = {1, 3, 3, 1};
  std::vector<float> f(taps * taps);
  for (int i = 0; i < taps * taps; ++i) f[i] = f1[i / taps] * f1[i % taps] / 64.0f;
  std::mt19937 rng(5);
  const std::vector<float> x = Uniform(&rng, size_t{1} * k.n * k.h * k.w * k.c, -1.0f, 1.0f);
  const size_t out = p.batch * p.out_h * p.out_w * p.channels;
  Arena arena;
  const D* dx = arena.Upload<D>(x);
  const float* df = arena.Upload<float>(f);
  D* dy = arena.Alloc<D>(out);
  if (!dx || !df || !dy) return Report(false, what, "cudaMalloc failed");
  const float ms = TimeMs([&] { stylegan2::Upfirdn2dCuda<D>(p, dx, df, dy, nullptr); });
  PrintTime(what, ms, double(x.size() + out) * sizeof(D));
  using H = typename HostOf<D>::type;
  const std::vector<float> cpu = Upfirdn2dOnCpu<H>(p, Quantize<H>(x), f);
  CompareToCpu(what, Download(dy, out), cpu, 2.0 * Rtol<H>(), 1e-6);
}

// bias_act lrelu on x [4, 128, 128, 512] with a channel bias: forward, or grad 1 (reads yref).
template <typename D>
void TimeBiasAct(const char* what, int grad) {
  BiasActParams p{};
  p.size = int64_t{4} * 128 * 128 * 512, p.bias_size = 512, p.bias_stride = 1;
  p.act = stylegan2::kActLrelu, p.grad = grad, p.alpha = 0.2f, p.gain = 1.41421356f, p.clamp = 256;
  std::mt19937 rng(6);
  const std::vector<float> x = Uniform(&rng, p.size, -3.0f, 3.0f);
  const std::vector<float> b = Uniform(&rng, p.bias_size, -1.0f, 1.0f);
  const std::vector<float> yref = grad ? Uniform(&rng, p.size, -3.0f, 3.0f) : std::vector<float>();
  Arena arena;
  const D* dx = arena.Upload<D>(x);
  const D* db = arena.Upload<D>(b);
  const D* dyref = grad ? arena.Upload<D>(yref) : nullptr;
  D* dy = arena.Alloc<D>(p.size);
  if (!dx || !db || !dy || (grad && !dyref)) return Report(false, what, "cudaMalloc failed");
  const D* dyref_or_x = grad ? dyref : dx;
  const float ms = TimeMs(
      [&] { stylegan2::BiasActCuda<D>(p, dx, db, dx, dyref_or_x, dx, dy, nullptr, nullptr,
                                        nullptr); });
  PrintTime(what, ms, double(p.size) * (grad ? 3 : 2) * sizeof(D));
  using H = typename HostOf<D>::type;
  BiasActData d{};
  d.p = p, d.x = Quantize<H>(x), d.b = Quantize<H>(b), d.yref = Quantize<H>(yref);
  CompareToCpu(what, Download(dy, p.size), BiasActOnCpu<H>(d), 2.0 * Rtol<H>(), 1e-6);
}

// bilinear_sample of float images [4, 256, 256, 3] at float positions rotated by 10 degrees
// and scaled by 1.1 about the centre (an augmentation's geometric transform), or its adjoint.
void TimeBilinearSample(const char* what, bool adjoint) {
  const int64_t n = 4, size = 256, c = 3;
  const BilinearSampleParams p{n, size, size, c, size, size};
  std::vector<float> ix(n * size * size), iy(ix.size());
  const double angle = 0.17453292519943295;  // 10 degrees
  const double cs = 1.1 * std::cos(angle), sn = 1.1 * std::sin(angle), mid = (size - 1) / 2.0;
  for (size_t i = 0; i < ix.size(); ++i) {
    const double u = double(i % size) - mid, v = double(i / size % size) - mid;
    ix[i] = static_cast<float>(mid + cs * u - sn * v);
    iy[i] = static_cast<float>(mid + sn * u + cs * v);
  }
  std::mt19937 rng(8);
  const std::vector<float> in = Uniform(&rng, n * size * size * c, -1.0f, 1.0f);
  Arena arena;
  const float* d_in = arena.Upload<float>(in);
  const float* d_ix = arena.Upload<float>(ix);
  const float* d_iy = arena.Upload<float>(iy);
  float* d_out = arena.Alloc<float>(in.size());
  if (!d_in || !d_ix || !d_iy || !d_out) return Report(false, what, "cudaMalloc failed");
  const float ms = TimeMs([&] {
    if (adjoint) {
      stylegan2::BilinearSampleAdjointCuda<float, float>(p, d_in, d_ix, d_iy, d_out, nullptr);
    } else {
      stylegan2::BilinearSampleCuda<float, float>(p, d_in, d_ix, d_iy, d_out, nullptr);
    }
  });
  PrintTime(what, ms, double(2 * in.size() + ix.size() + iy.size()) * sizeof(float));
  std::vector<float> cpu(in.size());
  if (adjoint) {
    stylegan2::BilinearSampleAdjointCpuImages<float, float>(p, in.data(), ix.data(), iy.data(),
                                                            cpu.data(), 0, n);
  } else {
    stylegan2::BilinearSampleCpuRows<float, float>(p, in.data(), ix.data(), iy.data(), cpu.data(),
                                                   0, n * size);
  }
  CompareToCpu(what, Download(d_out, in.size()), cpu, 1e-5, 1e-6);
}

// BiasSumCuda against double sums on the host, bias axis last (stride 1) and inner.
void CheckBiasSum() {
  std::mt19937 rng(5);
  int failed = 0;
  for (const int64_t stride : {int64_t{1}, int64_t{35}}) {
    BiasActParams p{};
    p.bias_size = 37;
    p.bias_stride = stride;
    p.size = 3 * 37 * stride * (stride == 1 ? 41 : 1);
    const std::vector<float> y = Uniform(&rng, p.size, -1.0f, 1.0f);
    std::vector<double> expected(p.bias_size, 0.0);
    for (int64_t i = 0; i < p.size; ++i) expected[(i / stride) % p.bias_size] += y[i];
    Arena arena;
    const float* dy = arena.Upload<float>(y);
    float* db = arena.Alloc<float>(p.bias_size);
    float* scratch = arena.Alloc<float>(p.bias_size);
    if (stylegan2::BiasSumCuda<float>(p, dy, db, scratch, nullptr) != cudaSuccess ||
        cudaDeviceSynchronize() != cudaSuccess) {
      ++failed;
      continue;
    }
    const std::vector<float> got = Download(db, p.bias_size);
    for (int64_t c = 0; c < p.bias_size; ++c)
      if (std::fabs(got[c] - expected[c]) > 1e-4 * (1.0 + std::fabs(expected[c]))) ++failed;
  }
  Report(failed == 0, "gpu BiasSumCuda<float> (bias gradient)", failed ? "mismatch" : "");
}

void RunGpuChecksAndTimings() {
  int count = 0;
  const cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess || count == 0) {
    std::printf("SKIP no CUDA device: skipped GPU checks (%s)\n",
                error != cudaSuccess ? cudaGetErrorString(error) : "0 devices");
    return;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  std::printf("INFO device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  CheckUpfirdn<float>("gpu Upfirdn2dCuda<float>", Upfirdn2dOnGpu<float>);
  CheckUpfirdn<ref::Half>("gpu Upfirdn2dCuda<__half>", Upfirdn2dOnGpu<__half>);
  CheckUpfirdn<float>("gpu Upfirdn2dCuda<float> misaligned", Upfirdn2dOnGpu<float, 1>);
  CheckUpfirdn<ref::Half>("gpu Upfirdn2dCuda<__half> misaligned", Upfirdn2dOnGpu<__half, 1>);
  CheckUpfirdn<float>("gpu Upfirdn2dCuda<float> 64-bit index", Upfirdn2dOnGpu<float, 0, true>);
  CheckUpfirdn<ref::Half>("gpu Upfirdn2dCuda<__half> 64-bit index",
                          Upfirdn2dOnGpu<__half, 0, true>);
  CheckBiasAct<float>("gpu BiasActCuda<float>", BiasActOnGpu<float, 0>);
  CheckBiasAct<ref::Half>("gpu BiasActCuda<__half>", BiasActOnGpu<__half, 0>);
  CheckBiasAct<float>("gpu BiasActCuda<float> misaligned", BiasActOnGpu<float, 1>);
  CheckBiasAct<ref::Half>("gpu BiasActCuda<__half> misaligned", BiasActOnGpu<__half, 3>);
  CheckBiasSum();
  CheckBilinear<float>("gpu BilinearSampleCuda<float>", false, BilinearSampleOnGpu<float, float>,
                       BilinearSampleOnGpu<float, double>);
  CheckBilinear<double>("gpu BilinearSampleCuda<double>", false, BilinearSampleOnGpu<double, float>,
                        BilinearSampleOnGpu<double, double>);
  CheckBilinear<float>("gpu BilinearSampleAdjointCuda<float>", true,
                       BilinearSampleAdjointOnGpu<float, float>,
                       BilinearSampleAdjointOnGpu<float, double>);
  CheckBilinear<double>("gpu BilinearSampleAdjointCuda<double>", true,
                        BilinearSampleAdjointOnGpu<double, float>,
                        BilinearSampleAdjointOnGpu<double, double>);
  MeasureBandwidthLimits();
  TimeUpfirdn2d<float>("upfirdn2d float [4,256,256,64] up2 4x4", 2, 1);
  TimeUpfirdn2d<float>("upfirdn2d float [4,256,256,64] down2 4x4", 1, 2);
  TimeUpfirdn2d<__half>("upfirdn2d half [4,256,256,64] up2 4x4", 2, 1);
  TimeUpfirdn2d<__half>("upfirdn2d half [4,256,256,64] down2 4x4", 1, 2);
  TimeBiasAct<float>("bias_act float lrelu [4,128,128,512]", 0);
  TimeBiasAct<float>("bias_act float lrelu grad1 [4,128,128,512]", 1);
  TimeBiasAct<__half>("bias_act half lrelu [4,128,128,512]", 0);
  TimeBiasAct<__half>("bias_act half lrelu grad1 [4,128,128,512]", 1);
  TimeBilinearSample("bilinear_sample float [4,256,256,3]", false);
  TimeBilinearSample("bilinear_sample adjoint float [4,256,256,3]", true);
}

}  // namespace

#endif  // STYLEGAN2_TF_TESTS_CUDA_HARNESS_GPU_CUH_
