// CUDA kernels for upfirdn2d (see upfirdn2d.cuh for the per-thread work).
#include <cuda_runtime.h>

#include <algorithm>

#include "upfirdn2d.cuh"
#include "upfirdn2d_rows_launch.h"

namespace bender {

template <typename T>
__global__ void __launch_bounds__(256) upfirdn2d_generic_kernel(Upfirdn2dParams p) {
    const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    upfirdn2d_generic_thread<T>(p, tid, static_cast<int64_t>(gridDim.x) * blockDim.x);
}

// The phases of upfirdn2d.cuh between barriers; tests/cuda_emulator.cpp runs the same sequence.
template <typename T, int U, int D, int K, int SX, int SY>
__global__ void __launch_bounds__(128, 4) upfirdn2d_tiled_kernel(Upfirdn2dParams p) {
    extern __shared__ __align__(16) unsigned char smem[];
    float* taps = reinterpret_cast<float*>(smem);                        // [K * K]
    int64_t* in_off = reinterpret_cast<int64_t*>(smem + kTapsBytes<K>);  // [2][bp], by tile parity
    int64_t* out_off = in_off + 2 * p.bp;                                 // [bp]
    float* tile = reinterpret_cast<float*>(smem + tile_header_bytes<K>(p.bp));
    const int tid = threadIdx.x, nthreads = blockDim.x;
    const int64_t first = static_cast<int64_t>(blockIdx.x) * p.tiles_per_block;
    const int64_t left = upfirdn2d_tiles(p) - first;
    const int count = left < p.tiles_per_block ? static_cast<int>(left) : p.tiles_per_block;

    TileOrigin t = tile_origin<U, D, K, SX, SY>(p, first);
    tile_phase_setup<K>(p, t, tid, nthreads, taps, in_off);
    __syncthreads();
    TileLoads<T> r;
    tile_phase_fetch<T>(p, t, tid, nthreads, in_off, r);
    for (int i = 0; i < count; i++) {
        if (i > 0) __syncthreads();  // everyone is done reading the previous tile
        const bool more = i + 1 < count;
        const TileOrigin next = tile_origin<U, D, K, SX, SY>(p, first + i + (more ? 1 : 0));
        int64_t* next_in = in_off + ((i + 1) & 1) * p.bp;
        tile_phase_store<T>(p, t, tid, nthreads, in_off + (i & 1) * p.bp, r, tile);
        tile_phase_planes(p, t, tid, nullptr, out_off);
        if (more) tile_phase_planes(p, next, tid, next_in, nullptr);
        __syncthreads();
        if (more) tile_phase_fetch<T>(p, next, tid, nthreads, next_in, r);
        tile_phase_compute<T, U, D, K, SX, SY>(p, t, tid, taps, out_off, tile);
        t = next;
    }
}

namespace {

// Blocks a tiled launch should have at least: two rounds of the 4 blocks per SM that
// __launch_bounds__ asks for. Fewer tiles per block below that, so small launches still fill the GPU.
int target_blocks() {
    int device = 0, sms = 0;
    if (cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || sms < 1)
        sms = 132;
    return sms * 8;
}

template <typename T>
int launch_typed(Upfirdn2dParams& p, int path, cudaStream_t stream, int* used) {
    *used = 0;
    int err = 0;
    if (path == 3 || path == 4) {
        if (upfirdn2d_rows_launch<T>(p, path == 4, stream, &err)) {
            *used = 2;
            return err;
        }
        if (path == 3) return kErrNoRowsKernel;
    }
    if (path != 1 && p.upx == p.upy && p.downx == p.downy && p.fw == p.fh) {
        p.target_blocks = target_blocks();
#define BENDER_TRY_TILED(U, D, K, SX, SY)                                                               \
    if (p.upx == U && p.downx == D && p.fw == K && upfirdn2d_plan<T, U, D, K, SX, SY>(p)) {             \
        const int64_t tiles = upfirdn2d_tiles(p);                                                       \
        const int blocks = static_cast<int>((tiles + p.tiles_per_block - 1) / p.tiles_per_block);      \
        upfirdn2d_tiled_kernel<T, U, D, K, SX, SY><<<blocks, p.bx * p.by * p.bp, p.smem_bytes, stream>>>(p); \
        *used = 1;                                                                                      \
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

int upfirdn2d_launch(Upfirdn2dParams& p, int dtype, int path, void* stream, int* used) {
    if (static_cast<int64_t>(p.n) * p.c * p.ho * p.wo == 0) return 0;
    if (static_cast<int64_t>(p.n) * p.c >= (int64_t(1) << 31)) return kErrTooLarge;
    auto s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case kFloat32: return launch_typed<float>(p, path, s, used);
        case kFloat16: return launch_typed<__half>(p, path, s, used);
        case kBFloat16: return launch_typed<__nv_bfloat16>(p, path, s, used);
        default: return kErrUnsupportedDtype;
    }
}

}  // namespace bender
