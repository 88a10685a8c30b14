// Launching the row-streaming upfirdn2d kernels (upfirdn2d_rows.cuh), one element type per
// translation unit: upfirdn2d_rows_{f32,f16,bf16}.cu. Their walks are unrolled at compile time, so
// they are the slowest part of the extension to compile; split three ways, a parallel build (ninja,
// MAX_JOBS) compiles them side by side. upfirdn2d.cu calls them through upfirdn2d_rows_launch.h.
#pragma once

#include <cuda_runtime.h>

#include "upfirdn2d_rows.cuh"
#include "upfirdn2d_rows_launch.h"

namespace bender {

// One thread per run of outputs in RS rows; see upfirdn2d_rows.cuh. 128 registers at most: a thread
// keeps the next rows' loads in flight while it uses the current one.
template <typename T, int U, int D, int K, int RS, bool CL>
__global__ void __launch_bounds__(kRowsThreads, 4) upfirdn2d_rows_kernel(Upfirdn2dParams p) {
    const int g = static_cast<int>(blockIdx.x) * kRowsThreads + static_cast<int>(threadIdx.x);
    if constexpr (CL) upfirdn2d_rows_cl_thread<T, U, D, K, RS>(p, g);
    else upfirdn2d_rows_thread<T, U, D, K, RS>(p, g);
}

// The row-streaming kernel for p, if one covers it; 1 if launched (error in *err), 0 if none fits.
// `tall_only`: only for planes with at least RS output rows. A thread's walk down its RS rows is
// unrolled at compile time, so in shorter planes part of it multiplies padding; there the tiled
// kernels, which put many small planes in one block, are the better choice.
template <typename T>
int upfirdn2d_rows_launch(Upfirdn2dParams& p, bool tall_only, cudaStream_t stream, int* err) {
#define BENDER_TRY_ROWS(U, D, K, RS)                                                                       \
    if (!tall_only || p.ho >= RS) {                                                                        \
        const bool cl = upfirdn2d_rows_cl_plan<T, U, D, K, RS>(p);                                         \
        if (cl || upfirdn2d_rows_plan<T, U, D, K, RS>(p)) {                                                \
            const int blocks = static_cast<int>((upfirdn2d_rows_threads(p) + kRowsThreads - 1) / kRowsThreads); \
            if (cl) upfirdn2d_rows_kernel<T, U, D, K, RS, true><<<blocks, kRowsThreads, 0, stream>>>(p);   \
            else upfirdn2d_rows_kernel<T, U, D, K, RS, false><<<blocks, kRowsThreads, 0, stream>>>(p);     \
            *err = static_cast<int>(cudaGetLastError());                                                   \
            return 1;                                                                                      \
        }                                                                                                  \
    }
    BENDER_UPFIRDN2D_ROWS(BENDER_TRY_ROWS)
#undef BENDER_TRY_ROWS
    return 0;
}

}  // namespace bender
