// Shared helpers for bender's CUDA kernels.
//
// Every kernel's per-thread work is written as a `BENDER_HD` function in a .cuh header, so that the
// same code compiles three ways: into the CUDA kernels (nvcc), into the CPU emulator that the test
// suite builds with a plain C++ compiler (tests/cuda_emulator.cpp), and — for the host-side launch
// planning — into both. That is how CI without a GPU still checks the kernels' indexing, tiling and
// arithmetic. No torch headers here: `nvcc -c` must compile the .cu files on their own.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "ops.h"

#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define BENDER_HD __host__ __device__ __forceinline__
#else
#define BENDER_HD inline
#endif

// The CPU emulator (tests/cuda_emulator.cpp) checks that every wide or raw load stays inside the
// memory it was given: on the GPU a stray read past an allocation faults or, worse, reads garbage
// that a mask happens to hide.
#if !defined(__CUDA_ARCH__) && defined(BENDER_EMULATOR)
void bender_emulator_check_read(const void* p, std::size_t bytes);
#define BENDER_CHECK_READ(p, bytes) bender_emulator_check_read(p, bytes)
#else
#define BENDER_CHECK_READ(p, bytes) ((void)0)
#endif

namespace bender {

// Load/store one element, computing in float32 whatever the storage type.
template <typename T>
struct Num;

template <>
struct Num<float> {
    static BENDER_HD float load(float v) { return v; }
    static BENDER_HD float store(float v) { return v; }
};

#ifdef __CUDACC__
template <>
struct Num<__half> {
    static BENDER_HD float load(__half v) { return __half2float(v); }
    static BENDER_HD __half store(float v) { return __float2half_rn(v); }
};

template <>
struct Num<__nv_bfloat16> {
    static BENDER_HD float load(__nv_bfloat16 v) { return __bfloat162float(v); }
    static BENDER_HD __nv_bfloat16 store(float v) { return __float2bfloat16_rn(v); }
};
#endif

// A 16-byte vector of elements, for wide coalesced global loads and stores. Callers check
// alignment on the host (see `aligned16`).
template <typename T, int N>
struct alignas(sizeof(T) * N) Vec {
    T v[N];
};

template <typename T, int N>
BENDER_HD Vec<T, N> load_vec(const T* p) {
#ifdef __CUDA_ARCH__
    return *reinterpret_cast<const Vec<T, N>*>(p);
#else
    BENDER_CHECK_READ(p, sizeof(Vec<T, N>));
    Vec<T, N> out;
    std::memcpy(&out, p, sizeof(out));
    return out;
#endif
}

template <typename T, int N>
BENDER_HD void store_vec(T* p, const Vec<T, N>& v) {
#ifdef __CUDA_ARCH__
    *reinterpret_cast<Vec<T, N>*>(p) = v;
#else
    std::memcpy(p, &v, sizeof(v));
#endif
}

// The bits of a 2- or 4-byte value in (the low end of) a 32-bit word, and back. Values waiting in
// registers are kept as whole words: a half stored into half of a register costs an instruction
// that waits for the load to arrive, which would serialise loads meant to be in flight together.
template <typename T>
BENDER_HD uint32_t to_bits(T v) {
    static_assert(sizeof(T) <= 4, "one word per value");
    uint32_t u = 0;
    std::memcpy(&u, &v, sizeof(T));
    return u;
}

template <typename T>
BENDER_HD T from_bits(uint32_t u) {
    T v;
    std::memcpy(&v, &u, sizeof(T));
    return v;
}

// Element i of values of type T packed little-endian in 32-bit words (two per word for 2-byte types),
// as wide loads leave them in registers.
template <typename T>
BENDER_HD T packed_element(const uint32_t* w, int i) {
    if constexpr (sizeof(T) == 4) return from_bits<T>(w[i]);
    else return from_bits<T>(static_cast<uint32_t>(w[i / 2] >> (i % 2 * 16)));
}

// Load one element's bits straight into a word (a zero-extending 2- or 4-byte load).
template <typename T>
BENDER_HD uint32_t load_bits(const T* p) {
#ifdef __CUDA_ARCH__
    if constexpr (sizeof(T) == 2) return *reinterpret_cast<const uint16_t*>(p);
    else return *reinterpret_cast<const uint32_t*>(p);
#else
    BENDER_CHECK_READ(p, sizeof(T));
    return to_bits(*p);
#endif
}

// Copy N consecutive floats from shared memory into registers, as one wide load where the address
// allows (callers guarantee that `src` is aligned to N floats when N is 2 or 4). Wide loads also
// keep threads that read at a stride of N floats free of shared-memory bank conflicts.
template <int N>
BENDER_HD void load_floats(const float* src, float* dst) {
#ifdef __CUDA_ARCH__
    if constexpr (N == 4) {
        const float4 v = *reinterpret_cast<const float4*>(src);
        dst[0] = v.x, dst[1] = v.y, dst[2] = v.z, dst[3] = v.w;
    } else if constexpr (N == 2) {
        const float2 v = *reinterpret_cast<const float2*>(src);
        dst[0] = v.x, dst[1] = v.y;
    } else {
#pragma unroll
        for (int i = 0; i < N; i++) dst[i] = src[i];
    }
#else
    for (int i = 0; i < N; i++) dst[i] = src[i];
#endif
}

// v[i] <- v[(i + r) % N] for a run-time r in [0, N), N a power of two: log2(N) rounds of selects,
// so the registers are never indexed at run time (which would put them in local memory).
template <int N>
BENDER_HD void rotate_left(float* v, int r) {
    static_assert((N & (N - 1)) == 0, "N must be a power of two");
#pragma unroll
    for (int b = 1; b < N; b *= 2) {
        float t[N];
#pragma unroll
        for (int i = 0; i < N; i++) t[i] = (r & b) ? v[(i + b) % N] : v[i];
#pragma unroll
        for (int i = 0; i < N; i++) v[i] = t[i];
    }
}

inline bool aligned16(const void* p) { return p == nullptr || (reinterpret_cast<uintptr_t>(p) % 16) == 0; }

// Floor-style modulo: result in [0, m) for any sign of a.
BENDER_HD int pmod(int a, int m) {
    int r = a % m;
    return r < 0 ? r + m : r;
}

BENDER_HD int pmod(int64_t a, int m) {
    const int r = static_cast<int>(a % m);
    return r < 0 ? r + m : r;
}

BENDER_HD int ceil_div(int a, int b) { return (a + b - 1) / b; }

// Division by a divisor fixed at launch (1 <= d < 2^31) of dividends 0 <= n < 2^31, as a multiply-high, an
// add and a shift instead of the ~20-instruction sequence a run-time `/` compiles to. Granlund &
// Montgomery, "Division by invariant integers using multiplication" (PLDI 1994), section 4: with
// l = ceil(log2 d) and m = floor(2^32 (2^l - d) / d) + 1 < 2^32, n / d = (umulhi(m, n) + n) >> l for every
// n < 2^32; below 2^31 the sum cannot overflow, so the paper's halving step is not needed. (FastDiv
// itself is in ops.h, because launch parameters carry it.)
inline FastDiv make_fastdiv(int d) {
    FastDiv f;
    f.d = static_cast<uint32_t>(d < 1 ? 1 : d);
    while ((uint64_t(1) << f.l) < f.d) f.l++;
    f.m = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << f.l) - f.d)) / f.d + 1);
    return f;
}

BENDER_HD int fast_div(const FastDiv& f, int n) {
#ifdef __CUDA_ARCH__
    const uint32_t t = __umulhi(f.m, static_cast<uint32_t>(n));
#else
    const uint32_t t = static_cast<uint32_t>((static_cast<uint64_t>(f.m) * static_cast<uint32_t>(n)) >> 32);
#endif
    return static_cast<int>((t + static_cast<uint32_t>(n)) >> f.l);
}

inline int pow2_ceil(int v) {
    int p = 1;
    while (p < v) p *= 2;
    return p;
}

}  // namespace bender
