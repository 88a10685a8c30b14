// CPU emulator for bender's CUDA kernels, built by tests/test_ops_cuda_emulated.py with a plain C++
// compiler and called through ctypes.
//
// It runs the kernels' own per-thread functions (bender/ops/cuda/*.cuh) for every thread of every
// block, phase by phase — what a GPU does between __syncthreads() — on float32 data. So the
// indexing, tiling, launch planning and arithmetic that the GPU will run are checked on machines
// without one. Shared memory is poisoned with NaN (and guarded by NaN on both sides) so that a read
// of anything the load phase did not write shows up in the output.
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <iterator>
#include <limits>
#include <vector>

#define BENDER_EMULATOR 1
#include "../bender/ops/cuda/bias_act.cuh"
#include "../bender/ops/cuda/upfirdn2d.cuh"
#include "../bender/ops/cuda/upfirdn2d_rows.cuh"

using namespace bender;

// The memory a kernel's loads may touch (set around upfirdn2d runs; null: not checked) and whether
// one strayed outside it (see BENDER_CHECK_READ in common.cuh).
static const char* g_read_lo = nullptr;
static const char* g_read_hi = nullptr;
static bool g_read_strayed = false;

void bender_emulator_check_read(const void* p, std::size_t bytes) {
    const char* c = static_cast<const char*>(p);
    if (g_read_lo && (c < g_read_lo || c + bytes > g_read_hi)) g_read_strayed = true;
}

namespace {

struct RunBiasAct {
    BiasActParams& p;
    int64_t nthreads;
    int err;

    template <int ACT>
    void operator()() {
        for (int64_t tid = 0; tid < nthreads; tid++) {
            switch (p.mode) {
                case 0: bias_act_thread<float, ACT, 0>(p, tid, nthreads); break;
                case 1: bias_act_thread<float, ACT, 1>(p, tid, nthreads); break;
                case 2:
                    if constexpr (!act_is_piecewise_linear(ACT)) {
                        bias_act_thread<float, ACT, 2>(p, tid, nthreads);
                        break;
                    } else {
                        err = kErrUnsupportedAct;
                        return;
                    }
                default: err = kErrUnsupportedAct; return;
            }
        }
    }
};

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const uint32_t kNaNWords = 0x7fc07fc0u;  // NaN as a float32 and as both of its bfloat16 halves

// A 2-byte element type for the emulator: bfloat16, the top half of a float32, rounded to nearest
// even. With it the kernels' 2-byte paths (8 elements per 16-byte chunk, elements taken out of
// half a register) run here too, not only the float ones.
struct EmuBf16 {
    uint16_t bits;
};

}  // namespace

template <>
struct bender::Num<EmuBf16> {
    static float load(EmuBf16 v) {
        const uint32_t u = static_cast<uint32_t>(v.bits) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return f;
    }
    static EmuBf16 store(float f) {
        uint32_t u;
        std::memcpy(&u, &f, 4);
        if (std::isnan(f)) return {0x7fc0};
        u += 0x7fff + ((u >> 16) & 1);
        return {static_cast<uint16_t>(u >> 16)};
    }
};

namespace {

const int kErrReadOutside = -200;   // a load left x's memory (see bender_emulator_check_read)
const int kErrWriteOutside = -201;  // a store landed outside y's elements

// The tiled kernel's block loop (upfirdn2d.cu), one phase at a time for every thread; each thread
// keeps its own registers (TileLoads) between phases, as on the GPU.
template <typename T, int U, int D, int K, int SX, int SY>
int run_tiled(Upfirdn2dParams& p) {
    using L = TileLoads<T>;
    if (!upfirdn2d_plan<T, U, D, K, SX, SY>(p)) return kErrNoTiledKernel;
    const int nthreads = p.bx * p.by * p.bp;
    if (nthreads > TileShape<U, D, K, SX, SY>::THREADS || (nthreads & (nthreads - 1)) != 0) return -100;
    const int per_pass = nthreads * (p.vec_load ? L::NV : L::NS);
    if (p.load_passes < 1 || static_cast<int64_t>(p.load_passes) * per_pass < p.load_items ||
        (p.load_passes - 1) * per_pass >= p.load_items)
        return -101;
    const int header = tile_header_bytes<K>(p.bp);
    const int64_t floats = (p.smem_bytes - header) / 4;
    const int64_t expect = static_cast<int64_t>(p.bp) * p.tih * (p.channels_fastest ? p.tiw : p.pitch);
    if (floats != expect || p.smem_bytes > 48 * 1024 || header % 16 != 0) return -102;
    const int64_t guard = 64;
    std::vector<float> taps(K * K);
    std::vector<int64_t> in_off(2 * p.bp), out_off(p.bp);
    std::vector<float> smem(floats + 2 * guard);
    std::vector<L> regs(nthreads);
    float* tile = smem.data() + guard;
    const int64_t tiles = upfirdn2d_tiles(p);
    for (int64_t first = 0; first < tiles; first += p.tiles_per_block) {  // one block
        const int count = static_cast<int>(std::min<int64_t>(p.tiles_per_block, tiles - first));
        std::fill(taps.begin(), taps.end(), kNaN);
        std::fill(in_off.begin(), in_off.end(), int64_t(-7));
        for (auto& r : regs) std::fill(std::begin(r.w), std::end(r.w), kNaNWords);
        TileOrigin t = tile_origin<U, D, K, SX, SY>(p, first);
        for (int tid = 0; tid < nthreads; tid++) tile_phase_setup<K>(p, t, tid, nthreads, taps.data(), in_off.data());
        for (int tid = 0; tid < nthreads; tid++) tile_phase_fetch<T>(p, t, tid, nthreads, in_off.data(), regs[tid]);
        for (int i = 0; i < count; i++) {
            // Whatever a phase does not write is garbage to the next one.
            const bool more = i + 1 < count;
            const TileOrigin next = tile_origin<U, D, K, SX, SY>(p, first + i + (more ? 1 : 0));
            int64_t* cur_in = in_off.data() + (i & 1) * p.bp;
            int64_t* next_in = in_off.data() + ((i + 1) & 1) * p.bp;
            std::fill(smem.begin(), smem.end(), kNaN);
            std::fill(out_off.begin(), out_off.end(), int64_t(-7));
            std::fill(next_in, next_in + p.bp, int64_t(-7));
            for (int tid = 0; tid < nthreads; tid++) {
                tile_phase_store<T>(p, t, tid, nthreads, cur_in, regs[tid], tile);
                tile_phase_planes(p, t, tid, nullptr, out_off.data());
                if (more) tile_phase_planes(p, next, tid, next_in, nullptr);
            }
            std::fill(cur_in, cur_in + p.bp, int64_t(-7));  // nobody reads this tile's x offsets again
            for (int tid = 0; tid < nthreads; tid++) {
                if (more) tile_phase_fetch<T>(p, next, tid, nthreads, next_in, regs[tid]);
                else std::fill(std::begin(regs[tid].w), std::end(regs[tid].w), kNaNWords);
                tile_phase_compute<T, U, D, K, SX, SY>(p, t, tid, taps.data(), out_off.data(), tile);
            }
            t = next;
        }
    }
    return 1;
}

// The row-streaming kernels (upfirdn2d_rows.cuh): every thread of the grid, including the idle ones
// past the last plane in the last block; channels_last first, as the launcher tries it.
template <typename T, int U, int D, int K, int RS>
int run_rows(Upfirdn2dParams& p) {
    const bool cl = upfirdn2d_rows_cl_plan<T, U, D, K, RS>(p);
    if (!cl && !upfirdn2d_rows_plan<T, U, D, K, RS>(p)) return kErrNoRowsKernel;
    const int64_t total = (upfirdn2d_rows_threads(p) + kRowsThreads - 1) / kRowsThreads * kRowsThreads;
    for (int64_t g = 0; g < total; g++) {
        if (cl) upfirdn2d_rows_cl_thread<T, U, D, K, RS>(p, static_cast<int>(g));
        else upfirdn2d_rows_thread<T, U, D, K, RS>(p, static_cast<int>(g));
    }
    return 2;
}

template <typename T>
int upfirdn2d_typed(Upfirdn2dParams& p, const void* x, const int64_t* strides, int path) {
    // The tiled kernel reads planar rows in 16-byte chunks that may run up to 15 bytes past the last
    // element (on the GPU, inside the allocator's padding). Here x is copied into a padded buffer
    // (NaN past the end, so a chunk element that is used by mistake shows).
    int64_t extent = 1;
    for (int i = 0; i < 4; i++) extent += static_cast<int64_t>((i == 0 ? p.n : i == 1 ? p.c : i == 2 ? p.h : p.w) - 1) * strides[i];
    std::vector<T> padded(extent + 16, Num<T>::store(kNaN));
    std::memcpy(padded.data(), x, extent * sizeof(T));
    p.x = padded.data();
    // Loads may reach the end of the 16-byte span holding x's last element, never further, and
    // never before x's first element (x is 16-byte aligned here, as the fast paths require).
    const uintptr_t end = reinterpret_cast<uintptr_t>(padded.data() + extent);
    g_read_lo = reinterpret_cast<const char*>(padded.data());
    g_read_hi = reinterpret_cast<const char*>((end + 15) / 16 * 16);
    g_read_strayed = false;
    // y is written into a copy with guard elements on both sides (poisoned with a marker); a kernel
    // that writes outside y's own elements changes a guard.
    int64_t y_extent = 1;
    for (int i = 0; i < 4; i++) {
        const int size = i == 0 ? p.n : i == 1 ? p.c : i == 2 ? p.ho : p.wo;
        const int64_t stride = i == 0 ? p.syn : i == 1 ? p.syc : i == 2 ? p.syh : p.syw;
        y_extent += static_cast<int64_t>(size - 1) * stride;
    }
    const int64_t guard = 64;  // elements: keeps y 16-byte aligned for 2- and 4-byte types
    const T marker = Num<T>::store(-1234.5f);
    std::vector<T> y_guarded(y_extent + 2 * guard, marker);
    T* const y_out = static_cast<T*>(p.y);
    std::memcpy(y_guarded.data() + guard, y_out, y_extent * sizeof(T));
    p.y = y_guarded.data() + guard;
    int result = kErrNoTiledKernel;
    if (path == 3) {
        result = kErrNoRowsKernel;
#define BENDER_EMU_ROWS(U, D, K, RS) \
    if (result == kErrNoRowsKernel) result = run_rows<T, U, D, K, RS>(p);
        BENDER_UPFIRDN2D_ROWS(BENDER_EMU_ROWS)
#undef BENDER_EMU_ROWS
    } else if (path == 2) {
        if (p.upx == p.upy && p.downx == p.downy && p.fw == p.fh) {
#define BENDER_EMU_TILED(U, D, K, SX, SY) \
    if (result == kErrNoTiledKernel && p.upx == U && p.downx == D && p.fw == K) result = run_tiled<T, U, D, K, SX, SY>(p);
            BENDER_UPFIRDN2D_TILED(BENDER_EMU_TILED)
#undef BENDER_EMU_TILED
        }
    } else {
        const int64_t nthreads = 97;  // odd on purpose: exercises the grid-stride loop
        for (int64_t tid = 0; tid < nthreads; tid++) upfirdn2d_generic_thread<T>(p, tid, nthreads);
        result = 0;
    }
    g_read_lo = g_read_hi = nullptr;
    std::memcpy(y_out, y_guarded.data() + guard, y_extent * sizeof(T));
    for (int64_t i = 0; i < guard; i++)
        if (std::memcmp(&y_guarded[i], &marker, sizeof(T)) || std::memcmp(&y_guarded[guard + y_extent + i], &marker, sizeof(T)))
            return kErrWriteOutside;
    return g_read_strayed ? kErrReadOutside : result;
}

}  // namespace

extern "C" {

// Returns 1 when the 16-byte vector path was used, 0 when not, negative on error.
int emu_bias_act(const float* x, const float* b, const float* g, const float* gg, float* y, int64_t n,
                 int64_t stride_dim, int64_t size_dim, int act, int mode, float alpha, float gain, float clamp,
                 int64_t nthreads) {
    BiasActParams p;
    p.x = x, p.b = b, p.g = g, p.gg = gg, p.y = y;
    p.n = n, p.stride_dim = stride_dim, p.size_dim = size_dim;
    p.alpha = alpha, p.gain = gain, p.clamp = clamp, p.act = act, p.mode = mode;
    bias_act_prepare(p);
    RunBiasAct run{p, nthreads, 0};
    if (!dispatch_act(act, run)) return kErrUnsupportedAct;
    return run.err ? run.err : p.vec_ok;
}

// x and y: float32 (dtype 0) or bfloat16 bits (dtype 2, as in ops.h's DType).
// ints: n c h w upx upy downx downy px0 px1 py0 py1 fw fh f_ndim flip channels_fastest target_blocks
// strides: x's four strides then y's four. path: 1 generic, 2 tiled, 3 row-streaming. Returns the
// kernel used (0 generic, 1 tiled, 2 row-streaming) or a negative error; plan (if not null) receives bx by bp tiles_x tiles_y tiles_p
// vec_load tiles_per_block load_passes.
int emu_upfirdn2d(const void* x, const float* f, void* y, const int* ints, const int64_t* strides, float gain,
                  int path, int dtype, int* plan) {
    Upfirdn2dParams p;
    p.f = f, p.y = y, p.gain = gain;
    p.n = ints[0], p.c = ints[1], p.h = ints[2], p.w = ints[3];
    p.upx = ints[4], p.upy = ints[5], p.downx = ints[6], p.downy = ints[7];
    p.px0 = ints[8], p.px1 = ints[9], p.py0 = ints[10], p.py1 = ints[11];
    p.fw = ints[12], p.fh = ints[13], p.f_ndim = ints[14], p.flip = ints[15], p.channels_fastest = ints[16];
    p.target_blocks = ints[17];
    p.sxn = strides[0], p.sxc = strides[1], p.sxh = strides[2], p.sxw = strides[3];
    p.syn = strides[4], p.syc = strides[5], p.syh = strides[6], p.syw = strides[7];
    p.wo = upfirdn2d_out_size(p.w, p.upx, p.downx, p.px0, p.px1, p.fw);
    p.ho = upfirdn2d_out_size(p.h, p.upy, p.downy, p.py0, p.py1, p.fh);
    if (p.wo < 1 || p.ho < 1) return kErrTooLarge;
    int result = kErrUnsupportedDtype;
    if (dtype == kFloat32) result = upfirdn2d_typed<float>(p, x, strides, path);
    if (dtype == kBFloat16) result = upfirdn2d_typed<EmuBf16>(p, x, strides, path);
    if (plan) {
        plan[0] = p.bx, plan[1] = p.by, plan[2] = p.bp, plan[3] = p.tiles_x, plan[4] = p.tiles_y, plan[5] = p.tiles_p;
        plan[6] = p.vec_load, plan[7] = p.tiles_per_block, plan[8] = p.load_passes;
    }
    return result;
}

// n / d by multiplication (FastDiv) for count pairs; out[i] receives the quotient.
void emu_fast_div(const int* d, const int* n, int* out, int64_t count) {
    for (int64_t i = 0; i < count; i++) out[i] = fast_div(make_fastdiv(d[i]), n[i]);
}

}  // extern "C"
