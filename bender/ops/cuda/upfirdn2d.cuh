// upfirdn2d (upsample by zero insertion, pad, FIR filter, downsample) in one pass.
//
// Two kernels share the definition in ops.h:
//  * generic: one output per thread, reading x straight from global memory. Any factors, filter
//    size and strides. Simple enough to be correct by inspection; it is the baseline the tiled
//    kernels are tested against and the path for unusual arguments.
//  * tiled: StyleGAN2's cases (2x up, 2x down, 1x filtering, 4x4 filter). A block stages the input
//    tile it needs in shared memory; each thread then computes an SY x SX patch of outputs from a
//    window of that tile held in registers. The patches are aligned so that which filter taps meet
//    real (not zero-inserted) samples is known at compile time — the polyphase decomposition
//    falls out of the unrolled loops, and no multiply is spent on inserted zeros.
#pragma once

#include "common.cuh"
#include "ops.h"

namespace bender {

// The fast paths: (up, down, taps, outputs per thread along x, along y). Expanded by the CUDA
// launcher and by the CPU emulator, so both always agree on what exists.
#define BENDER_UPFIRDN2D_TILED(X) X(1, 1, 4, 4, 4) X(2, 1, 4, 4, 4) X(1, 2, 4, 2, 2)

// Tap (ky, kx) of the filter used as a correlation kernel: flipped unless flip_filter, times gain.
BENDER_HD float filter_tap(const Upfirdn2dParams& p, int ky, int kx) {
    const int fy = p.flip ? ky : p.fh - 1 - ky;
    const int fx = p.flip ? kx : p.fw - 1 - kx;
    const float v = p.f_ndim == 1 ? p.f[fy] * p.f[fx] : p.f[fy * p.fw + fx];
    return v * p.gain;
}

// ---------------------------------------------------------------------------------------------
// Generic kernel: output i (in y's memory order, so that writes are coalesced) per thread.

template <typename T>
BENDER_HD void upfirdn2d_generic_thread(const Upfirdn2dParams& p, int64_t tid, int64_t nthreads) {
    const T* x = static_cast<const T*>(p.x);
    T* y = static_cast<T*>(p.y);
    const int64_t total = static_cast<int64_t>(p.n) * p.c * p.ho * p.wo;
    for (int64_t i = tid; i < total; i += nthreads) {
        int64_t r = i;
        int n, c, oy, ox;
        if (p.channels_fastest) {
            c = static_cast<int>(r % p.c), r /= p.c;
            ox = static_cast<int>(r % p.wo), r /= p.wo;
            oy = static_cast<int>(r % p.ho), n = static_cast<int>(r / p.ho);
        } else {
            ox = static_cast<int>(r % p.wo), r /= p.wo;
            oy = static_cast<int>(r % p.ho), r /= p.ho;
            c = static_cast<int>(r % p.c), n = static_cast<int>(r / p.c);
        }
        const T* xp = x + n * p.sxn + c * p.sxc;
        // Coordinates in the zero-inserted signal of filter tap 0; only taps landing on a multiple
        // of `up` meet a real sample.
        const int uy = oy * p.downy - p.py0, ux = ox * p.downx - p.px0;
        float acc = 0.f;
        for (int ky = pmod(-uy, p.upy); ky < p.fh; ky += p.upy) {
            const int iy = (uy + ky) / p.upy;  // exact division
            if (iy < 0 || iy >= p.h) continue;
            for (int kx = pmod(-ux, p.upx); kx < p.fw; kx += p.upx) {
                const int ix = (ux + kx) / p.upx;
                if (ix < 0 || ix >= p.w) continue;
                acc += filter_tap(p, ky, kx) * Num<T>::load(xp[iy * p.sxh + ix * p.sxw]);
            }
        }
        y[n * p.syn + c * p.syc + oy * p.syh + ox * p.syw] = Num<T>::store(acc);
    }
}

// ---------------------------------------------------------------------------------------------
// Tiled kernels.

template <int U, int D, int K, int SX, int SY>
struct TileShape {
    static_assert((SX * D) % U == 0 && (SY * D) % U == 0, "a thread's patch must start on a real sample");
    static constexpr int STEPX = SX * D / U;                  // input columns between neighbouring threads
    static constexpr int STEPY = SY * D / U;
    static constexpr int WX = ((SX - 1) * D + K - 1) / U + 1;  // input window per thread
    static constexpr int WY = ((SY - 1) * D + K - 1) / U + 1;
    static constexpr int NVX = (WX + STEPX - 1) / STEPX;      // wide shared-memory loads per window row
    static constexpr int THREADS = 128;
};

// The first tile starts at output coordinate o <= 0 chosen so that (o * D - pad0) is a multiple
// of U: then every thread's patch starts on a real input sample. 1 (invalid) if there is none.
inline int first_origin(int pad0, int up, int down) {
    for (int o = 0; o > -up; o--)
        if (pmod(o * down - pad0, up) == 0) return o;
    return 1;
}

// Host side: choose block shape and tile sizes. False if this shape cannot be tiled.
template <int U, int D, int K, int SX, int SY>
inline bool upfirdn2d_plan(Upfirdn2dParams& p) {
    using S = TileShape<U, D, K, SX, SY>;
    p.ox_first = first_origin(p.px0, U, D);
    p.oy_first = first_origin(p.py0, U, D);
    if (p.ox_first > 0 || p.oy_first > 0) return false;
    const int64_t planes = static_cast<int64_t>(p.n) * p.c;
    const int need_x = pow2_ceil(ceil_div(p.wo - p.ox_first, SX));
    const int need_y = pow2_ceil(ceil_div(p.ho - p.oy_first, SY));
    const int need_p = planes >= 32 ? 32 : pow2_ceil(static_cast<int>(planes));
    int t = S::THREADS;
    if (p.channels_fastest) {  // threads along channels first: coalesced loads and stores
        p.bp = need_p < t ? need_p : t;
        t /= p.bp;
        p.bx = need_x < t ? need_x : t;
        t /= p.bx;
        p.by = need_y < t ? need_y : t;
    } else {  // threads along x first; several planes per block only when images are small
        p.bx = need_x < 16 ? need_x : 16;
        t /= p.bx;
        p.by = need_y < t ? need_y : t;
        t /= p.by;
        p.bp = need_p < t ? need_p : t;
    }
    for (;;) {
        p.tiw = (p.bx - 1) * S::STEPX + S::WX;
        p.tih = (p.by - 1) * S::STEPY + S::WY;
        p.pitch = p.channels_fastest ? p.tiw : (p.bx - 1) * S::STEPX + S::NVX * S::STEPX;
        const int64_t floats = static_cast<int64_t>(p.bp) * p.tih * p.pitch;
        p.smem_bytes = static_cast<int>(floats * 4 + p.bp * 16);
        if (p.smem_bytes <= 48 * 1024) break;
        if (p.bp > 1) p.bp /= 2;  // large planes-per-block first, then tile height
        else if (p.by > 1) p.by /= 2;
        else return false;
    }
    const int nthreads = p.bx * p.by * p.bp;
    if (p.channels_fastest) {
        p.load_lanes = p.bp;
    } else {
        const int lanes = pow2_ceil(p.pitch) < 32 ? pow2_ceil(p.pitch) : 32;
        p.load_lanes = lanes < nthreads ? lanes : nthreads;
    }
    p.vec_load = !p.channels_fastest && p.sxw == 1 && aligned16(p.x);
    p.load_lanes_log2 = 0;
    while ((1 << p.load_lanes_log2) < p.load_lanes) p.load_lanes_log2++;
    p.tiles_x = ceil_div(p.wo - p.ox_first, p.bx * SX);
    p.tiles_y = ceil_div(p.ho - p.oy_first, p.by * SY);
    p.tiles_p = static_cast<int>((planes + p.bp - 1) / p.bp);
    return static_cast<int64_t>(p.tiles_x) * p.tiles_y * p.tiles_p < (int64_t(1) << 31);
}

struct TileOrigin {
    int ox, oy;  // output coordinates of the tile's first patch
    int qx, qy;  // input coordinates of the tile's first staged sample
    int plane;   // first plane (n * C + c)
};

template <int U, int D, int K, int SX, int SY>
BENDER_HD TileOrigin tile_origin(const Upfirdn2dParams& p, int64_t block) {
    TileOrigin t;
    const int tx = static_cast<int>(block % p.tiles_x);
    const int64_t r = block / p.tiles_x;
    const int ty = static_cast<int>(r % p.tiles_y);
    t.plane = static_cast<int>(r / p.tiles_y) * p.bp;
    t.ox = p.ox_first + tx * p.bx * SX;
    t.oy = p.oy_first + ty * p.by * SY;
    t.qx = (t.ox * D - p.px0) / U;  // exact: see first_origin
    t.qy = (t.oy * D - p.py0) / U;
    return t;
}

// Phase 0: element offsets of the block's planes in x and y (-1: past the last plane).
BENDER_HD void tile_phase_planes(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int64_t* in_off,
                                 int64_t* out_off) {
    if (tid >= p.bp) return;
    const int pl = t.plane + tid;
    if (pl < p.n * p.c) {
        const int n = pl / p.c, c = pl - n * p.c;
        in_off[tid] = n * p.sxn + c * p.sxc;
        out_off[tid] = n * p.syn + c * p.syc;
    } else {
        in_off[tid] = out_off[tid] = -1;
    }
}

// Phase 1: stage the input tile (zeros outside x) in shared memory, as float.
// Layout [plane][row][pitch] when x is planar (threads read along x), [row][col][plane] when x is
// channels_last (threads read along channels). Either way a warp reads consecutive addresses.
// Planar rows are read in 16-byte chunks when possible: aligned at absolute addresses, so rows of
// any width and offset qualify, and elements of a chunk outside the tile are simply dropped. (A
// chunk may extend up to 15 bytes past the tensor's last element; allocations are padded to far
// more than that.)
template <typename T>
BENDER_HD void tile_phase_load(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int nthreads,
                               const int64_t* in_off, float* tile) {
    constexpr int VE = 16 / sizeof(T);
    const T* x = static_cast<const T*>(p.x);
    const int lane = tid & (p.load_lanes - 1);
    const int row_step = nthreads >> p.load_lanes_log2;
    if (!p.channels_fastest) {
        const int rows = p.bp * p.tih;
        for (int row = tid >> p.load_lanes_log2; row < rows; row += row_step) {
            const int pl = row / p.tih, iy = row - pl * p.tih, gy = t.qy + iy;
            const int64_t base = in_off[pl];
            const bool row_ok = base >= 0 && gy >= 0 && gy < p.h;
            float* dst = tile + static_cast<int64_t>(row) * p.pitch;
            // Columns [lo, hi) of x land in this row of the tile; everything else is zero.
            const int lo = row_ok ? (t.qx > 0 ? t.qx : 0) : 0;
            const int hi = row_ok ? (t.qx + p.tiw < p.w ? t.qx + p.tiw : p.w) : 0;
            if (p.vec_load) {
                for (int ix = lane; ix < p.pitch; ix += p.load_lanes) {
                    const int gx = t.qx + ix;
                    if (gx < lo || gx >= hi) dst[ix] = 0.f;
                }
                if (lo < hi) {
                    const int64_t a0 = base + gy * p.sxh;  // element index of column 0 of this row
                    const int64_t c0 = (a0 + lo) / VE, c1 = (a0 + hi - 1) / VE;
                    for (int64_t c = c0 + lane; c <= c1; c += p.load_lanes) {
                        const Vec<T, VE> v = load_vec<T, VE>(x + c * VE);
#pragma unroll
                        for (int k = 0; k < VE; k++) {
                            const int64_t gx = c * VE + k - a0;
                            if (gx >= lo && gx < hi) dst[gx - t.qx] = Num<T>::load(v.v[k]);
                        }
                    }
                }
            } else {
                for (int ix = lane; ix < p.pitch; ix += p.load_lanes) {
                    const int gx = t.qx + ix;
                    dst[ix] = (gx >= lo && gx < hi) ? Num<T>::load(x[base + gy * p.sxh + gx * p.sxw]) : 0.f;
                }
            }
        }
    } else {
        const int rows = p.tih * p.tiw;
        for (int row = tid >> p.load_lanes_log2; row < rows; row += row_step) {
            const int iy = row / p.tiw, ix = row - iy * p.tiw, gy = t.qy + iy, gx = t.qx + ix;
            const bool ok = gy >= 0 && gy < p.h && gx >= 0 && gx < p.w;
            float* dst = tile + static_cast<int64_t>(row) * p.bp;
            for (int pl = lane; pl < p.bp; pl += p.load_lanes) {
                const int64_t base = in_off[pl];
                dst[pl] = (ok && base >= 0) ? Num<T>::load(x[base + gy * p.sxh + gx * p.sxw]) : 0.f;
            }
        }
    }
}

// Phase 2: each thread computes its SY x SX patch from a register window of the staged tile.
template <typename T, int U, int D, int K, int SX, int SY>
BENDER_HD void tile_phase_compute(const Upfirdn2dParams& p, const TileOrigin& t, int tid, const int64_t* out_off,
                                  const float* tile) {
    using S = TileShape<U, D, K, SX, SY>;
    int tx, ty, tp;
    if (!p.channels_fastest) {
        tx = tid % p.bx, ty = (tid / p.bx) % p.by, tp = tid / (p.bx * p.by);
    } else {
        tp = tid % p.bp, tx = (tid / p.bp) % p.bx, ty = tid / (p.bp * p.bx);
    }
    const int64_t obase = out_off[tp];
    const int ox0 = t.ox + tx * SX, oy0 = t.oy + ty * SY;
    if (obase < 0 || ox0 >= p.wo || oy0 >= p.ho) return;

    float fr[K][K];
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++) fr[ky][kx] = filter_tap(p, ky, kx);

    float win[S::WY][S::NVX * S::STEPX];
    if (!p.channels_fastest) {
        const float* src = tile + (static_cast<int64_t>(tp) * p.tih + ty * S::STEPY) * p.pitch + tx * S::STEPX;
#pragma unroll
        for (int r = 0; r < S::WY; r++)
#pragma unroll
            for (int v = 0; v < S::NVX; v++) load_floats<S::STEPX>(src + r * p.pitch + v * S::STEPX, &win[r][v * S::STEPX]);
    } else {
        const float* src = tile + (static_cast<int64_t>(ty) * S::STEPY * p.tiw + tx * S::STEPX) * p.bp + tp;
#pragma unroll
        for (int r = 0; r < S::WY; r++)
#pragma unroll
            for (int cc = 0; cc < S::WX; cc++) win[r][cc] = src[(r * p.tiw + cc) * p.bp];
    }

    T* y = static_cast<T*>(p.y);
    // A whole patch row as one store when it is inside the image and aligned.
    const bool row_vec = p.syw == 1 && ox0 >= 0 && ox0 + SX <= p.wo;
#pragma unroll
    for (int a = 0; a < SY; a++) {
        const int oy = oy0 + a;
        Vec<T, SX> out;
#pragma unroll
        for (int b = 0; b < SX; b++) {
            float acc = 0.f;
#pragma unroll
            for (int ky = 0; ky < K; ky++) {
                if ((a * D + ky) % U != 0) continue;
#pragma unroll
                for (int kx = 0; kx < K; kx++) {
                    if ((b * D + kx) % U != 0) continue;
                    acc += fr[ky][kx] * win[(a * D + ky) / U][(b * D + kx) / U];
                }
            }
            out.v[b] = Num<T>::store(acc);
        }
        if (oy < 0 || oy >= p.ho) continue;
        const int64_t row = obase + oy * p.syh;
        if (row_vec && (row + ox0) % SX == 0) {
            store_vec<T, SX>(y + row + ox0, out);
        } else {
#pragma unroll
            for (int b = 0; b < SX; b++) {
                const int ox = ox0 + b;
                if (ox >= 0 && ox < p.wo) y[row + ox * p.syw] = out.v[b];
            }
        }
    }
}

}  // namespace bender
