// TensorFlow's element types as the CUDA kernels see them, for the *.cu.cc
// launchers: Eigen::half runs as CUDA's __half (the same 16-bit layout).
#ifndef STYLEGAN2_TF_CUSTOM_OPS_COMMON_DEVICE_TYPE_CUH_
#define STYLEGAN2_TF_CUSTOM_OPS_COMMON_DEVICE_TYPE_CUH_

#include <cuda_fp16.h>

#include "Eigen/Core"

namespace stylegan2 {

template <typename T>
struct DeviceType {
  using type = T;
};
template <>
struct DeviceType<Eigen::half> {
  using type = __half;
};
static_assert(sizeof(Eigen::half) == sizeof(__half), "Eigen::half must be 16-bit");

// The same pointer, typed for the kernels.
template <typename T>
typename DeviceType<T>::type* AsDevice(T* ptr) {
  return reinterpret_cast<typename DeviceType<T>::type*>(ptr);
}
template <typename T>
const typename DeviceType<T>::type* AsDevice(const T* ptr) {
  return reinterpret_cast<const typename DeviceType<T>::type*>(ptr);
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_COMMON_DEVICE_TYPE_CUH_
