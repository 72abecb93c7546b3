// CPU (and, with GOOGLE_CUDA, GPU) kernels of StyleGAN2>BilinearSample and its adjoint.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include "custom_ops/bilinear_sample/bilinear_sample_kernel.h"
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

template <typename Device, typename T, typename P>
struct BilinearSampleFunctor;

template <typename T, typename P>
struct BilinearSampleFunctor<CPUDevice, T, P> {
  // y = Sample(x); output rows go to the threads.
  void Sample(OpKernelContext* ctx, const BilinearSampleParams& p, const T* x, const P* ix,
              const P* iy, T* y) {
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    tensorflow::Shard(threads->num_threads, threads->workers, p.batch * p.out_h,
                      p.out_w * (8 * p.channels + 40), [&](int64_t begin, int64_t end) {
      BilinearSampleCpuRows<T, P>(p, x, ix, iy, y, begin, end);
    });
  }

  // dx = Adjoint(dy); whole images go to the threads (no two write the same pixel).
  void Adjoint(OpKernelContext* ctx, const BilinearSampleParams& p, const T* dy, const P* ix,
               const P* iy, T* dx) {
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    const int64_t cost = p.in_h * p.in_w * p.channels + p.out_h * p.out_w * (8 * p.channels + 40);
    tensorflow::Shard(threads->num_threads, threads->workers, p.batch, cost,
                      [&](int64_t begin, int64_t end) {
      BilinearSampleAdjointCpuImages<T, P>(p, dy, ix, iy, dx, begin, end);
    });
  }
};

#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;

// Defined in bilinear_sample_kernel.cu.cc. Return nullptr on success, else the CUDA error.
template <typename T, typename P>
const char* BilinearSampleLaunchGpu(const BilinearSampleParams& p, const T* x, const P* ix,
                                    const P* iy, T* y, void* stream);
template <typename T, typename P>
const char* BilinearSampleAdjointLaunchGpu(const BilinearSampleParams& p, const T* dy,
                                           const P* ix, const P* iy, T* dx, void* stream);

template <typename T, typename P>
struct BilinearSampleFunctor<GPUDevice, T, P> {
  void Sample(OpKernelContext* ctx, const BilinearSampleParams& p, const T* x, const P* ix,
              const P* iy, T* y) {
    const char* error = BilinearSampleLaunchGpu<T, P>(
        p, x, ix, iy, y, ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, error == nullptr,
                tensorflow::errors::Internal("bilinear_sample CUDA launch failed: ", error));
  }

  void Adjoint(OpKernelContext* ctx, const BilinearSampleParams& p, const T* dy, const P* ix,
               const P* iy, T* dx) {
    const char* error = BilinearSampleAdjointLaunchGpu<T, P>(
        p, dy, ix, iy, dx, ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, error == nullptr,
                tensorflow::errors::Internal("bilinear_sample CUDA launch failed: ", error));
  }
};
#endif  // GOOGLE_CUDA

namespace {

// Checks the positions against the 4-D tensor `data` (x, or dy when is_dy: then its H, W
// are the positions' Ho, Wo) and fills the shared sizes; on bad shapes the status says why.
void ReadPositions(OpKernelContext* ctx, const Tensor& data, const Tensor& ix, const Tensor& iy,
                   bool is_dy, BilinearSampleParams* p) {
  OP_REQUIRES(ctx, data.dims() == 4,
              InvalidArgument("bilinear_sample: images must be [N, H, W, C], got shape ",
                              data.shape().DebugString()));
  OP_REQUIRES(ctx, ix.dims() == 3 && ix.shape() == iy.shape() && ix.dim_size(0) == data.dim_size(0),
              InvalidArgument("bilinear_sample: ix and iy must both be [N, Ho, Wo] with the "
                              "images' N = ", data.dim_size(0), ", got ",
                              ix.shape().DebugString(), " and ", iy.shape().DebugString()));
  OP_REQUIRES(ctx, !is_dy || (data.dim_size(1) == ix.dim_size(1) && data.dim_size(2) == ix.dim_size(2)),
              InvalidArgument("bilinear_sample: dy must be [N, Ho, Wo, C] like the positions ",
                              ix.shape().DebugString(), ", got ", data.shape().DebugString()));
  p->batch = data.dim_size(0);
  p->channels = data.dim_size(3);
  p->out_h = ix.dim_size(1);
  p->out_w = ix.dim_size(2);
}

}  // namespace

template <typename Device, typename T, typename P>
class BilinearSampleOp : public OpKernel {
 public:
  explicit BilinearSampleOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& ix = ctx->input(1);
    const Tensor& iy = ctx->input(2);
    BilinearSampleParams p{};
    ReadPositions(ctx, x, ix, iy, /*is_dy=*/false, &p);
    if (!ctx->status().ok()) return;
    p.in_h = x.dim_size(1);
    p.in_w = x.dim_size(2);
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({p.batch, p.out_h, p.out_w, p.channels}), &y));
    if (y->NumElements() == 0) return;
    BilinearSampleFunctor<Device, T, P>().Sample(ctx, p, x.flat<T>().data(), ix.flat<P>().data(),
                                                 iy.flat<P>().data(), y->flat<T>().data());
  }
};

template <typename Device, typename T, typename P>
class BilinearSampleAdjointOp : public OpKernel {
 public:
  explicit BilinearSampleAdjointOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& dy = ctx->input(0);
    const Tensor& ix = ctx->input(1);
    const Tensor& iy = ctx->input(2);
    const Tensor& size = ctx->input(3);
    BilinearSampleParams p{};
    ReadPositions(ctx, dy, ix, iy, /*is_dy=*/true, &p);
    if (!ctx->status().ok()) return;
    OP_REQUIRES(ctx, size.dims() == 1 && size.dim_size(0) == 2,
                InvalidArgument("bilinear_sample: image_size must be [2] (H, W), got shape ",
                                size.shape().DebugString()));
    const auto hw = size.flat<int32_t>();
    OP_REQUIRES(ctx, hw(0) >= 0 && hw(1) >= 0,
                InvalidArgument("bilinear_sample: negative image size ", hw(0), " x ", hw(1)));
    p.in_h = hw(0);
    p.in_w = hw(1);
    Tensor* dx = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, TensorShape({p.batch, p.in_h, p.in_w, p.channels}), &dx));
    if (dx->NumElements() == 0) return;
    BilinearSampleFunctor<Device, T, P>().Adjoint(ctx, p, dy.flat<T>().data(),
                                                  ix.flat<P>().data(), iy.flat<P>().data(),
                                                  dx->flat<T>().data());
  }
};

#define SG2_REGISTER_BILINEAR_SAMPLE(DEVICE, DEVICE_TYPE, T, P)                       \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2>BilinearSample")                            \
                              .Device(tensorflow::DEVICE)                             \
                              .TypeConstraint<T>("T")                                 \
                              .TypeConstraint<P>("P"),                                \
                          BilinearSampleOp<DEVICE_TYPE, T, P>);                       \
  REGISTER_KERNEL_BUILDER(Name("StyleGAN2>BilinearSampleAdjoint")                     \
                              .Device(tensorflow::DEVICE)                             \
                              .TypeConstraint<T>("T")                                 \
                              .TypeConstraint<P>("P")                                 \
                              .HostMemory("image_size"),                              \
                          BilinearSampleAdjointOp<DEVICE_TYPE, T, P>);

SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_CPU, CPUDevice, float, float)
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_CPU, CPUDevice, float, double)
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_CPU, CPUDevice, double, float)
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_CPU, CPUDevice, double, double)
#if GOOGLE_CUDA
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_GPU, GPUDevice, float, float)
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_GPU, GPUDevice, float, double)
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_GPU, GPUDevice, double, float)
SG2_REGISTER_BILINEAR_SAMPLE(DEVICE_GPU, GPUDevice, double, double)
#endif
#undef SG2_REGISTER_BILINEAR_SAMPLE

}  // namespace stylegan2
