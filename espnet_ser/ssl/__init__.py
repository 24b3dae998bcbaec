"""Self-supervised speech model encoders."""

from espnet_ser.ssl.encoder import SSLEncoder, plot_layer_weights, published_size_configs

__all__ = ["SSLEncoder", "plot_layer_weights", "published_size_configs"]
