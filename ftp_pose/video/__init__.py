"""ftp_pose.video: running a trained model on a video.

``demo`` (the ``demo`` command: read frames, detect, track, crop, infer, draw, write),
``detect`` (person detectors: OpenCV's HOG, torchvision), ``tracking`` (IoU tracker).
Imports ``engine`` (checkpoints, inference), never the other way round.
"""
