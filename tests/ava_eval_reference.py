"""Line-by-line port of the official ActivityNet AVA evaluator, used as the oracle.

Structured like ``Evaluation/get_ava_performance.py`` and its ``ava/`` package (per-image,
per-class loops; a heap per keyframe; Python loop for the precision envelope), rewritten here
without the unused parts (difficult / group-of boxes, masks, CorLoc). Two protocols:

* ``"2019"``: keys ``"%s,%04d" % (video_id, int(timestamp))``; an exclusions file drops keys on
  both sides; detections on keys without ground truth are evaluated against no boxes.
* ``"2020"``: keys ``"%s,%.6f" % (video_id, Decimal(timestamp))``; ground-truth rows with only
  ``video_id,timestamp`` are allowed; detections on keys absent from the ground-truth file are
  ignored; no exclusions.

Inputs are iterables of CSV rows (lists of strings, as ``csv.reader`` yields) so that tests and
the benchmark can feed it exactly what the vectorised evaluator reads.
"""

from __future__ import annotations

import decimal
import heapq
from collections import defaultdict

import numpy as np


def make_image_key(video_id, timestamp, protocol):
    if protocol == "2019":
        return "%s,%04d" % (video_id, int(timestamp))
    return "%s,%.6f" % (video_id, decimal.Decimal(timestamp))


def read_labelmap(lines):
    """Official line-prefix parser: ``  name:`` then ``  id:`` / ``  label_id:`` appends."""
    labelmap, class_ids = [], set()
    name = ""
    for line in lines:
        if line.startswith("  name:"):
            name = line.split('"')[1]
        elif line.startswith("  id:") or line.startswith("  label_id:"):
            class_id = int(line.strip().split(" ")[-1])
            labelmap.append({"id": class_id, "name": name})
            class_ids.add(class_id)
    return labelmap, class_ids


def read_csv(rows, class_whitelist, capacity, protocol):
    entries = defaultdict(list)
    boxes, labels, scores = defaultdict(list), defaultdict(list), defaultdict(list)
    all_keys = set()
    for row in rows:
        allowed = [2, 7, 8] if protocol == "2020" else [7, 8]
        assert len(row) in allowed, "Wrong number of columns: %r" % (row,)
        image_key = make_image_key(row[0], row[1], protocol)
        all_keys.add(image_key)
        if len(row) == 2:
            continue
        x1, y1, x2, y2 = [float(n) for n in row[2:6]]
        action_id = int(row[6])
        if class_whitelist and action_id not in class_whitelist:
            continue
        score = 1.0
        if len(row) == 8:
            score = float(row[7])
        if capacity < 1 or len(entries[image_key]) < capacity:
            heapq.heappush(entries[image_key], (score, action_id, y1, x1, y2, x2))
        elif score > entries[image_key][0][0]:
            heapq.heapreplace(entries[image_key], (score, action_id, y1, x1, y2, x2))
    for image_key in entries:
        entry = sorted(entries[image_key], key=lambda tup: -tup[0])
        for score, action_id, y1, x1, y2, x2 in entry:
            boxes[image_key].append([y1, x1, y2, x2])
            labels[image_key].append(action_id)
            scores[image_key].append(score)
    return boxes, labels, scores, all_keys


def iou(boxes1, boxes2):
    y_min1, x_min1, y_max1, x_max1 = np.split(boxes1, 4, axis=1)
    y_min2, x_min2, y_max2, x_max2 = np.split(boxes2, 4, axis=1)
    heights = np.maximum(
        np.zeros((len(boxes1), len(boxes2))), np.minimum(y_max1, y_max2.T) - np.maximum(y_min1, y_min2.T)
    )
    widths = np.maximum(
        np.zeros((len(boxes1), len(boxes2))), np.minimum(x_max1, x_max2.T) - np.maximum(x_min1, x_min2.T)
    )
    intersect = heights * widths
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    union = np.expand_dims(area1, axis=1) + np.expand_dims(area2, axis=0) - intersect
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersect / union


def tp_fp_single_class(detected_boxes, detected_scores, groundtruth_boxes, threshold):
    if detected_boxes.size == 0:
        return np.array([], dtype=float), np.array([], dtype=bool)
    num_detected = detected_boxes.shape[0]
    if groundtruth_boxes.size == 0:
        return detected_scores, np.zeros(num_detected, dtype=bool)
    overlaps = iou(detected_boxes, groundtruth_boxes)
    tp_fp_labels = np.zeros(num_detected, dtype=bool)
    max_overlap_gt_ids = np.argmax(overlaps, axis=1)
    is_gt_box_detected = np.zeros(overlaps.shape[1], dtype=bool)
    for i in range(num_detected):
        gt_id = max_overlap_gt_ids[i]
        if overlaps[i, gt_id] >= threshold:
            if not is_gt_box_detected[gt_id]:
                tp_fp_labels[i] = True
                is_gt_box_detected[gt_id] = True
    return detected_scores, tp_fp_labels


def per_image_tp_fp(det_boxes, det_scores, det_classes, gt_boxes, gt_classes, num_class, threshold):
    """0-indexed classes; drops invalid detections, then one pass per class."""
    valid = np.logical_and(det_boxes[:, 0] < det_boxes[:, 2], det_boxes[:, 1] < det_boxes[:, 3])
    det_boxes, det_scores, det_classes = det_boxes[valid], det_scores[valid], det_classes[valid]
    scores, tp_fp = [], []
    for i in range(num_class):
        s, t = tp_fp_single_class(
            det_boxes[det_classes == i], det_scores[det_classes == i], gt_boxes[gt_classes == i], threshold
        )
        scores.append(s)
        tp_fp.append(t)
    return scores, tp_fp


def compute_precision_recall(scores, labels, num_gt):
    if num_gt == 0:
        return None, None
    sorted_indices = np.argsort(scores)
    sorted_indices = sorted_indices[::-1]
    labels = labels.astype(int)
    true_positive_labels = labels[sorted_indices]
    false_positive_labels = 1 - true_positive_labels
    cum_true_positives = np.cumsum(true_positive_labels)
    cum_false_positives = np.cumsum(false_positive_labels)
    precision = cum_true_positives.astype(float) / (cum_true_positives + cum_false_positives)
    recall = cum_true_positives.astype(float) / num_gt
    return precision, recall


def compute_average_precision(precision, recall):
    if precision is None:
        return np.nan
    if not precision.size:
        return 0.0
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = np.maximum(precision[i], precision[i + 1])
    indices = np.where(recall[1:] != recall[:-1])[0] + 1
    return np.sum((recall[indices] - recall[indices - 1]) * precision[indices])


class PascalEvaluation:
    """The parts of ObjectDetectionEvaluation that AVA uses."""

    def __init__(self, categories, threshold=0.5):
        self.categories = categories
        self.num_class = max(c["id"] for c in categories)
        self.threshold = threshold
        self.groundtruth_boxes, self.groundtruth_class_labels = {}, {}
        self.num_gt_instances_per_class = np.zeros(self.num_class, dtype=int)
        self.detection_keys = set()
        self.scores_per_class = [[] for _ in range(self.num_class)]
        self.tp_fp_labels_per_class = [[] for _ in range(self.num_class)]

    def add_ground_truth(self, image_key, boxes, classes):
        classes = classes - 1
        self.groundtruth_boxes[image_key] = boxes
        self.groundtruth_class_labels[image_key] = classes
        for class_index in range(self.num_class):
            self.num_gt_instances_per_class[class_index] += np.sum(classes == class_index)

    def add_detections(self, image_key, boxes, scores, classes):
        if image_key in self.detection_keys:
            return
        self.detection_keys.add(image_key)
        if image_key in self.groundtruth_boxes:
            gt_boxes = self.groundtruth_boxes[image_key]
            gt_classes = self.groundtruth_class_labels[image_key]
        else:
            gt_boxes, gt_classes = np.empty((0, 4), dtype=float), np.array([], dtype=int)
        scores, tp_fp = per_image_tp_fp(
            boxes, scores, classes - 1, gt_boxes, gt_classes, self.num_class, self.threshold
        )
        for i in range(self.num_class):
            if scores[i].shape[0] > 0:
                self.scores_per_class[i].append(scores[i])
                self.tp_fp_labels_per_class[i].append(tp_fp[i])

    def evaluate(self):
        ap = np.full(self.num_class, np.nan)
        for class_index in range(self.num_class):
            if self.num_gt_instances_per_class[class_index] == 0:
                continue
            if not self.scores_per_class[class_index]:
                scores, labels = np.array([], dtype=float), np.array([], dtype=bool)
            else:
                scores = np.concatenate(self.scores_per_class[class_index])
                labels = np.concatenate(self.tp_fp_labels_per_class[class_index])
            precision, recall = compute_precision_recall(scores, labels, self.num_gt_instances_per_class[class_index])
            ap[class_index] = compute_average_precision(precision, recall)
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean_ap = np.nanmean(ap)
        return mean_ap, {c["id"]: float(ap[c["id"] - 1]) for c in self.categories}


def run_evaluation(labelmap_lines, groundtruth_rows, detection_rows, exclusion_rows=None, protocol="2019"):
    """Returns ``(mAP, {action_id: AP})`` exactly as the official script computes them."""
    categories, class_whitelist = read_labelmap(labelmap_lines)
    excluded_keys = set()
    if protocol == "2019" and exclusion_rows:
        for row in exclusion_rows:
            assert len(row) == 2
            excluded_keys.add(make_image_key(row[0], row[1], protocol))
    evaluation = PascalEvaluation(categories)
    boxes, labels, _, gt_keys = read_csv(groundtruth_rows, class_whitelist, 0, protocol)
    for image_key in boxes:
        if image_key in excluded_keys:
            continue
        evaluation.add_ground_truth(
            image_key, np.array(boxes[image_key], dtype=float), np.array(labels[image_key], dtype=int)
        )
    boxes, labels, scores, _ = read_csv(detection_rows, class_whitelist, 50, protocol)
    for image_key in boxes:
        if protocol == "2019" and image_key in excluded_keys:
            continue
        if protocol == "2020" and image_key not in gt_keys:
            continue
        evaluation.add_detections(
            image_key,
            np.array(boxes[image_key], dtype=float),
            np.array(scores[image_key], dtype=float),
            np.array(labels[image_key], dtype=int),
        )
    return evaluation.evaluate()
