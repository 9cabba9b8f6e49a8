"""File formats, below every other layer: AVA's annotation files and the mp4 writer.

* :mod:`.ava`: the one AVA CSV reader (:func:`~.ava.read_ava_csv`, fast path + general reader, errors
  ``file:line: reason``), the row writer (:func:`~.ava.format_ava_row`), the label map, exclusions, and
  the dataset layout's file names;
* :mod:`.ava_boxes`: annotations per keyframe on top of it (ground-truth people with their actions,
  excluded keyframes, SlowFast proposals, AlphAction's JSON person boxes);
* :mod:`.video_writer`: :class:`~.video_writer.VideoWriter`, H.264 via PyAV with an OpenCV mp4v fallback.

These modules import only numpy (PyAV / OpenCV inside the writer) and :mod:`vmae_det.constants`, so
``datasets/make_tiny_ava.py`` and the evaluation CLI use them without loading detectron2.
"""
