"""espnet_ser: speech emotion recognition recipes and models as ESPnet plugins."""

__version__ = "0.1.0"
