// GPU launcher of StyleGAN2>BiasAct, compiled by nvcc (-x cu). Declared in
// bias_act_kernel.cc; Eigen::half runs as CUDA's __half
// (common/device_type.cuh).
#if GOOGLE_CUDA

#include "custom_ops/common/device_type.cuh"
#include "custom_ops/bias_act/bias_act_kernel.cuh"

namespace stylegan2 {

template <typename T>
const char* BiasActLaunchGpu(const BiasActParams& p, const T* x, const T* b, const T* xref,
                             const T* yref, const T* dy, T* y, T* db, float* db_scratch,
                             void* stream) {
  const cudaError_t error =
      BiasActCuda(p, AsDevice(x), AsDevice(b), AsDevice(xref), AsDevice(yref), AsDevice(dy),
                  AsDevice(y), AsDevice(db), db_scratch, static_cast<cudaStream_t>(stream));
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
