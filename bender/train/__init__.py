"""Training: StyleGAN2 objective, ADA, short fine-tunes, checkpoints, multi-GPU."""
