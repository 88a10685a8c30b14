// Torch bindings for bender's CUDA kernels: argument checks, layouts, output allocation.
//
// Kept apart from the .cu files so that those compile with plain `nvcc -c` (no torch headers).
// Autograd lives in Python (bender/ops/cuda/functions.py); these functions are plain forward maps.
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/extension.h>

#include <optional>
#include <string>

#include "ops.h"

namespace {

int dtype_code(const at::Tensor& t) {
    switch (t.scalar_type()) {
        case at::kFloat: return bender::kFloat32;
        case at::kHalf: return bender::kFloat16;
        case at::kBFloat16: return bender::kBFloat16;
        default: TORCH_CHECK(false, "bender CUDA kernels support float32, float16 and bfloat16, got ", t.scalar_type());
    }
    return -1;
}

std::string launch_error(int code) {
    switch (code) {
        case bender::kErrUnsupportedDtype: return "unsupported dtype";
        case bender::kErrUnsupportedAct: return "unsupported activation or mode";
        case bender::kErrNoTiledKernel: return "no tiled kernel for these arguments";
        case bender::kErrTooLarge: return "tensor too large";
        case bender::kErrNoRowsKernel: return "no row-streaming kernel for these arguments";
        default: return cudaGetErrorString(static_cast<cudaError_t>(code));
    }
}

// `t` laid out exactly like `like` (same strides), copying only when it is not already.
at::Tensor same_layout(const at::Tensor& t, const at::Tensor& like, const char* name) {
    TORCH_CHECK(t.sizes() == like.sizes(), "bias_act: ", name, " has shape ", t.sizes(), ", expected ", like.sizes());
    TORCH_CHECK(t.device() == like.device(), "bias_act: ", name, " is on ", t.device(), ", expected ", like.device());
    at::Tensor out = t.scalar_type() == like.scalar_type() ? t : t.to(like.scalar_type());
    if (out.strides() == like.strides()) return out;
    return at::empty_like(like).copy_(out);
}

at::Tensor bias_act(const at::Tensor& x_in, const std::optional<at::Tensor>& b, const std::optional<at::Tensor>& g,
                    const std::optional<at::Tensor>& gg, int64_t dim, int64_t act, double alpha, double gain,
                    double clamp, int64_t mode) {
    TORCH_CHECK(x_in.is_cuda(), "bias_act: x must be a CUDA tensor");
    TORCH_CHECK(x_in.dim() >= 1 && dim >= 0 && dim < x_in.dim(), "bias_act: dim ", dim, " out of range for ", x_in.sizes());
    TORCH_CHECK(mode >= 0 && mode <= 2, "bias_act: mode must be 0, 1 or 2");
    const int dtype = dtype_code(x_in);
    const c10::cuda::OptionalCUDAGuard guard(x_in.device());
    // Any dense layout (contiguous, channels_last, ...) is used as is; anything else is compacted.
    const at::Tensor x = x_in.is_non_overlapping_and_dense() ? x_in : x_in.contiguous();

    bender::BiasActParams p;
    at::Tensor bc, gc, ggc;
    if (b.has_value() && b->defined()) {
        TORCH_CHECK(b->dim() == 1 && b->size(0) == x.size(dim), "bias_act: bias of shape ", b->sizes(),
                    " does not match dim ", dim, " of ", x.sizes());
        TORCH_CHECK(b->device() == x.device(), "bias_act: bias is on ", b->device(), ", x on ", x.device());
        bc = b->to(x.scalar_type()).contiguous();
        p.b = bc.data_ptr();
    }
    if (mode >= 1) {
        TORCH_CHECK(g.has_value() && g->defined(), "bias_act: mode ", mode, " needs g");
        gc = same_layout(*g, x, "g");
        p.g = gc.data_ptr();
    }
    if (mode == 2) {
        TORCH_CHECK(gg.has_value() && gg->defined(), "bias_act: mode 2 needs gg");
        ggc = same_layout(*gg, x, "gg");
        p.gg = ggc.data_ptr();
    }
    at::Tensor y = at::empty_like(x);
    p.x = x.data_ptr();
    p.y = y.data_ptr();
    p.n = x.numel();
    p.stride_dim = x.stride(dim);
    p.size_dim = x.size(dim);
    p.alpha = static_cast<float>(alpha);
    p.gain = static_cast<float>(gain);
    p.clamp = static_cast<float>(clamp);
    p.act = static_cast<int>(act);
    p.mode = static_cast<int>(mode);
    const int err = bender::bias_act_launch(p, dtype, c10::cuda::getCurrentCUDAStream().stream());
    TORCH_CHECK(err == 0, "bias_act kernel failed: ", launch_error(err));
    return y;
}

// Returns (y, kernel that ran: 0 generic, 1 tiled, 2 row-streaming). `path`: see upfirdn2d_launch in ops.h
// (0 auto, 1 generic only, 2 tiled or error, 3 row-streaming or error, 4 auto preferring row-streaming).
std::tuple<at::Tensor, int64_t> upfirdn2d(const at::Tensor& x, const at::Tensor& f_in, int64_t upx, int64_t upy,
                                       int64_t downx, int64_t downy, int64_t px0, int64_t px1, int64_t py0, int64_t py1,
                                       bool flip_filter, double gain, int64_t path) {
    TORCH_CHECK(x.is_cuda() && x.dim() == 4, "upfirdn2d: x must be a 4-D CUDA tensor, got ", x.sizes());
    TORCH_CHECK(f_in.dim() == 1 || f_in.dim() == 2, "upfirdn2d: filter must be 1-D or 2-D");
    TORCH_CHECK(upx >= 1 && upy >= 1 && downx >= 1 && downy >= 1, "upfirdn2d: factors must be >= 1");
    TORCH_CHECK(f_in.numel() >= 1 && f_in.numel() <= 64 * 64, "upfirdn2d: filter too large for the kernel");
    const int dtype = dtype_code(x);
    const c10::cuda::OptionalCUDAGuard guard(x.device());
    const at::Tensor f = f_in.to(x.device(), at::kFloat).contiguous();

    bender::Upfirdn2dParams p;
    p.f_ndim = static_cast<int>(f.dim());
    p.fw = static_cast<int>(f.size(-1));
    p.fh = static_cast<int>(f.size(0));
    p.n = static_cast<int>(x.size(0)), p.c = static_cast<int>(x.size(1));
    p.h = static_cast<int>(x.size(2)), p.w = static_cast<int>(x.size(3));
    p.upx = static_cast<int>(upx), p.upy = static_cast<int>(upy);
    p.downx = static_cast<int>(downx), p.downy = static_cast<int>(downy);
    p.px0 = static_cast<int>(px0), p.px1 = static_cast<int>(px1), p.py0 = static_cast<int>(py0), p.py1 = static_cast<int>(py1);
    p.flip = flip_filter ? 1 : 0;
    p.gain = static_cast<float>(gain);
    for (int64_t s : x.sizes()) TORCH_CHECK(s < (int64_t(1) << 31) / 64, "upfirdn2d: x too large");
    p.wo = bender::upfirdn2d_out_size(p.w, p.upx, p.downx, p.px0, p.px1, p.fw);
    p.ho = bender::upfirdn2d_out_size(p.h, p.upy, p.downy, p.py0, p.py1, p.fh);
    TORCH_CHECK(p.wo >= 1 && p.ho >= 1, "upfirdn2d: padding and filter leave an empty output for input ", x.sizes());

    // channels_last in, channels_last out: the next convolution wants that layout.
    const bool cl = x.size(1) > 1 && x.stride(1) == 1 && !x.is_contiguous();
    at::Tensor y = at::empty({x.size(0), x.size(1), p.ho, p.wo},
                             x.options().memory_format(cl ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous));
    p.channels_fastest = cl ? 1 : 0;
    p.x = x.data_ptr();
    p.f = f.data_ptr<float>();
    p.y = y.data_ptr();
    p.sxn = x.stride(0), p.sxc = x.stride(1), p.sxh = x.stride(2), p.sxw = x.stride(3);
    p.syn = y.stride(0), p.syc = y.stride(1), p.syh = y.stride(2), p.syw = y.stride(3);
    TORCH_CHECK(path >= 0 && path <= 4, "upfirdn2d: path must be 0..4, got ", path);
    int used = 0;
    const int err = bender::upfirdn2d_launch(p, dtype, static_cast<int>(path),
                                             c10::cuda::getCurrentCUDAStream().stream(), &used);
    TORCH_CHECK(err == 0, "upfirdn2d kernel failed: ", launch_error(err));
    return {y, static_cast<int64_t>(used)};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "bender's CUDA kernels (bias_act, upfirdn2d); see bender/ops/cuda";
    m.def("bias_act", &bias_act, "fused bias + activation + gain + clamp (modes 0, 1, 2; see ops.h)");
    m.def("upfirdn2d", &upfirdn2d, "upsample, pad, FIR filter, downsample; returns (y, kernel: 0 generic, 1 tiled, 2 rows)");
}
