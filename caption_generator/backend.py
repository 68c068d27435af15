"""TensorFlow and Keras, imported once without TensorFlow's C++ start-up notices (CUDA, oneDNN, CPU
features): they would bury our messages on the command line and in the notebook. The notices printed
while the library loads ignore TF_CPP_MIN_LOG_LEVEL when it is set this late, so stderr is closed then."""
import os

from .files import stderr_to

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the later notices (CPU features at the first operation)


def _import_quietly() -> None:
    with open(os.devnull, "w") as devnull, stderr_to(devnull):
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


_import_quietly()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")  # its Python warnings (tf.function retracing) are for developers, not users

__all__ = ["keras", "tf"]
