// upfirdn2d's row-streaming kernels: StyleGAN2's 1x filtering, 2x downsampling and 2x upsampling
// (4x4 filter), planar (NCHW) or channels_last (NHWC), without shared memory.
//
// Why a second fast path next to the tiled kernels (upfirdn2d.cuh): those measured at 16-25 % of
// the bandwidth floor on an H200, and most of their instructions are index arithmetic around the
// staging of a tile through shared memory (run-time divisions, per-chunk bounds, rotations against
// bank conflicts, barriers), not the 16 multiply-adds per output (benchmarks/upfirdn2d_sass.py
// counts them). Here a thread owns a short run of outputs in each of RS consecutive output rows and
// walks down the input rows those need: each input row is read with wide loads (neighbouring
// threads' loads overlap by the filter's halo, which the L1 cache serves), turned into floats once,
// and multiplied into the accumulators of the few output rows it touches. The walk is unrolled at
// compile time and the loads of the next kRowsAhead rows are in flight while a row is used, so per
// row a thread does one address computation, its loads, the conversions and the multiply-adds. A
// separable filter (StyleGAN2's binomial ones; detected on the device) is applied along x once per
// input row, then along y: K + K multiply-adds per output instead of K * K.
// Upsampling (U = 2) is polyphase: a thread's first output is placed so that which taps meet real
// (not zero-inserted) samples is known at compile time, and no multiply is spent on inserted zeros.
//
// The layouts differ only in how a thread's outputs and window sit in memory (the policies below):
//  * planar: OUT = 16 bytes of consecutive outputs of one plane; the window is read as 16-byte
//    chunks. Rows of odd width (257 for G's 1x filter) start at every alignment, so where the window
//    starts inside its first chunk is a run-time value; a switch turns it into compile-time cases,
//    so taking the window out of the chunks never indexes registers at run time.
//  * channels_last: CV channels (8 bytes) of PX consecutive output pixels; each input pixel's CV
//    channels are one aligned load, so there is nothing to realign.
#pragma once

#include "common.cuh"
#include "ops.h"
#include "upfirdn2d.cuh"

namespace bender {

// The row-streaming fast paths: (up, down, taps, output rows per thread). Expanded by the CUDA
// launcher and by the CPU emulator, so both always agree on what exists.
#define BENDER_UPFIRDN2D_ROWS(X) X(1, 1, 4, 16) X(1, 2, 4, 8) X(2, 1, 4, 16)

constexpr int kRowsThreads = 128;  // threads per block
constexpr int kRowsAhead = 2;      // input rows whose loads are in flight while a row is used

// ---------------------------------------------------------------------------------------------
// Planar layout.

template <typename T, int U, int D, int K>
struct PlanarRows {
    static constexpr int VE = 16 / static_cast<int>(sizeof(T));  // elements per 16-byte chunk
    static constexpr int OUT = VE;                                // outputs per row: one 16-byte store
    static constexpr int NW = ((OUT - 1) * D + K - 1) / U + 1;    // input columns they read
    static constexpr int NC = (VE - 1 + NW + VE - 1) / VE;        // chunks covering them at any alignment
    struct Buf {
        uint32_t w[NC * 4];
        int s;  // where the window starts in chunk 0
    };
    // Whether output b's filter tap kx meets a real input sample, and which window element it is
    // (the thread's first output is placed on a real sample: see rows_filter_ok).
    BENDER_HD static constexpr bool meets(int b, int kx) { return (b * D + kx) % U == 0; }
    BENDER_HD static constexpr int win(int b, int kx) { return (b * D + kx) / U; }

    const Upfirdn2dParams& p;
    int64_t plane_x;  // the plane's first element, as an index into x
    T* y;             // the plane's first output
    int ox0, ix0;     // the thread's first output column (may be -1 when upsampling); its window's first input column
    bool cols_inside;

    // Issue the loads of input row iy (rows outside the image read as zeros). A chunk is read only if
    // it holds part of the window and part of the row: then it lies inside the 16-byte-aligned span of
    // the row's own elements, so nothing outside x's allocation is touched. Its elements outside the
    // row are zeroed by `window`.
    BENDER_HD void fetch(int iy, Buf& r) const {
        const T* x = static_cast<const T*>(p.x);
        const int64_t e = plane_x + static_cast<int64_t>(iy) * p.sxh + ix0;
        r.s = static_cast<int>(e & (VE - 1));  // x itself is 16-byte aligned (see the plan)
        const bool row_ok = iy >= 0 && iy < p.h;
#pragma unroll
        for (int k = 0; k < NC; k++) {
            const int col = ix0 - r.s + k * VE;  // row column of the chunk's first element
            const int first = k * VE - r.s;      // window index of the chunk's first element
            const bool ok = row_ok && first < NW && col < p.w && col + VE > 0;
            const Vec<uint32_t, 4> c =
                ok ? load_vec<uint32_t, 4>(reinterpret_cast<const uint32_t*>(x + (e - r.s + k * VE)))
                   : Vec<uint32_t, 4>{};
#pragma unroll
            for (int i = 0; i < 4; i++) r.w[k * 4 + i] = c.v[i];
        }
    }

    template <int S>
    static BENDER_HD void window_at(const uint32_t* w, float* v) {
#pragma unroll
        for (int e = 0; e < NW; e++) v[e] = Num<T>::load(packed_element<T>(w, S + e));
    }

    // v[e] = window element e (zero outside the row).
    BENDER_HD void window(const Buf& r, float* v) const {
        static_assert(VE == 4 || VE == 8, "2- and 4-byte types");
#define BENDER_ROWS_CASE(S)                \
    case S:                                \
        if constexpr (S < VE) {            \
            window_at<S>(r.w, v);          \
            break;                         \
        }
        switch (r.s) {
            BENDER_ROWS_CASE(0) BENDER_ROWS_CASE(1) BENDER_ROWS_CASE(2) BENDER_ROWS_CASE(3)
            BENDER_ROWS_CASE(4) BENDER_ROWS_CASE(5) BENDER_ROWS_CASE(6) BENDER_ROWS_CASE(7)
            default: break;
        }
#undef BENDER_ROWS_CASE
        if (!cols_inside) {
#pragma unroll
            for (int e = 0; e < NW; e++) v[e] = ix0 + e >= 0 && ix0 + e < p.w ? v[e] : 0.f;
        }
    }

    // Write output row oy (the outputs ox0 .. ox0 + OUT - 1 that exist).
    BENDER_HD void store(int oy, const float* acc) const {
        if (oy < 0 || oy >= p.ho) return;
        Vec<T, OUT> out;
#pragma unroll
        for (int b = 0; b < OUT; b++) out.v[b] = Num<T>::store(acc[b]);
        T* row = y + static_cast<int64_t>(oy) * p.syh;
        if (p.rows_vec_store) {  // unit stride: one 16-byte store where aligned, else element stores
            T* dst = row + ox0;
            if (ox0 >= 0 && ox0 + OUT <= p.wo && (dst - static_cast<T*>(p.y)) % OUT == 0) {
                store_vec<T, OUT>(dst, out);
            } else {
#pragma unroll
                for (int b = 0; b < OUT; b++)
                    if (ox0 + b >= 0 && ox0 + b < p.wo) dst[b] = out.v[b];
            }
        } else {
#pragma unroll
            for (int b = 0; b < OUT; b++)
                if (ox0 + b >= 0 && ox0 + b < p.wo) row[static_cast<int64_t>(ox0 + b) * p.syw] = out.v[b];
        }
    }
};

// ---------------------------------------------------------------------------------------------
// channels_last layout.

template <typename T, int U, int D, int K>
struct ChannelsLastRows {
    static constexpr int CV = 8 / static_cast<int>(sizeof(T));   // channels per thread: one 8-byte load
    static constexpr int WORDS = CV * static_cast<int>(sizeof(T)) / 4;
    static constexpr int PX = 2;                                  // output pixels per row
    static constexpr int OUT = PX * CV;
    static constexpr int NP = ((PX - 1) * D + K - 1) / U + 1;     // input pixels per row
    static constexpr int NW = NP * CV;
    struct Buf {
        uint32_t w[NP * WORDS];
    };
    // Output b is channel b % CV of pixel b / CV; tap kx of it reads that channel of input pixel
    // ((b / CV) * D + kx) / U, when that is a real sample.
    BENDER_HD static constexpr bool meets(int b, int kx) { return ((b / CV) * D + kx) % U == 0; }
    BENDER_HD static constexpr int win(int b, int kx) { return ((b / CV) * D + kx) / U * CV + b % CV; }

    const Upfirdn2dParams& p;
    const T* x0;     // the thread's first channel at input pixel (0, ix0) of its image (may lie outside x)
    T* y0;           // the thread's first channel at output pixel (0, ox0) (ox0 may be -1 when upsampling)
    unsigned valid;  // bit q: window pixel q lies inside the row
    unsigned outs;   // bit px: output pixel ox0 + px exists

    BENDER_HD void fetch(int iy, Buf& r) const {
        const T* row = x0 + static_cast<int64_t>(iy) * p.sxh;
        const bool row_ok = iy >= 0 && iy < p.h;
        const int sxw = static_cast<int>(p.sxw);  // < 2^26 (upfirdn2d_rows_cl_plan)
#pragma unroll
        for (int q = 0; q < NP; q++) {
            const uint32_t* src = reinterpret_cast<const uint32_t*>(row + q * sxw);
            const Vec<uint32_t, WORDS> c =
                row_ok && (valid >> q & 1u) ? load_vec<uint32_t, WORDS>(src) : Vec<uint32_t, WORDS>{};
#pragma unroll
            for (int i = 0; i < WORDS; i++) r.w[q * WORDS + i] = c.v[i];
        }
    }

    BENDER_HD void window(const Buf& r, float* v) const {
#pragma unroll
        for (int e = 0; e < NW; e++) v[e] = Num<T>::load(packed_element<T>(r.w, e));
    }

    BENDER_HD void store(int oy, const float* acc) const {
        if (oy < 0 || oy >= p.ho) return;
        T* row = y0 + static_cast<int64_t>(oy) * p.syh;
        const int syw = static_cast<int>(p.syw);  // < 2^26 (upfirdn2d_rows_cl_plan)
#pragma unroll
        for (int px = 0; px < PX; px++) {
            if (!(outs >> px & 1u)) continue;
            Vec<T, CV> out;
#pragma unroll
            for (int c = 0; c < CV; c++) out.v[c] = Num<T>::store(acc[px * CV + c]);
            store_vec<T, CV>(row + px * syw, out);
        }
    }
};

// ---------------------------------------------------------------------------------------------
// Planning (host side). False if the call is not one these kernels cover.

// Factors and filter size, and the first output of the first thread along each axis: placed at or
// before 0 so that its filter taps start on a real sample (first_origin, as the tiled kernels do).
template <int U, int D, int K>
inline bool rows_filter_ok(Upfirdn2dParams& p) {
    if (p.upx != U || p.upy != U || p.downx != D || p.downy != D || p.fw != K || p.fh != K) return false;
    p.ox_first = first_origin(p.px0, U, D);
    p.oy_first = first_origin(p.py0, U, D);
    return p.ox_first <= 0 && p.oy_first <= 0;
}

BENDER_HD int64_t upfirdn2d_rows_threads(const Upfirdn2dParams& p) {
    return static_cast<int64_t>(p.n) * p.rows_cgroups * p.rows_groups * p.rows_strips;
}

// The grid, the same for both layouts: n x cgroups "planes" (channels_last: groups of CV channels;
// planar: single channels), each cut into runs of `outs` outputs along a row and strips of `rs` rows.
inline bool rows_grid(Upfirdn2dParams& p, int cgroups, int outs, int rs) {
    p.rows_cgroups = cgroups;
    p.rows_groups = ceil_div(p.wo - p.ox_first, outs);
    p.rows_strips = ceil_div(p.ho - p.oy_first, rs);
    if (upfirdn2d_rows_threads(p) >= (int64_t(1) << 31) - kRowsThreads) return false;  // int thread indices
    p.dv_rows_cgroups = make_fastdiv(p.rows_cgroups);
    p.dv_rows_groups = make_fastdiv(p.rows_groups);
    p.dv_rows_strips = make_fastdiv(p.rows_strips);
    return true;
}

template <typename T, int U, int D, int K, int RS>
inline bool upfirdn2d_rows_plan(Upfirdn2dParams& p) {
    using L = PlanarRows<T, U, D, K>;
    if (p.channels_fastest || p.sxw != 1 || !aligned16(p.x) || !rows_filter_ok<U, D, K>(p)) return false;
    p.rows_vec_store = p.syw == 1 && aligned16(p.y) ? 1 : 0;
    return rows_grid(p, p.c, L::OUT, RS);
}

// channels_last: every pixel's channel groups must be aligned loads and stores, in x and in y.
template <typename T, int U, int D, int K, int RS>
inline bool upfirdn2d_rows_cl_plan(Upfirdn2dParams& p) {
    using L = ChannelsLastRows<T, U, D, K>;
    constexpr int CV = L::CV;
    const auto aligned = [](const void* q) { return reinterpret_cast<uintptr_t>(q) % (CV * sizeof(T)) == 0; };
    if (!p.channels_fastest || p.sxc != 1 || p.syc != 1 || p.c % CV != 0) return false;
    if (p.sxw % CV || p.sxh % CV || p.sxn % CV || p.syw % CV || p.syh % CV || p.syn % CV) return false;
    if (p.sxw >= (int64_t(1) << 26) || p.syw >= (int64_t(1) << 26)) return false;  // 32-bit pixel offsets
    if (!aligned(p.x) || !aligned(p.y) || !rows_filter_ok<U, D, K>(p)) return false;
    return rows_grid(p, p.c / CV, L::PX, RS);
}

// ---------------------------------------------------------------------------------------------
// The walk (both layouts).

// The filter as a column times a row, when it is one: taps[ky][kx] == fy[ky] * fx[kx] to within
// float rounding of the largest tap. Every thread decides the same way (same taps), so the branch
// on it never splits a warp.
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

// Input rows iy0 .. iy0 + RIN - 1 into output rows oy0 .. oy0 + RS - 1, for a separable (SEP) or a
// general filter.
template <int U, int D, int K, int RS, bool SEP, typename L>
BENDER_HD void rows_walk(const L& l, int oy0, int iy0, const float (&taps)[K][K], const float* fy,
                         const float* fx) {
    constexpr int OUT = L::OUT, NW = L::NW, RIN = ((RS - 1) * D + K - 1) / U + 1, NB = kRowsAhead + 1;
    float acc[RS][OUT];
    typename L::Buf buf[NB];
#pragma unroll
    for (int j = 0; j < kRowsAhead; j++) l.fetch(iy0 + j, buf[j]);
#pragma unroll
    for (int j = 0; j < RIN; j++) {
        if (j + kRowsAhead < RIN) l.fetch(iy0 + j + kRowsAhead, buf[(j + kRowsAhead) % NB]);
        float v[NW];
        l.window(buf[j % NB], v);
        float h[OUT];  // separable: the row filtered along x once, shared by every output row it meets
        if constexpr (SEP) {
#pragma unroll
            for (int b = 0; b < OUT; b++) {
                float a = 0.f;
#pragma unroll
                for (int kx = 0; kx < K; kx++)
                    if (L::meets(b, kx)) a += fx[kx] * v[L::win(b, kx)];
                h[b] = a;
            }
        }
        // Input row j meets output row o through filter row ky = j * U - o * D (oy0 and iy0 are
        // placed so that this is a real sample); its first contribution has ky < U, its last ky >= K - U.
#pragma unroll
        for (int o = 0; o < RS; o++) {
            const int ky = j * U - o * D;
            if (ky < 0 || ky >= K) continue;
#pragma unroll
            for (int b = 0; b < OUT; b++) {
                float a = ky < U ? 0.f : acc[o][b];
                if constexpr (SEP) {
                    a += fy[ky] * h[b];
                } else {
#pragma unroll
                    for (int kx = 0; kx < K; kx++)
                        if (L::meets(b, kx)) a += taps[ky][kx] * v[L::win(b, kx)];
                }
                acc[o][b] = a;
            }
            if (ky >= K - U) l.store(oy0 + o, acc[o]);  // output row o is complete
        }
    }
}

template <int U, int D, int K, int RS, typename L>
BENDER_HD void rows_run(const Upfirdn2dParams& p, const L& l, int oy0) {
    float taps[K][K], fy[K], fx[K];
#pragma unroll
    for (int ky = 0; ky < K; ky++)
#pragma unroll
        for (int kx = 0; kx < K; kx++) taps[ky][kx] = filter_tap(p, ky, kx);
    const int iy0 = (oy0 * D - p.py0) / U;  // exact: see rows_filter_ok
    if (separate_filter<K>(taps, fy, fx))
        rows_walk<U, D, K, RS, true>(l, oy0, iy0, taps, fy, fx);
    else
        rows_walk<U, D, K, RS, false>(l, oy0, iy0, taps, fy, fx);
}

// Thread g of a planar launch: outputs [ox0, ox0 + OUT) x [oy0, oy0 + RS) of one plane.
template <typename T, int U, int D, int K, int RS>
BENDER_HD void upfirdn2d_rows_thread(const Upfirdn2dParams& p, int g) {
    using L = PlanarRows<T, U, D, K>;
    const int r = fast_div(p.dv_rows_groups, g);
    const int gx = g - r * p.rows_groups;
    const int plane = fast_div(p.dv_rows_strips, r);
    const int strip = r - plane * p.rows_strips;
    if (plane >= p.n * p.c) return;
    const int n = fast_div(p.dv_rows_cgroups, plane), c = plane - n * p.c;  // planar: rows_cgroups == C
    const int ox0 = p.ox_first + gx * L::OUT, ix0 = (ox0 * D - p.px0) / U;
    const L l{p, n * p.sxn + c * p.sxc, static_cast<T*>(p.y) + (n * p.syn + c * p.syc), ox0, ix0,
              ix0 >= 0 && ix0 + L::NW <= p.w};
    rows_run<U, D, K, RS>(p, l, p.oy_first + strip * RS);
}

// Thread g of a channels_last launch: CV channels of output pixels [ox0, ox0 + PX) x [oy0, oy0 + RS)
// of one image. Neighbouring threads take neighbouring channel groups: coalesced loads and stores.
template <typename T, int U, int D, int K, int RS>
BENDER_HD void upfirdn2d_rows_cl_thread(const Upfirdn2dParams& p, int g) {
    using L = ChannelsLastRows<T, U, D, K>;
    const int r = fast_div(p.dv_rows_cgroups, g);
    const int c0 = (g - r * p.rows_cgroups) * L::CV;
    const int r2 = fast_div(p.dv_rows_groups, r);
    const int gx = r - r2 * p.rows_groups;
    const int n = fast_div(p.dv_rows_strips, r2);
    const int strip = r2 - n * p.rows_strips;
    if (n >= p.n) return;
    const int ox0 = p.ox_first + gx * L::PX, ix0 = (ox0 * D - p.px0) / U;
    unsigned valid = 0, outs = 0;
#pragma unroll
    for (int q = 0; q < L::NP; q++) valid |= (ix0 + q >= 0 && ix0 + q < p.w ? 1u : 0u) << q;
#pragma unroll
    for (int px = 0; px < L::PX; px++) outs |= (ox0 + px >= 0 && ox0 + px < p.wo ? 1u : 0u) << px;
    const T* x0 = static_cast<const T*>(p.x) + (n * p.sxn + c0 + static_cast<int64_t>(ix0) * p.sxw);
    T* y0 = static_cast<T*>(p.y) + (n * p.syn + c0 + static_cast<int64_t>(ox0) * p.syw);
    const L l{p, x0, y0, valid, outs};
    rows_run<U, D, K, RS>(p, l, p.oy_first + strip * RS);
}

}  // namespace bender
