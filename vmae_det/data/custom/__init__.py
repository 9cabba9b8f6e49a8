"""Turn your own videos plus a simple annotation CSV into the AVA layout the rest of the project reads.

Input annotation CSV (with a header; column order free, extra columns ignored)::

    video,split,time,x1,y1,x2,y2,action,person
    kitchen01,train,3,120,40,260,400,stand,0
    kitchen01,train,3,120,40,260,400,talk,0      # second action of the same person: same box
    hall.mp4,val,5,10,20,90,200,walk,1

* ``video``: a file in the videos folder, by stem (``kitchen01``) or by name (``hall.mp4``); its
  stem becomes the AVA ``video_id`` (no commas, whitespace or slashes).
* ``split``: ``train`` or ``val``.
* ``time``: the keyframe, seconds from the video's first frame. AVA keyframes are whole seconds,
  so ``time`` must be an integer (``3`` or ``3.0``); ``3.5`` is an error rather than being rounded,
  because a box drawn at 3.5 s would be attached to the frame at 3 or 4 s.
* ``x1,y1,x2,y2``: the person box in pixels of the source video (``normalized=True``: in [0, 1]).
  A box partly outside the frame is clipped to it (counted in the summary); a box entirely outside,
  or with ``x2 <= x1`` / ``y2 <= y1``, is an error.
* ``action``: an action name. Ids ``1..K`` are the sorted names, or the order of ``labels``
  (a text file with one name per line, or an AVA ``.pbtxt`` label map with explicit ids).
* ``person``: an integer id of the person, stable within a video (AVA's ``person_id``).

Output (``output_root``), exactly what :func:`vmae_det.data.register_ava` reads::

    videos/<id>.mp4                        H.264, 30 fps: frame i is the source frame nearest to i/30 s
    frames/<id>/<id>_<nnnnnn>.jpg          only with extract_frames (1-based, as ffmpeg's %06d)
    annotations/ava_{train,val}_v2.2.csv   time t -> AVA timestamp 900 + t (frame t * 30)
    annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt
    annotations/ava_{train,val}_excluded_timestamps_v2.2.csv   (empty)

Every problem in the CSV raises :class:`CustomDatasetError` naming the file and the 1-based line.
Exact duplicate rows are skipped and counted; clipped boxes are counted; nothing is dropped silently.
Videos of odd width/height are padded by one edge pixel (H.264 4:2:0 needs even sizes); boxes are
normalised by the padded size, so they keep their pixel position.

One concept per module:

* :mod:`.annotations`: the user's CSV and label list, checked (:class:`CustomDatasetError`);
* :mod:`.video`: probing and converting the videos (30 fps nearest-frame resampling, the shared
  :class:`~vmae_det.formats.video_writer.VideoWriter`);
* :mod:`.ava_layout`: the rows as AVA ground truth and the annotation files (written with
  :mod:`vmae_det.formats.ava`);
* :mod:`.spill`: the rows on disk (in file order, and sorted by an external merge sort), so memory does not
  grow with the CSV;
* :mod:`.summary`: what was written, and the registration / config code printed for it;
* :mod:`.prepare`: :func:`prepare_custom_dataset`, the steps in order.
"""

from __future__ import annotations

from .annotations import ANNOTATION_COLUMNS, CustomDatasetError, read_label_names
from .prepare import prepare_custom_dataset
from .summary import CustomDatasetSummary, VideoInfo
from .video import resample_to_fps

__all__ = [
    "ANNOTATION_COLUMNS",
    "CustomDatasetError",
    "CustomDatasetSummary",
    "VideoInfo",
    "prepare_custom_dataset",
    "read_label_names",
    "resample_to_fps",
]
