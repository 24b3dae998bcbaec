"""Training loop extensions on top of ESPnet's trainer."""
