"""ftp_pose.models: DPC-KNN token pruning, ViT backbone, MGFE, fusion, heads, variants, loss.

Entry points: :func:`build_model` (``baseline``, ``multigrained``, ``ftp_pose``),
:func:`heatmap_loss`, :func:`load_pretrained`, :func:`prune_tokens` / :func:`dpc_knn_scores`.
"""
from ftp_pose.models.dpc import DPCPruning, dpc_knn_scores, num_kept, prune_tokens
from ftp_pose.models.loss import heatmap_loss
from ftp_pose.models.pose_model import FTPPose, FTPPoseConfig, load_pretrained
from ftp_pose.models.variants import BACKBONES, QUICK_BACKBONE, VARIANTS, build_model, make_config

__all__ = ["build_model", "make_config", "FTPPose", "FTPPoseConfig", "BACKBONES", "QUICK_BACKBONE", "VARIANTS",
           "load_pretrained", "heatmap_loss", "dpc_knn_scores", "prune_tokens", "num_kept", "DPCPruning"]
