"""The book's code: corr2d and its fast variants, the networks, the Fashion-MNIST loaders and the training loops."""
