"""FTP-Pose: multi-grained feature pruning for video-based human pose estimation.

Subpackages: ``data`` (PoseTrack loaders, crops, heatmaps, augmentation, synthetic videos),
``models`` (DPC-KNN token pruning, ViT backbone, MGFE, fusion, head, variants),
``engine`` (train, evaluate, demo), ``metrics`` (PoseTrack per-joint AP),
``viz`` (drawings, decision graphs, widgets).
"""
__version__ = "0.1.0"
