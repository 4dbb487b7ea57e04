"""ftp_pose.notebook.JointPredictions: errors in PCKh thresholds and positions along a limb,
against values computed by hand; joint_predictions against the dataset's own targets."""
from __future__ import annotations

import numpy as np
import pytest

from ftp_pose.notebook import JointPredictions


def _two_people() -> JointPredictions:
    true = np.zeros((2, 17, 2))
    true[:, 7] = (10.0, 10.0)            # elbow
    true[:, 9] = (10.0, 30.0)            # wrist, 20 px below the elbow
    pred = true.copy()
    pred[0, 9] = (13.0, 20.0)            # halfway down the forearm, 3 px to the side
    pred[1, 9] = (10.0, 30.0)            # exact
    visible = np.ones((2, 17), bool)
    visible[1, 7] = False                # person 1: elbow not annotated
    return JointPredictions(pred, true, visible, threshold=np.array([5.0, 2.0]))


def test_error_is_in_thresholds_and_nan_where_not_visible() -> None:
    e = _two_people().error()
    assert e[0, 9] == pytest.approx(np.hypot(3.0, 10.0) / 5.0)
    assert e[1, 9] == 0.0 and e[0, 7] == 0.0
    assert np.isnan(e[1, 7])


def test_along_projects_onto_the_true_segment() -> None:
    t = _two_people().along(7, 9)
    assert t[0] == pytest.approx(0.5)    # (13, 20) projects to the middle of (10, 10) -> (10, 30)
    assert np.isnan(t[1])                # elbow not visible: no segment


class _Oracle:
    """Stands in for a model: returns the target heatmaps of whichever stored clip it is given."""

    def __init__(self, items: list[dict]) -> None:
        import torch

        self.clips = torch.stack([it["clip"] for it in items]).flatten(1)
        self.heatmaps = torch.stack([it["heatmaps"] for it in items])

    def __call__(self, clips):
        nearest = ((clips.flatten(1)[:, None] - self.clips[None]) ** 2).sum(-1).argmin(1)
        return self.heatmaps[nearest]


def test_joint_predictions_of_the_target_heatmaps_are_the_true_joints() -> None:
    import torch

    from ftp_pose.notebook import joint_predictions, synthetic_people

    ds = synthetic_people((128, 96), (32, 24))
    sub = torch.utils.data.Subset(ds, [0, 2, 1])        # a Subset too (a config's max_val_items)
    jp = joint_predictions(_Oracle([sub[i] for i in range(3)]), sub, batch_size=2)
    assert jp.pred.shape == (3, 17, 2) and jp.threshold.shape == (3,) and (jp.threshold > 0).all()
    inside = jp.visible & (jp.true[..., 0] >= 0) & (jp.true[..., 0] <= 95) & (jp.true[..., 1] >= 0) & (jp.true[..., 1] <= 127)
    assert inside.sum() > 20
    assert np.nanmax(np.where(inside, jp.error(), np.nan)) < 0.2   # decoding the targets finds the joints
    # person 0 of the Subset is item 0: the first person of the first labeled frame; its threshold in crop
    # pixels is half of 0.6 x its head-box diagonal, times the crop's zoom (input height / box height)
    first = ds.set.annotations[ds.set.labeled_image_ids()[0]][0]
    zoom = 128 / float(ds[0]["meta"]["scale"][1])
    assert jp.threshold[0] == pytest.approx(0.5 * 0.6 * np.hypot(*first.bbox_head[2:]) * zoom, rel=1e-3)
