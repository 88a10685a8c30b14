// The row-streaming upfirdn2d kernels for __half (see upfirdn2d_rows_launch.cuh).
#include "upfirdn2d_rows_launch.cuh"

template int bender::upfirdn2d_rows_launch<__half>(bender::Upfirdn2dParams&, bool, cudaStream_t, int*);
