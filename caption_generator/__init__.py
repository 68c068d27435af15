"""Image caption generator: Xception photo features and a merge-model LSTM decoder, on Keras 3."""
