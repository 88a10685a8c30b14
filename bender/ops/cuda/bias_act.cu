// CUDA kernels for fused bias + activation + gain + clamp (see bias_act.cuh for the arithmetic).
#include <cuda_runtime.h>

#include <algorithm>

#include "bias_act.cuh"

namespace bender {

template <typename T, int ACT, int MODE>
__global__ void __launch_bounds__(256) bias_act_kernel(BiasActParams p) {
    const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    bias_act_thread<T, ACT, MODE>(p, tid, static_cast<int64_t>(gridDim.x) * blockDim.x);
}

namespace {

template <typename T>
struct LaunchBiasAct {
    BiasActParams& p;
    cudaStream_t stream;
    int err;

    template <int ACT>
    void operator()() {
        constexpr int V = 16 / sizeof(T);
        const int threads = 256;
        // One 16-byte vector per thread and iteration; enough blocks to fill the GPU several times
        // over, capped so that huge tensors loop instead of launching millions of blocks.
        const int64_t work = p.vec_ok ? std::max<int64_t>(p.n / V, 1) : p.n;
        const int blocks = static_cast<int>(std::min<int64_t>((work + threads - 1) / threads, 65536));
        switch (p.mode) {
            case 0: bias_act_kernel<T, ACT, 0><<<blocks, threads, 0, stream>>>(p); break;
            case 1: bias_act_kernel<T, ACT, 1><<<blocks, threads, 0, stream>>>(p); break;
            case 2:
                if constexpr (!act_is_piecewise_linear(ACT)) {
                    bias_act_kernel<T, ACT, 2><<<blocks, threads, 0, stream>>>(p);
                    break;
                }
                err = kErrUnsupportedAct;
                return;
            default: err = kErrUnsupportedAct; return;
        }
        err = static_cast<int>(cudaGetLastError());
    }
};

template <typename T>
int launch_typed(BiasActParams& p, cudaStream_t stream) {
    LaunchBiasAct<T> f{p, stream, 0};
    if (!dispatch_act(p.act, f)) return kErrUnsupportedAct;
    return f.err;
}

}  // namespace

int bias_act_launch(BiasActParams& p, int dtype, void* stream) {
    if (p.n == 0) return 0;
    bias_act_prepare(p);
    auto s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case kFloat32: return launch_typed<float>(p, s);
        case kFloat16: return launch_typed<__half>(p, s);
        case kBFloat16: return launch_typed<__nv_bfloat16>(p, s);
        default: return kErrUnsupportedDtype;
    }
}

}  // namespace bender
