"""TensorFlow and Keras, imported once without TensorFlow's C++ start-up notices (CUDA, oneDNN, CPU
features): they are printed to stderr before any setting can silence them, and would bury our messages
on the command line and in the notebook."""
import os


def _import_quietly() -> None:
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import tensorflow

        tensorflow.constant(0) + 1  # the CPU-feature notice comes with the first operation
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_quietly()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

__all__ = ["keras", "tf"]
