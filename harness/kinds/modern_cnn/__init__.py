"""F1-F4, F7-F8: AlexNet, VGG, NiN, GoogLeNet, ResNet and DenseNet on Fashion-MNIST, measured as the lenet kind does."""

from harness.kinds.base import Kind
from harness.kinds.lenet import KIND as LENET
from harness.kinds.modern_cnn.settings import Settings

KIND = Kind(name="modern_cnn", settings=Settings, metrics=LENET.metrics, measure=LENET.measure, tables=LENET.tables,
            section=LENET.section, curves=LENET.curves, speedups=LENET.speedups, locate=LENET.locate)
