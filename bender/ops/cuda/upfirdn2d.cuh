// upfirdn2d (upsample by zero insertion, pad, FIR filter, downsample) in one pass.
//
// Two kernels share the definition in ops.h:
//  * generic: one output per thread, reading x straight from global memory. Any factors, filter
//    size and strides. Simple enough to be correct by inspection; it is the baseline the tiled
//    kernels are tested against and the path for unusual arguments.
//  * tiled: StyleGAN2's cases (2x up, 2x down, 1x filtering, 4x4 filter). A block stages the input
//    tile it needs in shared memory (loading the next tile while computing this one); each thread
//    then computes an SY x SX patch of outputs from a window of that tile held in registers. The patches are aligned so that which filter taps meet
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
//
// A block walks through `tiles_per_block` consecutive tiles. Per tile: store the input tile, held
// in registers, into shared memory; barrier; issue the global loads of the *next* tile into
// registers; compute this tile's outputs from shared memory; barrier. So the next tile's reads are
// in flight while this one is computed, and the fixed cost of a block (plan arithmetic, filter
// taps, the first load's latency) is paid once per several tiles. The loads are spread over every
// thread of the block as independent (row, 16-byte chunk) items, several per thread, all issued
// before any is used: that, not the thread count, is what keeps enough bytes in flight to cover
// the memory latency.

template <int U, int D, int K, int SX, int SY>
struct TileShape {
    static_assert((SX * D) % U == 0 && (SY * D) % U == 0, "a thread's patch must start on a real sample");
    static constexpr int STEPX = SX * D / U;                  // input columns between neighbouring threads
    static constexpr int STEPY = SY * D / U;
    static constexpr int WX = ((SX - 1) * D + K - 1) / U + 1;  // input window per thread
    static constexpr int WY = ((SY - 1) * D + K - 1) / U + 1;
    static constexpr int NVX = (WX + STEPX - 1) / STEPX;      // wide shared-memory loads per window row
    static constexpr int THREADS = 128;
    static constexpr int MAX_TILES_PER_BLOCK = 16;
};

// One thread's share of a tile on its way from global to shared memory, as raw 32-bit words: NV
// 16-byte chunks (planar rows with unit stride), or NS single elements, one per word (any other
// layout). NV is sized so that the common plans (16x8 threads, see upfirdn2d_plan) need a single
// pass: 64 bytes per thread for 2-byte types, 96 for float.
template <typename T>
struct TileLoads {
    static constexpr int VE = 16 / sizeof(T);  // elements per chunk
    static constexpr int NV = sizeof(T) == 4 ? 6 : 4;
    static constexpr int NS = NV * 4;
    uint32_t w[NV * 4];
    // Element e of chunk k (little-endian, like the GPU and the hosts that run the emulator).
    BENDER_HD T element(int k, int e) const { return packed_element<T>(w, k * VE + e); }
};

// Shared memory before the tile: the K x K filter taps (read by every thread, so kept out of
// registers between tiles), x's plane offsets for the tile being loaded (two, by tile parity,
// because the next tile's are written while this one's are still read) and y's for the tile being
// computed; rounded up so that the float tile after them stays 16-byte aligned.
template <int K>
constexpr int kTapsBytes = (K * K * 4 + 7) / 8 * 8;

template <int K>
BENDER_HD int tile_header_bytes(int bp) { return (kTapsBytes<K> + 3 * bp * 8 + 15) / 16 * 16; }

// The first tile starts at output coordinate o <= 0 chosen so that (o * D - pad0) is a multiple
// of U: then every thread's patch starts on a real input sample. 1 (invalid) if there is none.
inline int first_origin(int pad0, int up, int down) {
    for (int o = 0; o > -up; o--)
        if (pmod(o * down - pad0, up) == 0) return o;
    return 1;
}

// Host side: choose block shape, tile sizes and the load work split. False if this shape cannot
// be tiled. Reads p.target_blocks.
template <typename T, int U, int D, int K, int SX, int SY>
inline bool upfirdn2d_plan(Upfirdn2dParams& p) {
    using S = TileShape<U, D, K, SX, SY>;
    using L = TileLoads<T>;
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
        p.smem_bytes = static_cast<int>(floats * 4 + tile_header_bytes<K>(p.bp));
        if (p.smem_bytes <= 48 * 1024) break;
        if (p.bp > 1) p.bp /= 2;  // large planes-per-block first, then tile height
        else if (p.by > 1) p.by /= 2;
        else return false;
    }
    const int nthreads = p.bx * p.by * p.bp;
    p.vec_load = !p.channels_fastest && p.sxw == 1 && aligned16(p.x);
    // Chunks per row: enough to cover `pitch` columns starting anywhere inside a chunk.
    p.load_cpr = p.vec_load ? (p.pitch + 2 * L::VE - 2) / L::VE : 0;
    p.load_items = p.bp * p.tih * (p.vec_load ? p.load_cpr : p.pitch);
    const int per_pass = nthreads * (p.vec_load ? L::NV : L::NS);
    p.load_passes = ceil_div(p.load_items, per_pass);
    p.tiles_x = ceil_div(p.wo - p.ox_first, p.bx * SX);
    p.tiles_y = ceil_div(p.ho - p.oy_first, p.by * SY);
    p.tiles_p = static_cast<int>((planes + p.bp - 1) / p.bp);
    const int64_t tiles = static_cast<int64_t>(p.tiles_x) * p.tiles_y * p.tiles_p;
    const int64_t per_block = tiles / (p.target_blocks > 0 ? p.target_blocks : 1);
    p.tiles_per_block = static_cast<int>(per_block < 1 ? 1 : per_block > S::MAX_TILES_PER_BLOCK ? S::MAX_TILES_PER_BLOCK : per_block);
    return tiles < (int64_t(1) << 31);
}

BENDER_HD int64_t upfirdn2d_tiles(const Upfirdn2dParams& p) {
    return static_cast<int64_t>(p.tiles_x) * p.tiles_y * p.tiles_p;
}

struct TileOrigin {
    int ox, oy;  // output coordinates of the tile's first patch
    int qx, qy;  // input coordinates of the tile's first staged sample
    int plane;   // first plane (n * C + c)
};

template <int U, int D, int K, int SX, int SY>
BENDER_HD TileOrigin tile_origin(const Upfirdn2dParams& p, int64_t tile) {
    TileOrigin t;
    const int tx = static_cast<int>(tile % p.tiles_x);
    const int64_t r = tile / p.tiles_x;
    const int ty = static_cast<int>(r % p.tiles_y);
    t.plane = static_cast<int>(r / p.tiles_y) * p.bp;
    t.ox = p.ox_first + tx * p.bx * SX;
    t.oy = p.oy_first + ty * p.by * SY;
    t.qx = (t.ox * D - p.px0) / U;  // exact: see first_origin
    t.qy = (t.oy * D - p.py0) / U;
    return t;
}

// Element offsets of the tile's planes in x (in_off) and y (out_off); -1 past the last plane.
// Either table may be null.
BENDER_HD void tile_phase_planes(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int64_t* in_off,
                                 int64_t* out_off) {
    if (tid >= p.bp) return;
    const int pl = t.plane + tid;
    const bool ok = pl < p.n * p.c;
    const int n = ok ? pl / p.c : 0, c = ok ? pl - n * p.c : 0;
    if (in_off) in_off[tid] = ok ? n * p.sxn + c * p.sxc : -1;
    if (out_off) out_off[tid] = ok ? n * p.syn + c * p.syc : -1;
}

// Phase "setup", once per block: the filter taps, and the plane offsets of its first tile.
template <int K>
BENDER_HD void tile_phase_setup(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int nthreads, float* taps,
                                int64_t* in_off) {
    for (int i = tid; i < K * K; i += nthreads) taps[i] = filter_tap(p, i / K, i % K);
    tile_phase_planes(p, t, tid, in_off, nullptr);
}

// Row `row` of a planar tile ([plane][row]): x's element index of tile column 0 (when valid), and
// the tile columns [lo, hi) that hold real samples. Everything else in the row is zero padding.
struct TileRow {
    int64_t start;
    int lo, hi;
};

BENDER_HD TileRow tile_row(const Upfirdn2dParams& p, const TileOrigin& t, int row, const int64_t* in_off) {
    const int pl = p.bp > 1 ? row / p.tih : 0;
    const int gy = t.qy + row - pl * p.tih;
    const int64_t base = in_off[pl];
    TileRow r{t.qx, 0, 0};
    if (base >= 0 && gy >= 0 && gy < p.h) {
        r.start = base + gy * p.sxh + static_cast<int64_t>(t.qx) * p.sxw;
        r.lo = t.qx < 0 ? -t.qx : 0;
        r.hi = p.w - t.qx < p.tiw ? p.w - t.qx : p.tiw;
    }
    return r;
}

// One pass of moving the tile between global memory, registers and shared memory (as float; zeros
// outside x). The same walk over work items does both halves — kPut false: global -> registers,
// kPut true: registers -> shared — so the two agree by construction on which register holds which
// element, and every shared-memory element of the tile is written exactly once per tile. Pass k
// covers items [k, k + 1) * (per-thread count * nthreads); neighbouring threads take neighbouring
// items, so a warp's reads are contiguous.
//
// Layouts: planar x -> [plane][row][pitch]; channels_last x -> [row][col][plane] (threads along
// channels, the contiguous axis). Planar rows with unit stride move in 16-byte chunks aligned at
// absolute addresses, so rows of any width and offset qualify; a chunk's elements outside the tile
// are dropped, and a chunk outside the row's real samples is not read at all. (A chunk may extend
// up to 15 bytes past the tensor's last element; allocations are padded to far more than that.)
// The other layouts (channels_last, strided or misaligned rows) move one element per item, with
// as many items per thread as fit the same registers: simpler, and not what StyleGAN2 runs.
template <typename T, bool kPut>
BENDER_HD void tile_transfer(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int nthreads, int pass,
                             const int64_t* in_off, TileLoads<T>& r, float* tile) {
    using L = TileLoads<T>;
    const T* x = static_cast<const T*>(p.x);
    if (p.vec_load) {
#pragma unroll
        for (int k = 0; k < L::NV; k++) {
            const int item = (pass * L::NV + k) * nthreads + tid;
            if (item >= p.load_items) break;
            const int row = item / p.load_cpr;
            const TileRow tr = tile_row(p, t, row, in_off);
            // Tile column of this chunk's first element: chunks are aligned to VE elements of x
            // (VE is a power of two, so the mask is a floor modulo for negative starts too).
            const int col0 = (item - row * p.load_cpr) * L::VE - static_cast<int>(tr.start & (L::VE - 1));
            if (!kPut) {
                const bool any = (col0 > tr.lo ? col0 : tr.lo) < (col0 + L::VE < tr.hi ? col0 + L::VE : tr.hi);
                const Vec<uint32_t, 4> c = any ? load_vec<uint32_t, 4>(reinterpret_cast<const uint32_t*>(x + tr.start + col0))
                                               : Vec<uint32_t, 4>{};
#pragma unroll
                for (int i = 0; i < 4; i++) r.w[k * 4 + i] = c.v[i];
            } else {
                float v[L::VE];
#pragma unroll
                for (int e = 0; e < L::VE; e++) {
                    const int col = col0 + e;
                    v[e] = col >= tr.lo && col < tr.hi ? Num<T>::load(r.element(k, e)) : 0.f;
                }
                // Neighbouring lanes hold chunks VE floats apart: had they all stored element e at
                // once, they would meet in only 32 / VE banks. Each lane starts at its own element
                // instead (rot), which spreads a warp's stores over all 32 banks.
                const int rot = (item - row * p.load_cpr) * L::VE / 32 % L::VE;
                rotate_left<L::VE>(v, rot);
                float* dst = tile + row * p.pitch + col0;
                const bool inside = col0 >= 0 && col0 + L::VE <= p.pitch;  // all but a row's first and last chunk
#pragma unroll
                for (int e = 0; e < L::VE; e++) {
                    const int c = (e + rot) & (L::VE - 1);
                    if (inside || (col0 + c >= 0 && col0 + c < p.pitch)) dst[c] = v[e];
                }
            }
        }
    } else if (!p.channels_fastest) {
#pragma unroll
        for (int k = 0; k < L::NS; k++) {
            const int item = (pass * L::NS + k) * nthreads + tid;
            if (item >= p.load_items) break;
            const int row = item / p.pitch, col = item - row * p.pitch;
            const TileRow tr = tile_row(p, t, row, in_off);
            const bool in = col >= tr.lo && col < tr.hi;
            if (!kPut) r.w[k] = in ? load_bits(x + tr.start + col * p.sxw) : 0u;
            else tile[item] = in ? Num<T>::load(from_bits<T>(r.w[k])) : 0.f;
        }
    } else {
#pragma unroll
        for (int k = 0; k < L::NS; k++) {
            const int item = (pass * L::NS + k) * nthreads + tid;
            if (item >= p.load_items) break;
            const int pos = item / p.bp, pl = item - pos * p.bp;
            const int iy = pos / p.tiw, gy = t.qy + iy, gx = t.qx + pos - iy * p.tiw;
            const int64_t base = in_off[pl];
            const bool in = base >= 0 && gy >= 0 && gy < p.h && gx >= 0 && gx < p.w;
            if (!kPut) r.w[k] = in ? load_bits(x + base + gy * p.sxh + gx * p.sxw) : 0u;
            else tile[item] = in ? Num<T>::load(from_bits<T>(r.w[k])) : 0.f;
        }
    }
}

// Phase "fetch": issue the global loads of pass 0 of a tile into registers. Nothing waits for
// them until tile_phase_store uses the registers.
template <typename T>
BENDER_HD void tile_phase_fetch(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int nthreads,
                                const int64_t* in_off, TileLoads<T>& r) {
    tile_transfer<T, false>(p, t, tid, nthreads, 0, in_off, r, nullptr);
}

// Phase "store": write the fetched pass to shared memory, then any further passes (plans whose
// tile needs more than one round of loads per thread: small images with many planes per block,
// channels_last, strided rows) load-and-store in place.
template <typename T>
BENDER_HD void tile_phase_store(const Upfirdn2dParams& p, const TileOrigin& t, int tid, int nthreads,
                                const int64_t* in_off, TileLoads<T>& r, float* tile) {
    tile_transfer<T, true>(p, t, tid, nthreads, 0, in_off, r, tile);
    for (int pass = 1; pass < p.load_passes; pass++) {
        tile_transfer<T, false>(p, t, tid, nthreads, pass, in_off, r, tile);
        tile_transfer<T, true>(p, t, tid, nthreads, pass, in_off, r, tile);
    }
}

// Phase "compute": each thread computes its SY x SX patch from a register window of the staged tile.
template <typename T, int U, int D, int K, int SX, int SY>
BENDER_HD void tile_phase_compute(const Upfirdn2dParams& p, const TileOrigin& t, int tid, const float* taps,
                                  const int64_t* out_off, const float* tile) {
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
        for (int kx = 0; kx < K; kx++) fr[ky][kx] = taps[ky * K + kx];

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
