"""Encoders for the ASR+SER task."""
