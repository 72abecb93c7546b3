// GPU launcher of StyleGAN2>BiasAct, compiled by nvcc (-x cu). Declared in
// bias_act_kernel.cc; Eigen::half runs as CUDA's __half (same 16-bit layout).
#if GOOGLE_CUDA

#include <cuda_fp16.h>

#include "Eigen/Core"
#include "custom_ops/bias_act/bias_act_kernel.cuh"

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

template <typename D, typename T>
const D* AsDevice(const T* ptr) {
  return reinterpret_cast<const D*>(ptr);
}
}  // namespace

template <typename T>
const char* BiasActLaunchGpu(const BiasActParams& p, const T* x, const T* b, const T* xref,
                             const T* yref, const T* dy, T* y, T* db, float* db_scratch,
                             void* stream) {
  using D = typename DeviceType<T>::type;
  const cudaError_t error = BiasActCuda<D>(
      p, AsDevice<D>(x), AsDevice<D>(b), AsDevice<D>(xref), AsDevice<D>(yref), AsDevice<D>(dy),
      reinterpret_cast<D*>(y), reinterpret_cast<D*>(db), db_scratch,
      static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

template const char* BiasActLaunchGpu<float>(const BiasActParams&, const float*, const float*,
                                             const float*, const float*, const float*, float*,
                                             float*, float*, void*);
template const char* BiasActLaunchGpu<Eigen::half>(const BiasActParams&, const Eigen::half*,
                                                   const Eigen::half*, const Eigen::half*,
                                                   const Eigen::half*, const Eigen::half*,
                                                   Eigen::half*, Eigen::half*, float*, void*);

}  // namespace stylegan2

#endif  // GOOGLE_CUDA
