"""StyleGAN2 networks as Keras 3 layers and models (TensorFlow backend), NHWC."""
