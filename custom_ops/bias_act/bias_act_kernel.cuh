// CUDA kernel of bias_act (semantics: bias_act_kernel.h). Free of TensorFlow.
//
// All full-size tensors (x, xref, yref, dy, y) are flat arrays of p.size
// elements in the same layout; element i uses b[(i / bias_stride) % bias_size].
// b is null without a bias; xref, yref and dy are never null (x stands in for
// an absent one), and the kernel loads only those that (act, grad, clamp) read.
// Threads stride over 16-byte vectors (4 floats or 8 halves) when every
// pointer is 16-byte aligned; the tail (and everything, when misaligned) goes
// one element per thread.
#ifndef STYLEGAN2_TF_CUSTOM_OPS_BIAS_ACT_BIAS_ACT_KERNEL_CUH_
#define STYLEGAN2_TF_CUSTOM_OPS_BIAS_ACT_BIAS_ACT_KERNEL_CUH_

#include <cuda_runtime.h>

#include <cstdint>

#include "custom_ops/bias_act/bias_act_kernel.h"

namespace stylegan2 {

constexpr int kBiasActThreads = 256;
constexpr int64_t kBiasActMaxBlocks = 8192;

// One aligned 16-byte load or store of kSize elements.
template <typename T>
struct alignas(16) BiasActVec {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

// Elements [i, i + kN) of x, xref, yref, dy, as floats; unread inputs stay 0.
template <typename T, int A, int G, bool kClamp, int kN>
struct BiasActInputs {
  float x[kN], xref[kN] = {}, yref[kN] = {}, dy[kN] = {};

  __device__ void Load(const T* px, const T* pxref, const T* pyref, const T* pdy, int64_t i) {
    Convert(x, px, i);
    if (BiasActNeedsXref(A, G)) Convert(xref, pxref, i);
    if (BiasActNeedsYref(A, G, kClamp ? 0.0f : -1.0f)) Convert(yref, pyref, i);
    if (BiasActNeedsDy(G)) Convert(dy, pdy, i);
  }
  // kN == 1: element i; otherwise vector i / kN, read as one 16-byte load.
  static __device__ void Convert(float* out, const T* ptr, int64_t i) {
    if (kN == 1) {
      out[0] = static_cast<float>(ptr[i]);
    } else {
      const BiasActVec<T> v = *reinterpret_cast<const BiasActVec<T>*>(ptr + i);
#pragma unroll
      for (int k = 0; k < kN; ++k) out[k] = static_cast<float>(v.v[k]);
    }
  }
};

// Bias values of elements [i, i + kN): one division, then stepping through the
// bias index (r counts elements within one bias index).
template <typename T, int kN>
__device__ void BiasActLoadBias(const BiasActParams& p, const T* b, int64_t i, float* out) {
  if (p.bias_size == 0) {
#pragma unroll
    for (int k = 0; k < kN; ++k) out[k] = 0.0f;
    return;
  }
  const int64_t q = i / p.bias_stride;
  int64_t r = i - q * p.bias_stride, bi = q % p.bias_size;
#pragma unroll
  for (int k = 0; k < kN; ++k) {
    out[k] = static_cast<float>(b[bi]);
    if (++r == p.bias_stride) {
      r = 0;
      bi = (bi + 1 == p.bias_size) ? 0 : bi + 1;
    }
  }
}

// y[i, i + kN) for kN == 1 (one element) or kN == BiasActVec<T>::kSize (one vector).
template <typename T, int A, int G, bool kClamp, int kN>
__device__ void BiasActStep(const BiasActParams& p, float inv_gain, const T* x, const T* b,
                            const T* xref, const T* yref, const T* dy, T* y, int64_t i) {
  BiasActInputs<T, A, G, kClamp, kN> in;
  in.Load(x, xref, yref, dy, i);
  float bias[kN];
  BiasActLoadBias<T, kN>(p, b, i, bias);
  BiasActVec<T> out;
#pragma unroll
  for (int k = 0; k < kN; ++k)
    out.v[k] = static_cast<T>(BiasActValue<A, G, kClamp>(in.x[k], bias[k], in.xref[k],
                                                         in.yref[k], in.dy[k], p.alpha, p.gain,
                                                         inv_gain, p.clamp));
  if (kN == 1) {
    y[i] = out.v[0];
  } else {
    *reinterpret_cast<BiasActVec<T>*>(y + i) = out;
  }
}

// Vectors [0, vectors), then the remaining elements one by one; grid-stride.
template <typename T, int A, int G, bool kClamp>
__device__ void BiasActGridLoop(const BiasActParams& p, const T* x, const T* b, const T* xref,
                                const T* yref, const T* dy, T* y, int64_t vectors) {
  constexpr int kSize = BiasActVec<T>::kSize;
  const float inv_gain = BiasActInvGain(p.gain);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t v = first; v < vectors; v += stride)
    BiasActStep<T, A, G, kClamp, kSize>(p, inv_gain, x, b, xref, yref, dy, y, v * kSize);
  for (int64_t i = vectors * kSize + first; i < p.size; i += stride)
    BiasActStep<T, A, G, kClamp, 1>(p, inv_gain, x, b, xref, yref, dy, y, i);
}

template <typename T, int A, int G>
__global__ void __launch_bounds__(kBiasActThreads)
    BiasActKernel(const BiasActParams p, const T* SG2_RESTRICT x, const T* SG2_RESTRICT b,
                  const T* SG2_RESTRICT xref, const T* SG2_RESTRICT yref,
                  const T* SG2_RESTRICT dy, T* SG2_RESTRICT y, int64_t vectors) {
  if (p.clamp >= 0.0f) {
    BiasActGridLoop<T, A, G, true>(p, x, b, xref, yref, dy, y, vectors);
  } else {
    BiasActGridLoop<T, A, G, false>(p, x, b, xref, yref, dy, y, vectors);
  }
}

inline bool BiasActAligned16(const void* ptr) {
  return (reinterpret_cast<uintptr_t>(ptr) & 15u) == 0;
}

// BiasActDispatch callback: launches the kernel for the compile-time A and G.
template <typename T>
struct BiasActGpuLauncher {
  const BiasActParams& p;
  const T *x, *b, *xref, *yref, *dy;
  T* y;
  int64_t vectors;
  unsigned grid;
  cudaStream_t stream;

  template <int A, int G>
  void operator()() const {
    BiasActKernel<T, A, G><<<grid, kBiasActThreads, 0, stream>>>(p, x, b, xref, yref, dy, y,
                                                                 vectors);
  }
};

constexpr int kBiasSumLanes = 32;  // bias indices per block (threadIdx.x)
constexpr int kBiasSumRows = 8;    // threads per bias index in a block (threadIdx.y)

// sums[c] += y over the elements of bias index c, c = blockIdx.x * 32 + threadIdx.x.
// Element (j, c) of the M = size / bias_size elements per index sits at
// (j / stride) * bias_size * stride + c * stride + j % stride; with stride 1 the
// 32 lanes of a warp read 32 consecutive elements.
template <typename T>
__global__ void BiasSumKernel(const BiasActParams p, const T* SG2_RESTRICT y,
                              float* SG2_RESTRICT sums) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kBiasSumLanes + threadIdx.x;
  if (c >= p.bias_size) return;
  const int64_t per_index = p.size / p.bias_size;
  const int64_t step = static_cast<int64_t>(gridDim.y) * kBiasSumRows;
  float sum = 0.0f;
  for (int64_t j = static_cast<int64_t>(blockIdx.y) * kBiasSumRows + threadIdx.y; j < per_index;
       j += step) {
    const int64_t outer = j / p.bias_stride;
    const int64_t inner = j - outer * p.bias_stride;
    sum += static_cast<float>(y[(outer * p.bias_size + c) * p.bias_stride + inner]);
  }
  atomicAdd(sums + c, sum);
}

template <typename T>
__global__ void BiasSumStoreKernel(int64_t n, const float* SG2_RESTRICT sums,
                                   T* SG2_RESTRICT db) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c < n) db[c] = static_cast<T>(sums[c]);
}

// db[c] = sum of y over bias index c; `scratch` holds bias_size floats.
template <typename T>
cudaError_t BiasSumCuda(const BiasActParams& p, const T* y, T* db, float* scratch,
                        cudaStream_t stream) {
  cudaError_t error = cudaMemsetAsync(scratch, 0, sizeof(float) * p.bias_size, stream);
  if (error != cudaSuccess) return error;
  if (p.size > 0) {
    const int64_t per_index = p.size / p.bias_size;
    const int64_t lanes = (p.bias_size + kBiasSumLanes - 1) / kBiasSumLanes;
    int64_t rows = (per_index + kBiasSumRows * 64 - 1) / (kBiasSumRows * 64);  // >= 64 per thread
    if (rows > 4096) rows = 4096;
    if (rows < 1) rows = 1;
    const dim3 grid(static_cast<unsigned>(lanes), static_cast<unsigned>(rows));
    BiasSumKernel<T><<<grid, dim3(kBiasSumLanes, kBiasSumRows), 0, stream>>>(p, y, scratch);
  }
  const unsigned blocks = static_cast<unsigned>((p.bias_size + 255) / 256);
  BiasSumStoreKernel<T><<<blocks, 256, 0, stream>>>(p.bias_size, scratch, db);
  return cudaGetLastError();
}

// Launches the kernel for p.act and p.grad on `stream`, then, with db, the bias
// sum; returns the launch error, or cudaErrorInvalidValue for an unknown act or grad.
template <typename T>
cudaError_t BiasActCuda(const BiasActParams& p, const T* x, const T* b, const T* xref,
                        const T* yref, const T* dy, T* y, T* db, float* db_scratch,
                        cudaStream_t stream) {
  if (db != nullptr && p.bias_size > 0) {
    const cudaError_t error = BiasActCuda<T>(p, x, b, xref, yref, dy, y, nullptr, nullptr, stream);
    return error != cudaSuccess ? error : BiasSumCuda<T>(p, y, db, db_scratch, stream);
  }
  if (p.size <= 0) return cudaSuccess;
  const bool aligned = BiasActAligned16(x) && BiasActAligned16(y) && BiasActAligned16(xref) &&
                       BiasActAligned16(yref) && BiasActAligned16(dy);
  const int64_t vectors = aligned ? p.size / BiasActVec<T>::kSize : 0;
  const int64_t work = vectors + (p.size - vectors * BiasActVec<T>::kSize);
  const int64_t blocks_needed = (work + kBiasActThreads - 1) / kBiasActThreads;
  const unsigned grid =
      static_cast<unsigned>(blocks_needed < kBiasActMaxBlocks ? blocks_needed : kBiasActMaxBlocks);
  const BiasActGpuLauncher<T> launch{p, x, b, xref, yref, dy, y, vectors, grid, stream};
  if (!BiasActDispatch(p.act, p.grad, launch)) return cudaErrorInvalidValue;
  return cudaGetLastError();
}

}  // namespace stylegan2

#endif  // STYLEGAN2_TF_CUSTOM_OPS_BIAS_ACT_BIAS_ACT_KERNEL_CUH_
