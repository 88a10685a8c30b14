"""Networks: the StyleGAN2 generator and discriminator (and, later, the lecture's CNNs).

Modules here never read files; `bender.io` builds them from configs and fills their weights.
"""

from bender.nets.config import DiscriminatorConfig, GeneratorConfig, MappingConfig, SynthesisConfig
from bender.nets.discriminator import Discriminator
from bender.nets.generator import Generator

__all__ = ["Discriminator", "DiscriminatorConfig", "Generator", "GeneratorConfig", "MappingConfig",
           "SynthesisConfig"]
