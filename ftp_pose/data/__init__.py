"""ftp_pose.data: PoseTrack loading, 3-frame top-down clips, the heatmap codec, synthetic videos.

``models`` never imports this package; ``data`` never imports ``models``.
"""
from ftp_pose.data.clips import (IMAGENET_MEAN, IMAGENET_STD, box_affine, clip_frame_ids, crop_clip, denormalize,
                                 normalize, parse_box, read_rgb)
from ftp_pose.data.detections import load_detections, load_frame_boxes
from ftp_pose.data.heatmaps import (HeatmapCodec, decode_heatmaps, encode_heatmaps, flip_heatmaps, flip_permutation,
                                    heatmap_to_image_coords, heatmap_to_input, input_to_heatmap)
from ftp_pose.data.posetrack import (AugmentConfig, FrameInfo, PersonAnnotation, PoseTrackClipDataset, PoseTrackSet,
                                     load_posetrack)
from ftp_pose.data.synthetic import generate_synthetic_posetrack
from ftp_pose.data.transforms import (affine_points, box_to_center_scale, compose_affine, crop_frames,
                                      flip_affine, get_affine_transform, invert_affine)

__all__ = [
    "box_affine", "clip_frame_ids", "crop_clip", "parse_box",
    "load_detections", "load_frame_boxes",
    "HeatmapCodec", "decode_heatmaps", "encode_heatmaps", "flip_heatmaps", "flip_permutation", "heatmap_to_image_coords",
    "heatmap_to_input", "input_to_heatmap",
    "IMAGENET_MEAN", "IMAGENET_STD", "AugmentConfig", "FrameInfo", "PersonAnnotation", "PoseTrackClipDataset",
    "PoseTrackSet", "denormalize", "load_posetrack", "normalize", "read_rgb",
    "affine_points", "box_to_center_scale", "compose_affine", "crop_frames", "flip_affine",
    "get_affine_transform", "invert_affine",
    "generate_synthetic_posetrack",
]

