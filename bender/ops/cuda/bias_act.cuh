// Fused bias + activation + gain + clamp: the per-element arithmetic and the per-thread loop.
//
// One pass over memory instead of four (add, activate, scale, clamp). The backward passes
// recompute z = x + b from the saved input rather than saving intermediates, which trades a few
// flops for memory — the op is limited by memory bandwidth, not arithmetic.
#pragma once

#include "common.cuh"
#include "ops.h"

namespace bender {

// act(z), act'(z) and act''(z). Unused results are removed by the compiler after inlining.
template <int ACT>
BENDER_HD void activation(float z, float alpha, float& v, float& d, float& d2) {
    if constexpr (ACT == kLinear) {
        v = z, d = 1.f, d2 = 0.f;
    } else if constexpr (ACT == kRelu) {
        v = z > 0.f ? z : 0.f, d = z > 0.f ? 1.f : 0.f, d2 = 0.f;
    } else if constexpr (ACT == kLrelu) {
        v = z > 0.f ? z : z * alpha, d = z > 0.f ? 1.f : alpha, d2 = 0.f;
    } else if constexpr (ACT == kTanh) {
        float t = tanhf(z);
        v = t, d = 1.f - t * t, d2 = -2.f * t * (1.f - t * t);
    } else if constexpr (ACT == kSigmoid) {
        float s = 1.f / (1.f + expf(-z));
        v = s, d = s * (1.f - s), d2 = s * (1.f - s) * (1.f - 2.f * s);
    } else if constexpr (ACT == kElu) {
        float e = expf(z);
        v = z > 0.f ? z : expm1f(z), d = z > 0.f ? 1.f : e, d2 = z > 0.f ? 0.f : e;
    } else if constexpr (ACT == kSelu) {
        const float scale = 1.0507009873554804934f, a = 1.6732632423543772848f;
        float e = expf(z);
        v = scale * (z > 0.f ? z : a * expm1f(z)), d = z > 0.f ? scale : scale * a * e, d2 = z > 0.f ? 0.f : scale * a * e;
    } else if constexpr (ACT == kSoftplus) {
        // Same threshold as torch.nn.functional.softplus: linear above 20.
        float s = 1.f / (1.f + expf(-z));
        bool lin = z > 20.f;
        v = lin ? z : log1pf(expf(z)), d = lin ? 1.f : s, d2 = lin ? 0.f : s * (1.f - s);
    } else if constexpr (ACT == kSwish) {
        float s = 1.f / (1.f + expf(-z));
        v = z * s, d = s * (1.f + z * (1.f - s)), d2 = s * (1.f - s) * (2.f + z * (1.f - 2.f * s));
    } else {
        v = d = d2 = 0.f;
    }
}

// Whether act'' is zero almost everywhere (so mode 2 is never needed).
constexpr bool act_is_piecewise_linear(int act) { return act == kLinear || act == kRelu || act == kLrelu; }

template <int ACT, int MODE>
BENDER_HD float bias_act_element(float x, float b, float g, float gg, float alpha, float gain, float clamp) {
    float v, d, d2;
    activation<ACT>(x + b, alpha, v, d, d2);
    v *= gain;
    if constexpr (MODE == 0) {
        if (clamp >= 0.f && !(v != v)) v = fminf(fmaxf(v, -clamp), clamp);  // NaN passes through
        return v;
    } else {
        // torch.clamp passes gradients where min <= v <= max.
        bool pass = !(clamp >= 0.f) || (v >= -clamp && v <= clamp);
        if constexpr (MODE == 1) return pass ? g * d * gain : 0.f;
        return pass ? g * gg * d2 * gain : 0.f;
    }
}

// Channel of the element at memory offset i.
BENDER_HD int64_t bias_channel(int64_t i, int64_t stride_dim, int64_t size_dim, bool small) {
    if (small) return static_cast<int64_t>((static_cast<uint32_t>(i) / static_cast<uint32_t>(stride_dim)) %
                                           static_cast<uint32_t>(size_dim));
    return (i / stride_dim) % size_dim;
}

// The work of thread `tid` of `nthreads`: 16-byte vectors in a grid-stride loop, then the tail.
template <typename T, int ACT, int MODE>
BENDER_HD void bias_act_thread(const BiasActParams& p, int64_t tid, int64_t nthreads) {
    constexpr int V = 16 / sizeof(T);
    const T* x = static_cast<const T*>(p.x);
    const T* b = static_cast<const T*>(p.b);
    const T* g = static_cast<const T*>(p.g);
    const T* gg = static_cast<const T*>(p.gg);
    T* y = static_cast<T*>(p.y);
    const bool small = p.n <= 0x7fffffff;
    const int64_t nvec = p.vec_ok ? p.n / V : 0;
    // How channels vary inside one vector: constant (NCHW-like), consecutive (channels_last) or mixed.
    const bool const_ch = (p.stride_dim % V) == 0 || p.size_dim == 1;
    const bool consec_ch = p.stride_dim == 1;

    for (int64_t i = tid; i < nvec; i += nthreads) {
        const int64_t base = i * V;
        Vec<T, V> xv = load_vec<T, V>(x + base), gv, ggv, out;
        if constexpr (MODE >= 1) gv = load_vec<T, V>(g + base);
        if constexpr (MODE == 2) ggv = load_vec<T, V>(gg + base);
        float bias[V];
        if (b == nullptr) {
#pragma unroll
            for (int k = 0; k < V; k++) bias[k] = 0.f;
        } else if (const_ch) {
            float bc = Num<T>::load(b[bias_channel(base, p.stride_dim, p.size_dim, small)]);
#pragma unroll
            for (int k = 0; k < V; k++) bias[k] = bc;
        } else if (consec_ch) {
            int64_t c = bias_channel(base, 1, p.size_dim, small);
#pragma unroll
            for (int k = 0; k < V; k++) {
                bias[k] = Num<T>::load(b[c]);
                c = (c + 1 == p.size_dim) ? 0 : c + 1;
            }
        } else {
#pragma unroll
            for (int k = 0; k < V; k++) bias[k] = Num<T>::load(b[bias_channel(base + k, p.stride_dim, p.size_dim, small)]);
        }
#pragma unroll
        for (int k = 0; k < V; k++) {
            float gk = 0.f, ggk = 0.f;
            if constexpr (MODE >= 1) gk = Num<T>::load(gv.v[k]);
            if constexpr (MODE == 2) ggk = Num<T>::load(ggv.v[k]);
            out.v[k] = Num<T>::store(bias_act_element<ACT, MODE>(Num<T>::load(xv.v[k]), bias[k], gk, ggk, p.alpha,
                                                                 p.gain, p.clamp));
        }
        store_vec<T, V>(y + base, out);
    }

    for (int64_t i = nvec * V + tid; i < p.n; i += nthreads) {
        float bk = b ? Num<T>::load(b[bias_channel(i, p.stride_dim, p.size_dim, small)]) : 0.f;
        float gk = 0.f, ggk = 0.f;
        if constexpr (MODE >= 1) gk = Num<T>::load(g[i]);
        if constexpr (MODE == 2) ggk = Num<T>::load(gg[i]);
        y[i] = Num<T>::store(bias_act_element<ACT, MODE>(Num<T>::load(x[i]), bk, gk, ggk, p.alpha, p.gain, p.clamp));
    }
}

// Host side: decide whether the wide path is safe (every pointer 16-byte aligned).
inline void bias_act_prepare(BiasActParams& p) {
    if (p.size_dim <= 1) p.stride_dim = 1;
    p.vec_ok = aligned16(p.x) && aligned16(p.g) && aligned16(p.gg) && aligned16(p.y);  // b is read per element
}

// Calls f.operator()<ACT>() for the activation number (f: a struct with a member template); false if
// the number is unknown.
template <typename F>
bool dispatch_act(int act, F&& f) {
    switch (act) {
        case kLinear: f.template operator()<kLinear>(); return true;
        case kRelu: f.template operator()<kRelu>(); return true;
        case kLrelu: f.template operator()<kLrelu>(); return true;
        case kTanh: f.template operator()<kTanh>(); return true;
        case kSigmoid: f.template operator()<kSigmoid>(); return true;
        case kElu: f.template operator()<kElu>(); return true;
        case kSelu: f.template operator()<kSelu>(); return true;
        case kSoftplus: f.template operator()<kSoftplus>(); return true;
        case kSwish: f.template operator()<kSwish>(); return true;
        default: return false;
    }
}

}  // namespace bender
