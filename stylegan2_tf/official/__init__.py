"""NVIDIA's official StyleGAN2 networks: safe pickle reading and conversion."""
