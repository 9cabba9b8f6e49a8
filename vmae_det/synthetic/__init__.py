"""Synthetic datasets in the real layouts (tiny AVA, ACT-format, AVA-Kinetics), made with numpy, OpenCV and PyAV."""
