"""The tiny dataset generator for tests."""

from vmae_det.data import tiny_ava


def load_generator():
    return tiny_ava


def make_tiny(root, **kwargs):
    return tiny_ava.make_tiny_ava(root, **kwargs)
