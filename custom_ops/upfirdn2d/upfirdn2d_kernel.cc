// CPU (and, with GOOGLE_CUDA, GPU) kernels of StyleGAN2>Upfirdn2d.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "custom_ops/upfirdn2d/upfirdn2d_kernel.h"
#if SG2_HAVE_AVX512_KERNELS
#include "custom_ops/upfirdn2d/upfirdn2d_cpu_avx512.h"
#endif
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/util/work_sharder.h"

namespace stylegan2 {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;

using CPUDevice = Eigen::ThreadPoolDevice;

// True when float CPU work goes to the AVX-512 copy of the loops: it is built in, the CPU and
// the OS run AVX-512, and the environment variable STYLEGAN2_TF_CPU_ISA is not "baseline"
// (which keeps the baseline copy, e.g. to compare the two). Decided once per process.
bool Upfirdn2dUseAvx512() {
#if SG2_HAVE_AVX512_KERNELS
  static const bool use = [] {
    const char* isa = std::getenv("STYLEGAN2_TF_CPU_ISA");
    if (isa != nullptr && std::strcmp(isa, "baseline") == 0) return false;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  }();
  return use;
#else
  return false;
#endif
}

template <typename Device, typename T>
struct Upfirdn2dFunctor;

template <typename T>
struct Upfirdn2dFunctor<CPUDevice, T> {
  void operator()(OpKernelContext* ctx, const Upfirdn2dParams& p, const T* x, const float* f,
                  T* y) {
    std::vector<float> taps(static_cast<size_t>(p.filter_h) * p.filter_w);
    Upfirdn2dCorrelationTaps(p, f, taps.data());
    std::vector<AxisWindow> x_windows(static_cast<size_t>(p.out_w));
    Upfirdn2dXWindows(p, x_windows.data());
    const int64_t rows = p.batch * p.out_h;
    // Multiply-adds per output row, with the zeros of upsampling skipped.
    const int64_t taps_per_output =
        std::max<int64_t>(1, (p.filter_h / p.up_y) * (p.filter_w / p.up_x));
    const int64_t cost_per_row = p.out_w * p.channels * taps_per_output * 2 + p.out_w * 20;
    const float* tap_data = taps.data();
    const AxisWindow* windows = x_windows.data();
    const bool column_pass = Upfirdn2dIsColumnPass(p);
    const bool few_channel_row_pass = Upfirdn2dIsFewChannelRowPass(p);
    [[maybe_unused]] const bool use_avx512 = Upfirdn2dUseAvx512();
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(threads->num_threads, threads->workers, rows, cost_per_row,
                      [&](int64_t begin, int64_t end) {
      if (column_pass) {
        Upfirdn2dCpuColumnRows<T>(p, x, tap_data, y, begin, end);
        return;
      }
      if (few_channel_row_pass) {
        Upfirdn2dCpuFewChannelRows<T>(p, x, tap_data, y, begin, end);
        return;
      }
#if SG2_HAVE_AVX512_KERNELS
      if constexpr (std::is_same_v<T, float>) {
        if (use_avx512) return Upfirdn2dCpuRowsAvx512(p, x, tap_data, windows, y, begin, end);
      }
#endif
      Upfirdn2dCpuRows<T>(p, x, tap_data, windows, y, begin, end);
    });
  }
};

#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;

// Defined in upfirdn2d_kernel.cu.cc. Returns nullptr on success, else the CUDA error string.
template <typename T>
const char* Upfirdn2dLaunchGpu(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                               void* stream);

template <typename T>
struct Upfirdn2dFunctor<GPUDevice, T> {
  void operator()(OpKernelContext* ctx, const Upfirdn2dParams& p, const T* x, const float* f,
                  T* y) {
    const char* error =
        Upfirdn2dLaunchGpu<T>(p, x, f, y, ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, error == nullptr,
                tensorflow::errors::Internal("upfirdn2d CUDA launch failed: ", error));
  }
};
#endif  // GOOGLE_CUDA

template <typename Device, typename T>
class Upfirdn2dOp : public OpKernel {
 public:
  explicit Upfirdn2dOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("up_x", &p_.up_x));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("up_y", &p_.up_y));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("down_x", &p_.down_x));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("down_y", &p_.down_y));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_x0", &p_.pad_x0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_x1", &pad_x1_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_y0", &p_.pad_y0));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("pad_y1", &pad_y1_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("flip_filter", &p_.flip_filter));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gain", &p_.gain));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& f = ctx->input(1);
    OP_REQUIRES(ctx, x.dims() == 4,
                InvalidArgument("upfirdn2d: x must be [N, H, W, C], got shape ",
                                x.shape().DebugString()));
    OP_REQUIRES(ctx, f.dims() == 2 && f.dim_size(0) > 0 && f.dim_size(1) > 0,
                InvalidArgument("upfirdn2d: f must be a non-empty [filter_h, filter_w] filter, "
                                "got shape ",
                                f.shape().DebugString()));
    Upfirdn2dParams p = p_;
    p.batch = x.dim_size(0);
    p.in_h = x.dim_size(1);
    p.in_w = x.dim_size(2);
    p.channels = x.dim_size(3);
    p.filter_h = static_cast<int>(f.dim_size(0));
    p.filter_w = static_cast<int>(f.dim_size(1));
    p.out_h = Upfirdn2dOutSize(p.in_h, p.up_y, p.down_y, p.pad_y0, pad_y1_, p.filter_h);
    p.out_w = Upfirdn2dOutSize(p.in_w, p.up_x, p.down_x, p.pad_x0, pad_x1_, p.filter_w);
    OP_REQUIRES(ctx, p.out_h >= 1 && p.out_w >= 1,
                InvalidArgument("upfirdn2d: empty output for input ", x.shape().DebugString(),
                                ", filter ", f.shape().DebugString(), ", up (", p.up_x, ", ",
                                p.up_y, "), padding (", p.pad_x0, ", ", pad_x1_, ", ", p.pad_y0,
                                ", ", pad_y1_, ")"));
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({p.batch, p.out_h, p.out_w, p.channels}), &y));
    if (y->NumElements() == 0) return;
    Upfirdn2dFunctor<Device, T>()(ctx, p, x.flat<T>().data(), f.flat<float>().data(),
                                  y->flat<T>().data());
  }

 private:
  Upfirdn2dParams p_{};
  int pad_x1_ = 0;
  int pad_y1_ = 0;
};

#define SG2_REGISTER_UPFIRDN2D(DEVICE, DEVICE_TYPE, T)                                    \
  REGISTER_KERNEL_BUILDER(                                                                \
      Name("StyleGAN2>Upfirdn2d").Device(tensorflow::DEVICE).TypeConstraint<T>("T"), \
      Upfirdn2dOp<DEVICE_TYPE, T>);

SG2_REGISTER_UPFIRDN2D(DEVICE_CPU, CPUDevice, float)
SG2_REGISTER_UPFIRDN2D(DEVICE_CPU, CPUDevice, Eigen::half)
#if GOOGLE_CUDA
SG2_REGISTER_UPFIRDN2D(DEVICE_GPU, GPUDevice, float)
SG2_REGISTER_UPFIRDN2D(DEVICE_GPU, GPUDevice, Eigen::half)
#endif
#undef SG2_REGISTER_UPFIRDN2D

}  // namespace stylegan2
