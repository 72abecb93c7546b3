// GPU launcher of StyleGAN2>Upfirdn2d, compiled by nvcc (-x cu). Declared in
// upfirdn2d_kernel.cc; Eigen::half runs as CUDA's __half
// (common/device_type.cuh).
#if GOOGLE_CUDA

#include "custom_ops/common/device_type.cuh"
#include "custom_ops/upfirdn2d/upfirdn2d_kernel.cuh"

namespace stylegan2 {

template <typename T>
const char* Upfirdn2dLaunchGpu(const Upfirdn2dParams& p, const T* x, const float* f, T* y,
                               void* stream) {
  const cudaError_t error =
      Upfirdn2dCuda(p, AsDevice(x), f, AsDevice(y), static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

template const char* Upfirdn2dLaunchGpu<float>(const Upfirdn2dParams&, const float*,
                                               const float*, float*, void*);
template const char* Upfirdn2dLaunchGpu<Eigen::half>(const Upfirdn2dParams&, const Eigen::half*,
                                                     const float*, Eigen::half*, void*);

}  // namespace stylegan2

#endif  // GOOGLE_CUDA
