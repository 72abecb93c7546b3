// CPU (and, with GOOGLE_CUDA, GPU) kernels of StyleGAN2>BiasAct.
#if GOOGLE_CUDA
#define EIGEN_USE_GPU
#endif

#include <mutex>
#include <vector>

#include "custom_ops/bias_act/bias_act_kernel.h"
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

// Pointers of one call; b is null without a bias, absent xref/yref/dy point at
// x, db is null unless the op sums its output into the bias gradient.
template <typename T>
struct BiasActTensors {
  const T* x;
  const T* b;
  const T* xref;
  const T* yref;
  const T* dy;
  T* y;
  T* db;
};

template <typename Device, typename T>
struct BiasActFunctor;

// Runs the CPU loop for the compile-time activation A and grad G on TF's thread
// pool. With t.db, each shard sums its outputs per bias index in doubles and
// adds them to `sums` under `mutex`.
template <typename T>
struct BiasActCpuLauncher {
  OpKernelContext* ctx;
  const BiasActParams& p;
  const BiasActTensors<T>& t;
  std::vector<double>* sums;
  std::mutex* mutex;

  template <int A, int G>
  void operator()() const {
    // Cost in cycles per element; transcendental activations cost more.
    const int64_t cost = (A <= kActLrelu) ? 4 : 40;
    const auto* threads = ctx->device()->tensorflow_cpu_worker_threads();
    const BiasActParams& params = p;
    const BiasActTensors<T>& io = t;
    std::vector<double>* total = sums;
    std::mutex* total_mutex = mutex;
    tensorflow::Shard(
        threads->num_threads, threads->workers, p.size, cost,
        [&params, &io, total, total_mutex](int64_t begin, int64_t end) {
          std::vector<double> shard_sums(io.db ? params.bias_size : 0, 0.0);
          BiasActCpuRange<T, A, G>(params, io.x, io.b, io.xref, io.yref, io.dy, io.y,
                                   io.db ? shard_sums.data() : nullptr, begin, end);
          if (!io.db) return;
          std::lock_guard<std::mutex> lock(*total_mutex);
          for (int64_t c = 0; c < params.bias_size; ++c) (*total)[c] += shard_sums[c];
        });
  }
};

template <typename T>
struct BiasActFunctor<CPUDevice, T> {
  void operator()(OpKernelContext* ctx, const BiasActParams& p, const BiasActTensors<T>& t) {
    std::vector<double> sums(t.db ? p.bias_size : 0, 0.0);
    std::mutex mutex;
    const bool ok =
        BiasActDispatch(p.act, p.grad, BiasActCpuLauncher<T>{ctx, p, t, &sums, &mutex});
    OP_REQUIRES(ctx, ok, InvalidArgument("bias_act: unknown act ", p.act, " or grad ", p.grad));
    for (size_t c = 0; c < sums.size(); ++c) t.db[c] = static_cast<T>(static_cast<float>(sums[c]));
  }
};

#if GOOGLE_CUDA
using GPUDevice = Eigen::GpuDevice;

// Defined in bias_act_kernel.cu.cc. Returns nullptr on success, else the CUDA
// error string. With db, `db_scratch` holds bias_size floats of device memory.
template <typename T>
const char* BiasActLaunchGpu(const BiasActParams& p, const T* x, const T* b, const T* xref,
                             const T* yref, const T* dy, T* y, T* db, float* db_scratch,
                             void* stream);

template <typename T>
struct BiasActFunctor<GPUDevice, T> {
  void operator()(OpKernelContext* ctx, const BiasActParams& p, const BiasActTensors<T>& t) {
    float* scratch = nullptr;
    Tensor scratch_tensor;
    if (t.db) {
      OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_FLOAT,
                                             tensorflow::TensorShape({p.bias_size}),
                                             &scratch_tensor));
      scratch = scratch_tensor.flat<float>().data();
    }
    const char* error = BiasActLaunchGpu<T>(p, t.x, t.b, t.xref, t.yref, t.dy, t.y, t.db,
                                            scratch, ctx->eigen_device<GPUDevice>().stream());
    OP_REQUIRES(ctx, error == nullptr,
                tensorflow::errors::Internal("bias_act CUDA launch failed: ", error));
  }
};
#endif  // GOOGLE_CUDA

template <typename Device, typename T>
class BiasActOp : public OpKernel {
 public:
  explicit BiasActOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("act", &p_.act));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("grad", &p_.grad));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("axis", &axis_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("alpha", &p_.alpha));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("gain", &p_.gain));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("clamp", &p_.clamp));
    OP_REQUIRES(ctx, p_.act >= kActLinear && p_.act <= kActSwish,
                InvalidArgument("bias_act: unknown activation code ", p_.act));
    OP_REQUIRES(ctx, p_.grad >= 0 && p_.grad <= 2,
                InvalidArgument("bias_act: grad must be 0, 1 or 2, got ", p_.grad));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& x = ctx->input(0);
    const Tensor& b = ctx->input(1);
    BiasActParams p = p_;
    p.size = x.NumElements();
    p.bias_size = b.NumElements();
    p.bias_stride = 1;
    if (p.bias_size > 0) {
      const int axis = axis_ < 0 ? axis_ + x.dims() : axis_;
      OP_REQUIRES(ctx, axis >= 0 && axis < x.dims(),
                  InvalidArgument("bias_act: axis ", axis_, " is out of range for x of shape ",
                                  x.shape().DebugString()));
      OP_REQUIRES(ctx, b.dims() == 1 && b.dim_size(0) == x.dim_size(axis),
                  InvalidArgument("bias_act: b must be a vector of length x.shape[", axis_,
                                  "] = ", x.dim_size(axis), ", got shape ",
                                  b.shape().DebugString()));
      for (int d = axis + 1; d < x.dims(); ++d) p.bias_stride *= x.dim_size(d);
    }
    // Optional inputs: empty, or of x's shape; required ones must be given.
    const bool needed[3] = {BiasActNeedsXref(p.act, p.grad),
                            BiasActNeedsYref(p.act, p.grad, p.clamp), BiasActNeedsDy(p.grad)};
    const char* names[3] = {"xref", "yref", "dy"};
    const T* optional[3];
    for (int i = 0; i < 3; ++i) {
      const Tensor& t = ctx->input(2 + i);
      const bool given = t.NumElements() > 0 || (p.size == 0 && t.shape() == x.shape());
      OP_REQUIRES(ctx, given || !needed[i],
                  InvalidArgument("bias_act: act ", p.act, " with grad ", p.grad, " and clamp ",
                                  p.clamp, " needs ", names[i], " of x's shape ",
                                  x.shape().DebugString()));
      OP_REQUIRES(ctx, !given || t.shape() == x.shape(),
                  InvalidArgument("bias_act: ", names[i], " must be empty or of x's shape ",
                                  x.shape().DebugString(), ", got ", t.shape().DebugString()));
      // An absent input is never read: x stands in so every pointer is valid.
      optional[i] = given ? t.flat<T>().data() : x.flat<T>().data();
    }
    Tensor* y = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, x.shape(), &y));
    // The bias gradient: y summed over every axis but the bias axis (grad > 0 only).
    const bool sum_bias = p.grad > 0 && p.bias_size > 0;
    Tensor* db = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({sum_bias ? p.bias_size : 0}), &db));
    if (p.size == 0) {
      if (sum_bias) db->flat<T>().setZero();
      return;
    }
    const BiasActTensors<T> tensors{x.flat<T>().data(),
                                    p.bias_size > 0 ? b.flat<T>().data() : nullptr,
                                    optional[0],
                                    optional[1],
                                    optional[2],
                                    y->flat<T>().data(),
                                    sum_bias ? db->flat<T>().data() : nullptr};
    BiasActFunctor<Device, T>()(ctx, p, tensors);
  }

 private:
  BiasActParams p_{};
  int axis_ = -1;
};

#define SG2_REGISTER_BIAS_ACT(DEVICE, DEVICE_TYPE, T)                                   \
  REGISTER_KERNEL_BUILDER(                                                              \
      Name("StyleGAN2>BiasAct").Device(tensorflow::DEVICE).TypeConstraint<T>("T"), \
      BiasActOp<DEVICE_TYPE, T>);

SG2_REGISTER_BIAS_ACT(DEVICE_CPU, CPUDevice, float)
SG2_REGISTER_BIAS_ACT(DEVICE_CPU, CPUDevice, Eigen::half)
#if GOOGLE_CUDA
SG2_REGISTER_BIAS_ACT(DEVICE_GPU, GPUDevice, float)
SG2_REGISTER_BIAS_ACT(DEVICE_GPU, GPUDevice, Eigen::half)
#endif
#undef SG2_REGISTER_BIAS_ACT

}  // namespace stylegan2
