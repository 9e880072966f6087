"""Deployable artifacts of a keras-ae model: a SavedModel with named signatures
and TFLite files, each checked against the Keras model (see `export.export`).

Kept free of imports so that `python -m export.export` runs the module once.
"""
