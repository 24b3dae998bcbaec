"""Utterance-level speech emotion recognition: pooling, classifiers and the SER model."""
