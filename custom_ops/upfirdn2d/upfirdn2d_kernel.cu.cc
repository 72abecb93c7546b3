// GPU launcher of StyleGAN2>Upfirdn2d, compiled by nvcc (-x cu). Declared in
// upfirdn2d_kernel.cc; Eigen::half runs as CUDA's __half (same 16-bit layout).
#if GOOGLE_CUDA

#include <cuda_fp16.h>

#include "Eigen/Core"
#include "custom_ops/upfirdn2d/upfirdn2d_kernel.cuh"

namespace stylegan2 {

namespace {
template <typename T>
struct DeviceType {
  using type = T;
};
template <>
struct DeviceType<Eigen::half> {
  using type = __half;
};
static_assert(sizeof(Eigen::half) == sizeof(__half), "Eigen::half must be 16-bit");
}  // namespace

template <typename T>
const char* Upfirdn2dLaunchGpu(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                               void* stream) {
  using D = typename DeviceType<T>::type;
  const cudaError_t error =
      Upfirdn2dCuda<D>(p, reinterpret_cast<const D*>(x), f, reinterpret_cast<D*>(y),
                       static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

template const char* Upfirdn2dLaunchGpu<float>(const Upfirdn2dParams&, const float*,
                                               const float*, float*, void*);
template const char* Upfirdn2dLaunchGpu<Eigen::half>(const Upfirdn2dParams&, const Eigen::half*,
                                                     const float*, Eigen::half*, void*);

}  // namespace stylegan2

#endif  // GOOGLE_CUDA
