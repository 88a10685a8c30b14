// CUDA kernels for upfirdn2d (see upfirdn2d.cuh for the per-thread work).
#include <cuda_runtime.h>

#include <algorithm>

#include "upfirdn2d.cuh"

namespace bender {

template <typename T>
__global__ void __launch_bounds__(256) upfirdn2d_generic_kernel(Upfirdn2dParams p) {
    const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    upfirdn2d_generic_thread<T>(p, tid, static_cast<int64_t>(gridDim.x) * blockDim.x);
}

template <typename T, int U, int D, int K, int SX, int SY>
__global__ void __launch_bounds__(128, 4) upfirdn2d_tiled_kernel(Upfirdn2dParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    int64_t* in_off = reinterpret_cast<int64_t*>(smem);
    int64_t* out_off = in_off + p.bp;
    float* tile = reinterpret_cast<float*>(out_off + p.bp);
    const TileOrigin t = tile_origin<U, D, K, SX, SY>(p, blockIdx.x);
    tile_phase_planes(p, t, threadIdx.x, in_off, out_off);
    __syncthreads();
    tile_phase_load<T>(p, t, threadIdx.x, blockDim.x, in_off, tile);
    __syncthreads();
    tile_phase_compute<T, U, D, K, SX, SY>(p, t, threadIdx.x, out_off, tile);
}

namespace {

template <typename T>
int launch_typed(Upfirdn2dParams& p, int path, cudaStream_t stream, int* used_tiled) {
    *used_tiled = 0;
    if (path != 1 && p.upx == p.upy && p.downx == p.downy && p.fw == p.fh) {
#define BENDER_TRY_TILED(U, D, K, SX, SY)                                                               \
    if (p.upx == U && p.downx == D && p.fw == K && upfirdn2d_plan<U, D, K, SX, SY>(p)) {                \
        const int blocks = p.tiles_x * p.tiles_y * p.tiles_p;                                           \
        upfirdn2d_tiled_kernel<T, U, D, K, SX, SY><<<blocks, p.bx * p.by * p.bp, p.smem_bytes, stream>>>(p); \
        *used_tiled = 1;                                                                                \
        return static_cast<int>(cudaGetLastError());                                                    \
    }
        BENDER_UPFIRDN2D_TILED(BENDER_TRY_TILED)
#undef BENDER_TRY_TILED
    }
    if (path == 2) return kErrNoTiledKernel;
    const int64_t total = static_cast<int64_t>(p.n) * p.c * p.ho * p.wo;
    const int threads = 256;
    const int blocks = static_cast<int>(std::min<int64_t>((total + threads - 1) / threads, 1 << 20));
    upfirdn2d_generic_kernel<T><<<blocks, threads, 0, stream>>>(p);
    return static_cast<int>(cudaGetLastError());
}

}  // namespace

int upfirdn2d_launch(Upfirdn2dParams& p, int dtype, int path, void* stream, int* used_tiled) {
    if (static_cast<int64_t>(p.n) * p.c * p.ho * p.wo == 0) return 0;
    if (static_cast<int64_t>(p.n) * p.c >= (int64_t(1) << 31)) return kErrTooLarge;
    auto s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case kFloat32: return launch_typed<float>(p, path, s, used_tiled);
        case kFloat16: return launch_typed<__half>(p, path, s, used_tiled);
        case kBFloat16: return launch_typed<__nv_bfloat16>(p, path, s, used_tiled);
        default: return kErrUnsupportedDtype;
    }
}

}  // namespace bender
