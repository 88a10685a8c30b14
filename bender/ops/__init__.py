"""Low-level ops for StyleGAN2: reference PyTorch versions and a dispatch point for CUDA kernels.

Everything here knows nothing about networks; `bender.nets` builds on it.
"""

from bender.ops.bias_act import ACTIVATIONS, bias_act
from bender.ops.conv2d_resample import conv2d_resample
from bender.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = ["ACTIVATIONS", "bias_act", "conv2d_resample", "downsample2d", "filter2d", "setup_filter",
           "upfirdn2d", "upsample2d"]
