// The row-streaming upfirdn2d kernels for float (see upfirdn2d_rows_launch.cuh).
#include "upfirdn2d_rows_launch.cuh"

template int bender::upfirdn2d_rows_launch<float>(bender::Upfirdn2dParams&, bool, cudaStream_t, int*);
