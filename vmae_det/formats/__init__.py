"""File formats, below every other layer: AVA's files, VMAD's layout, safe pickles, atomic writes, the mp4 writer.

They import only numpy (PyAV / OpenCV inside the writer) and :mod:`vmae_det.constants`, so the evaluation
CLI uses them without loading detectron2.
"""
