// The contract between the torch bindings (bindings.cpp) and the kernels (*.cu).
//
// Plain structs and functions: no torch and no CUDA headers, so that the bindings, the kernels and
// the CPU emulator used by the tests all include the same definitions. Launchers return a
// cudaError_t value as int (0 = success) or one of the negative codes below.
#pragma once

#include <cstdint>

namespace bender {

// Element types the kernels are instantiated for (the launchers' `dtype` argument).
enum DType : int { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

enum LaunchError : int {
    kErrUnsupportedDtype = -1,
    kErrUnsupportedAct = -2,
    kErrNoTiledKernel = -3,
    kErrTooLarge = -4,
    kErrNoRowsKernel = -5,
};

// Activation numbers: the same as `Activation.cuda_idx` in bender/ops/bias_act.py.
enum Act : int {
    kLinear = 1, kRelu = 2, kLrelu = 3, kTanh = 4, kSigmoid = 5, kElu = 6, kSelu = 7, kSoftplus = 8, kSwish = 9,
};

// A divisor fixed at launch, prepared for division by multiplication (make_fastdiv in common.cuh).
struct FastDiv {
    uint32_t d = 1, m = 1, l = 0;
};

// bias_act in three modes over a dense tensor of n elements (contiguous or channels_last, all
// tensors sharing x's strides), with z = x + b[channel]:
//   mode 0: y = clamp(act(z) * gain)                      (forward)
//   mode 1: y = g * act'(z) * gain * [|act(z)*gain| <= clamp]       (dx from dy = g)
//   mode 2: y = g * gg * act''(z) * gain * [|act(z)*gain| <= clamp] (d(dx)/dz, for double backward)
// clamp < 0 means no clamping. The channel of the element at memory offset i is
// (i / stride_dim) % size_dim, which holds for any dense layout.
struct BiasActParams {
    const void* x = nullptr;
    const void* b = nullptr;   // may be null: no bias
    const void* g = nullptr;   // mode >= 1
    const void* gg = nullptr;  // mode 2
    void* y = nullptr;
    int64_t n = 0;
    int64_t stride_dim = 1;
    int64_t size_dim = 1;
    float alpha = 0.f;
    float gain = 1.f;
    float clamp = -1.f;
    int act = kLinear;
    int mode = 0;
    int vec_ok = 0;  // all pointers 16-byte aligned: use wide loads (set by bias_act_prepare)
};

// upfirdn2d: y[n, c, oy, ox] = sum_{ky, kx} f'[ky, kx] * xpad[oy*downy + ky, ox*downx + kx], where xpad is x
// upsampled by zero insertion and padded (negative padding crops), and f' is the filter as a
// correlation kernel: f flipped unless flip_filter, times gain. A 1-D filter (f_ndim == 1) stands for
// its outer product with itself. Strides are in elements; x and y may have any strides.
struct Upfirdn2dParams {
    const void* x = nullptr;
    const float* f = nullptr;
    void* y = nullptr;
    int n = 0, c = 0, h = 0, w = 0;
    int64_t sxn = 0, sxc = 0, sxh = 0, sxw = 0;
    int ho = 0, wo = 0;
    int64_t syn = 0, syc = 0, syh = 0, syw = 0;
    int upx = 1, upy = 1, downx = 1, downy = 1;
    int px0 = 0, px1 = 0, py0 = 0, py1 = 0;
    int fw = 1, fh = 1, f_ndim = 2, flip = 0;
    float gain = 1.f;
    int channels_fastest = 0;  // x's channels are contiguous in memory (channels_last)

    // Launch plan for the tiled kernels (filled by upfirdn2d_plan).
    int bx = 1, by = 1, bp = 1;             // threads per block along x, y and planes
    int tiles_x = 0, tiles_y = 0, tiles_p = 0;
    int ox_first = 0, oy_first = 0;         // output coordinate of the first tile's origin (<= 0)
    int tiw = 0, tih = 0, pitch = 0;        // input tile width, height; shared-memory row pitch
    int vec_load = 0;                       // planar x, unit x stride, 16-byte aligned: wide loads
    int load_items = 0, load_cpr = 0;       // load work items per tile; 16-byte chunks per tile row
    int load_passes = 0;                    // rounds of loads per thread per tile (1 for most shapes)
    int target_blocks = 1024;               // set before planning: blocks wanted (a few per SM)
    int tiles_per_block = 1;                // consecutive tiles one block walks through
    int smem_bytes = 0;

    // Launch plan for the row-streaming kernels (filled by upfirdn2d_rows_plan / upfirdn2d_rows_cl_plan;
    // upfirdn2d_rows.cuh).
    int rows_cgroups = 1;                   // channel groups per image: channels_last C / CV, planar C
    int rows_groups = 0, rows_strips = 0;   // threads along an output row; row strips per plane
    int rows_vec_store = 0;                 // planar y with unit x stride, 16-byte aligned: wide stores
    FastDiv dv_rows_cgroups, dv_rows_groups, dv_rows_strips;
};

// Output length along one axis (0 when padding and filter leave nothing).
inline int upfirdn2d_out_size(int in, int up, int down, int pad0, int pad1, int taps) {
    const int span = in * up + pad0 + pad1 - taps;
    return span < 0 ? 0 : span / down + 1;
}

// upfirdn2d's path: 0 = tiled fast path when one matches, else generic; 1 = generic only; 2 = tiled or
// fail; 3 = row-streaming or fail; 4 = row-streaming (for planes at least as tall as a thread's rows),
// else tiled, else generic. `used` receives the kernel that ran: 0 generic, 1 tiled, 2 row-streaming.
int bias_act_launch(BiasActParams& p, int dtype, void* stream);
int upfirdn2d_launch(Upfirdn2dParams& p, int dtype, int path, void* stream, int* used);

}  // namespace bender
