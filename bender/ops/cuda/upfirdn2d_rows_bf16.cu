// The row-streaming upfirdn2d kernels for __nv_bfloat16 (see upfirdn2d_rows_launch.cuh).
#include "upfirdn2d_rows_launch.cuh"

template int bender::upfirdn2d_rows_launch<__nv_bfloat16>(bender::Upfirdn2dParams&, bool, cudaStream_t, int*);
