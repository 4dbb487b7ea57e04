"""PoseTrack per-joint AP (the official poseval protocol); scores json, imports no model."""
from ftp_pose.metrics.posetrack_ap import APResult, evaluate_ap, head_size, match_frame, points_in_regions, voc_ap
from ftp_pose.metrics.posetrack_io import load_documents, load_posetrack_json, write_posetrack_predictions

__all__ = ["APResult", "evaluate_ap", "head_size", "match_frame", "points_in_regions", "voc_ap", "load_documents",
           "load_posetrack_json", "write_posetrack_predictions"]
