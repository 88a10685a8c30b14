"""The lecture's discriminative CNNs, used as classifiers and as feature extractors.

All-convolutional net, VGG, ResNet-18/34 and MobileNetV2 (torchvision-compatible state-dict names,
so local torchvision checkpoints load), plus wrappers that turn any of them — or a StyleGAN2
discriminator — into an image -> feature-vector function. These modules never read files:
`bender.metrics.features.load_feature_extractor` finds and loads weights.
"""

from bender.nets.cnn.allconv import AllConvConfig, AllConvNet
from bender.nets.cnn.extractor import BackboneFeatures, DiscriminatorFeatures, FeatureExtractor
from bender.nets.cnn.mobilenet import MobileNetV2, MobileNetV2Config
from bender.nets.cnn.resnet import BasicBlock, ResNet, ResNetConfig, resnet18, resnet34
from bender.nets.cnn.vgg import VGG, VGGConfig, vgg_stage

__all__ = ["VGG", "AllConvConfig", "AllConvNet", "BackboneFeatures", "BasicBlock", "DiscriminatorFeatures",
           "FeatureExtractor", "MobileNetV2", "MobileNetV2Config", "ResNet", "ResNetConfig", "VGGConfig",
           "resnet18", "resnet34", "vgg_stage"]
