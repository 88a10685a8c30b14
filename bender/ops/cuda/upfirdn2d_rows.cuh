// upfirdn2d's row-streaming kernels: StyleGAN2's 1x filtering and 2x downsampling (4x4 filter) of
// planar tensors, without shared memory.
//
// Why a second fast path next to the tiled kernels (upfirdn2d.cuh): those measured at 16-25 % of
// the bandwidth floor on an H200, and most of their instructions are index arithmetic around the
// staging of a tile through shared memory (run-time divisions, per-chunk bounds, rotations against
// bank conflicts, barriers), not the 16 multiply-adds per output. Here a thread owns OX consecutive
// outputs (one 16-byte store) in each of RS consecutive rows of one plane, and walks down the input
// rows those need: each input row is read as 16-byte chunks (neighbouring threads' chunks overlap by
// the filter's halo, which the L1 cache serves), turned into floats once, and multiplied into the
// accumulators of the at most K / D output rows it touches. The walk is unrolled at compile time,
// and the loads of the next AHEAD rows are in flight while a row is used, so per row a thread does one
// address computation, its loads, the conversions and the multiply-adds.
//
// The one run-time quantity per row is where the thread's window starts inside its first chunk:
// rows of odd width (257 for G's 1x filter) start at every alignment. A switch turns it into VE
// compile-time cases, so taking the window out of the chunks never indexes registers at run time.
// Within a warp it is uniform whenever the warp's threads share a row (images at least 32 * OX wide).
#pragma once

#include "common.cuh"
#include "ops.h"
#include "upfirdn2d.cuh"

namespace bender {

// The row-streaming fast paths: (down, taps, output rows per thread). Expanded by the CUDA launcher
// and by the CPU emulator, so both always agree on what exists. Up is always 1.
#define BENDER_UPFIRDN2D_ROWS(X) X(1, 4, 16) X(2, 4, 8)

template <typename T, int D, int K, int RS>
struct RowsShape {
    static constexpr int VE = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk
    static constexpr int OX = VE;                                 // outputs per thread and row: one 16-byte store
    static constexpr int NW = (OX - 1) * D + K;                   // input columns those outputs read
    static constexpr int NC = (VE - 1 + NW + VE - 1) / VE;        // chunks that cover them at any alignment
    static constexpr int RIN = (RS - 1) * D + K;                  // input rows a thread reads
    static constexpr int AHEAD = 2;  // input rows whose loads are in flight while a row is used
    static constexpr int THREADS = 128;
};

// Host side: fill the row plan. False if this call is not one the row kernels cover.
template <typename T, int D, int K, int RS>
inline bool upfirdn2d_rows_plan(Upfirdn2dParams& p) {
    using S = RowsShape<T, D, K, RS>;
    if (p.upx != 1 || p.upy != 1 || p.downx != D || p.downy != D || p.fw != K || p.fh != K) return false;
    if (p.channels_fastest || p.sxw != 1 || !aligned16(p.x)) return false;  // planar rows, 16-byte chunks
    p.rows_groups = ceil_div(p.wo, S::OX);
    p.rows_strips = ceil_div(p.ho, RS);
    const int64_t threads = static_cast<int64_t>(p.n) * p.c * p.rows_groups * p.rows_strips;
    if (threads >= (int64_t(1) << 31) - S::THREADS) return false;
    p.dv_rows_groups = make_fastdiv(p.rows_groups);
    p.dv_rows_strips = make_fastdiv(p.rows_strips);
    p.dv_c = make_fastdiv(p.c);
    p.rows_vec_store = p.syw == 1 && aligned16(p.y) ? 1 : 0;
    return true;
}

BENDER_HD int64_t upfirdn2d_rows_threads(const Upfirdn2dParams& p) {
    return static_cast<int64_t>(p.n) * p.c * p.rows_groups * p.rows_strips;
}

// Element i of a row of chunks held as 32-bit words (little-endian, like the GPU).
template <typename T>
BENDER_HD float chunk_element(const uint32_t* w, int i) {
    if constexpr (sizeof(T) == 4) return Num<T>::load(from_bits<T>(w[i]));
    else return Num<T>::load(from_bits<T>(static_cast<uint32_t>(w[i / 2] >> (i % 2 * 16))));
}

// v[e] = element S + e, for a compile-time S.
template <typename T, int NW, int S>
BENDER_HD void window_at(const uint32_t* w, float* v) {
#pragma unroll
    for (int e = 0; e < NW; e++) v[e] = chunk_element<T>(w, S + e);
}

// v[e] = element s + e for a run-time s in [0, VE): one compile-time case per alignment.
template <typename T, int NW>
BENDER_HD void window_from_chunks(const uint32_t* w, int s, float* v) {
    constexpr int VE = 16 / static_cast<int>(sizeof(T));
    static_assert(VE == 4 || VE == 8, "2- and 4-byte types");
#define BENDER_ROWS_CASE(S)                      \
    case S:                                      \
        if constexpr (S < VE) {                  \
            window_at<T, NW, S>(w, v);           \
            break;                               \
        }
    switch (s) {
        BENDER_ROWS_CASE(0) BENDER_ROWS_CASE(1) BENDER_ROWS_CASE(2) BENDER_ROWS_CASE(3)
        BENDER_ROWS_CASE(4) BENDER_ROWS_CASE(5) BENDER_ROWS_CASE(6) BENDER_ROWS_CASE(7)
        default: break;
    }
#undef BENDER_ROWS_CASE
}

// One input row of a thread's window on its way from global memory: the chunks as raw words (so
// nothing waits for them until they are used) and where the window starts in the first one.
template <int NC>
struct RowChunks {
    uint32_t w[NC * 4];
    int s;
};

// Issue the loads of input row iy (any value: rows outside the image read as zeros). `plane_x` is
// the plane's first element as an index into x, ix0 the window's first column (may be negative).
// A chunk is read only if it holds part of the window and part of the row: then it lies inside the
// 16-byte-aligned span of the row's own elements, so nothing outside x's allocation is touched.
// Its elements outside the row are zeroed by the caller (see `cols_inside`).
template <typename T, int NW, int NC>
BENDER_HD void rows_fetch(const Upfirdn2dParams& p, int64_t plane_x, int iy, int ix0, RowChunks<NC>& r) {
    constexpr int VE = 16 / static_cast<int>(sizeof(T));
    const T* x = static_cast<const T*>(p.x);
    const int64_t e = plane_x + static_cast<int64_t>(iy) * p.sxh + ix0;
    r.s = static_cast<int>(e & (VE - 1));  // x itself is 16-byte aligned (see upfirdn2d_rows_plan)
    const bool row_ok = iy >= 0 && iy < p.h;
#pragma unroll
    for (int k = 0; k < NC; k++) {
        const int col = ix0 - r.s + k * VE;  // row column of the chunk's first element
        const int first = k * VE - r.s;      // window index of the chunk's first element
        const bool ok = row_ok && first < NW && col < p.w && col + VE > 0;
        const Vec<uint32_t, 4> c = ok ? load_vec<uint32_t, 4>(reinterpret_cast<const uint32_t*>(x + (e - r.s + k * VE)))
                                      : Vec<uint32_t, 4>{};
#pragma unroll
        for (int i = 0; i < 4; i++) r.w[k * 4 + i] = c.v[i];
    }
}

// The filter as a column times a row, when it is one (StyleGAN2's binomial filters are): taps[ky][kx]
// == fy[ky] * fx[kx] to within float rounding of the largest tap. Then a row of outputs costs K + K
// multiply-adds per output instead of K * K. Every thread decides the same way (same taps), so the
// branch on it never splits a warp.
template <int K>
BENDER_HD bool separate_filter(const float (&taps)[K][K], float* fy, float* fx) {
    int py = 0, px = 0;
    float big = 0.f;
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++)
            if (fabsf(taps[ky][kx]) > big) big = fabsf(taps[ky][kx]), py = ky, px = kx;
    if (!(big > 0.f) || !(big < INFINITY)) return false;
    bool ok = true;
#pragma unroll
    for (int k = 0; k < K; k++) {
        float col = 0.f, row = 0.f;  // taps[k][px] and taps[py][k], without indexing registers at run time
#pragma unroll
        for (int i = 0; i < K; i++) {
            col = i == px ? taps[k][i] : col;
            row = i == py ? taps[i][k] : row;
        }
        fy[k] = col / big;
        fx[k] = row;
    }
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++) ok = ok && fabsf(fy[ky] * fx[kx] - taps[ky][kx]) <= big * 1e-6f;
    return ok;
}

// Write output row `oy` of the thread's plane (outputs ox0 .. ox0 + OX - 1 where they exist).
template <typename T, int OX>
BENDER_HD void rows_store(const Upfirdn2dParams& p, T* y, int oy, int ox0, const float* acc) {
    if (oy >= p.ho) return;
    Vec<T, OX> out;
#pragma unroll
    for (int b = 0; b < OX; b++) out.v[b] = Num<T>::store(acc[b]);
    T* row = y + static_cast<int64_t>(oy) * p.syh;
    if (p.rows_vec_store) {  // unit stride: one 16-byte store where aligned, else element stores
        T* dst = row + ox0;
        if (ox0 + OX <= p.wo && (dst - static_cast<T*>(p.y)) % OX == 0) {
            store_vec<T, OX>(dst, out);
        } else {
#pragma unroll
            for (int b = 0; b < OX; b++)
                if (ox0 + b < p.wo) dst[b] = out.v[b];
        }
    } else {
#pragma unroll
        for (int b = 0; b < OX; b++)
            if (ox0 + b < p.wo) row[static_cast<int64_t>(ox0 + b) * p.syw] = out.v[b];
    }
}

// The walk down the input rows, for a separable (SEP) or a general filter.
template <typename T, int D, int K, int RS, bool SEP>
BENDER_HD void rows_walk(const Upfirdn2dParams& p, int64_t plane_x, T* y, int ox0, int oy0, int ix0, int iy0,
                         const float (&taps)[K][K], const float* fy, const float* fx) {
    using S = RowsShape<T, D, K, RS>;
    constexpr int OX = S::OX, NW = S::NW, NC = S::NC, RIN = S::RIN;
    const bool cols_inside = ix0 >= 0 && ix0 + NW <= p.w;
    float acc[RS][OX];
    constexpr int NB = S::AHEAD + 1;
    RowChunks<NC> buf[NB];
#pragma unroll
    for (int j = 0; j < S::AHEAD; j++) rows_fetch<T, NW, NC>(p, plane_x, iy0 + j, ix0, buf[j]);
#pragma unroll
    for (int j = 0; j < RIN; j++) {
        if (j + S::AHEAD < RIN) rows_fetch<T, NW, NC>(p, plane_x, iy0 + j + S::AHEAD, ix0, buf[(j + S::AHEAD) % NB]);
        float v[NW];
        window_from_chunks<T, NW>(buf[j % NB].w, buf[j % NB].s, v);
        if (!cols_inside) {
#pragma unroll
            for (int e = 0; e < NW; e++) v[e] = ix0 + e >= 0 && ix0 + e < p.w ? v[e] : 0.f;
        }
        float h[OX];  // separable: the row filtered along x once, shared by every output row it meets
        if constexpr (SEP) {
#pragma unroll
            for (int b = 0; b < OX; b++) {
                float a = 0.f;
#pragma unroll
                for (int kx = 0; kx < K; kx++) a += fx[kx] * v[b * D + kx];
                h[b] = a;
            }
        }
        // Input row j meets output row o through filter row ky = j - o * D.
#pragma unroll
        for (int o = 0; o < RS; o++) {
            const int ky = j - o * D;
            if (ky < 0 || ky >= K) continue;
#pragma unroll
            for (int b = 0; b < OX; b++) {
                float a = ky == 0 ? 0.f : acc[o][b];
                if constexpr (SEP) {
                    a += fy[ky] * h[b];
                } else {
#pragma unroll
                    for (int kx = 0; kx < K; kx++) a += taps[ky][kx] * v[b * D + kx];
                }
                acc[o][b] = a;
            }
            if (ky == K - 1) rows_store<T, OX>(p, y, oy0 + o, ox0, acc[o]);  // output row o is complete
        }
    }
}

// Thread g's work: outputs [ox0, ox0 + OX) x [oy0, oy0 + RS) of one plane.
template <typename T, int D, int K, int RS>
BENDER_HD void upfirdn2d_rows_thread(const Upfirdn2dParams& p, int g) {
    using S = RowsShape<T, D, K, RS>;
    const int r = fast_div(p.dv_rows_groups, g);
    const int gx = g - r * p.rows_groups;
    const int plane = fast_div(p.dv_rows_strips, r);
    const int strip = r - plane * p.rows_strips;
    if (plane >= p.n * p.c) return;
    const int n = fast_div(p.dv_c, plane), c = plane - n * p.c;
    const int64_t plane_x = n * p.sxn + c * p.sxc;
    T* y = static_cast<T*>(p.y) + (n * p.syn + c * p.syc);
    const int ox0 = gx * S::OX, oy0 = strip * RS;
    const int ix0 = ox0 * D - p.px0, iy0 = oy0 * D - p.py0;

    float taps[K][K], fy[K], fx[K];
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++) taps[ky][kx] = filter_tap(p, ky, kx);
    if (separate_filter<K>(taps, fy, fx))
        rows_walk<T, D, K, RS, true>(p, plane_x, y, ox0, oy0, ix0, iy0, taps, fy, fx);
    else
        rows_walk<T, D, K, RS, false>(p, plane_x, y, ox0, oy0, ix0, iy0, taps, fy, fx);
}

}  // namespace bender
