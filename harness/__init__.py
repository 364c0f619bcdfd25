"""d2l-cnn-harness: re-runs the CNN chapter of Dive into Deep Learning (PyTorch) and judges it against the book."""
