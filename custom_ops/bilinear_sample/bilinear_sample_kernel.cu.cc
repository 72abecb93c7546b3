// GPU launchers of StyleGAN2>BilinearSample and its adjoint, compiled by nvcc (-x cu).
// Declared in bilinear_sample_kernel.cc; T (images) and P (positions) are float or
// double, the same types on host and device.
#if GOOGLE_CUDA

#include "custom_ops/bilinear_sample/bilinear_sample_kernel.cuh"

namespace stylegan2 {

template <typename T, typename P>
const char* BilinearSampleLaunchGpu(const BilinearSampleParams& p, const T* x, const P* ix,
                                    const P* iy, T* y, void* stream) {
  const cudaError_t error =
      BilinearSampleCuda<T, P>(p, x, ix, iy, y, static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

template <typename T, typename P>
const char* BilinearSampleAdjointLaunchGpu(const BilinearSampleParams& p, const T* dy,
                                           const P* ix, const P* iy, T* dx, void* stream) {
  const cudaError_t error =
      BilinearSampleAdjointCuda<T, P>(p, dy, ix, iy, dx, static_cast<cudaStream_t>(stream));
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

#define SG2_INSTANTIATE_BILINEAR_SAMPLE(T, P)                                               \
  template const char* BilinearSampleLaunchGpu<T, P>(const BilinearSampleParams&, const T*, \
                                                     const P*, const P*, T*, void*);        \
  template const char* BilinearSampleAdjointLaunchGpu<T, P>(                                \
      const BilinearSampleParams&, const T*, const P*, const P*, T*, void*);

SG2_INSTANTIATE_BILINEAR_SAMPLE(float, float)
SG2_INSTANTIATE_BILINEAR_SAMPLE(float, double)
SG2_INSTANTIATE_BILINEAR_SAMPLE(double, float)
SG2_INSTANTIATE_BILINEAR_SAMPLE(double, double)
#undef SG2_INSTANTIATE_BILINEAR_SAMPLE

}  // namespace stylegan2

#endif  // GOOGLE_CUDA
