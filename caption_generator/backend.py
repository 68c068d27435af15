"""TensorFlow and Keras, imported once without TensorFlow's C++ start-up notices (CUDA, oneDNN, CPU
features): they would bury our messages on the command line and in the notebook. The notices printed
while the library loads ignore TF_CPP_MIN_LOG_LEVEL when it is set this late, so stderr is closed then."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the later notices (CPU features at the first operation)


def _import_quietly() -> None:
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_quietly()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # its Python warnings (tf.function retracing) are for developers, not users

__all__ = ["keras", "tf"]
