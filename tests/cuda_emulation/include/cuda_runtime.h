// The part of the CUDA runtime API csrc/cuda/batch_launch.cu calls, for the host emulation: the
// emulated machine has no driver and no device, and launches never fail to start.
#pragma once

enum cudaError_t { cudaSuccess = 0, cudaErrorNoDevice = 100 };
using cudaStream_t = void*;

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t e) {
  return e == cudaSuccess ? "no error" : "no CUDA-capable device is detected (host emulation)";
}
inline cudaError_t cudaDriverGetVersion(int* v) { *v = 0; return cudaSuccess; }
inline cudaError_t cudaRuntimeGetVersion(int* v) { *v = 0; return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 0; return cudaErrorNoDevice; }
