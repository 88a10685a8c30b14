// The row-streaming upfirdn2d launcher, as the rest of the extension sees it (defined in
// upfirdn2d_rows_launch.cuh, instantiated per element type in upfirdn2d_rows_{f32,f16,bf16}.cu).
#pragma once

#include <cuda_runtime.h>

#include "ops.h"

namespace bender {

// Launch the row-streaming kernel that covers p, if any: 1 if launched (the launch's error in *err),
// 0 if none fits. `tall_only`: only for planes with at least as many output rows as a thread walks.
template <typename T>
int upfirdn2d_rows_launch(Upfirdn2dParams& p, bool tall_only, cudaStream_t stream, int* err);

}  // namespace bender
