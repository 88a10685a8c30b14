"""bender: StyleGAN2 circuit bending for artists.

Importing the package is cheap on purpose (no torch, no gradio): the CLI must start fast and the
dataset tools must work where torch is slow to import. Heavy modules are imported where used.
"""

__version__ = "0.1.0"
