"""The demo: streaming, person detectors, tracking, prediction json, and clear errors for bad inputs."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from _engine_dummies import make_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def _mp4(root: Path) -> Path:
    return root / "videos" / "000001_mpiinew_test" / "000001_mpiinew_test.mp4"


def test_demo_writes_an_annotated_video(posetrack18_root: Path, tmp_path: Path, tiny_ckpt: Path) -> None:
    from ftp_pose.cli import main

    out = tmp_path / "demo"
    assert main(["demo", str(_mp4(posetrack18_root)), "--checkpoint", str(tiny_ckpt), "--out", str(out),
                 "--max-frames", "3", "--show-tokens", "--detector", "none", "--batch", "2"]) == 0
    cap = cv2.VideoCapture(str(out / "annotated.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 3 and cap.get(cv2.CAP_PROP_FRAME_WIDTH) == 1280
    cap.release()
    assert len(list(out.glob("frame_*.png"))) >= 2
    doc = json.loads((out / "000001_mpiinew_test.json").read_text())  # PoseTrack-format predictions
    assert [im["id"] for im in doc["images"]] == [0, 1, 2]
    for ann in doc["annotations"]:
        assert len(ann["keypoints"]) == 51 and len(ann["bbox"]) == 4 and ann["track_id"] >= 0


def test_demo_with_boxes_on_a_frame_folder(posetrack18_root: Path, tmp_path: Path, tiny_ckpt: Path) -> None:
    import json

    from ftp_pose.video.demo import run_demo

    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps([{"frame_index": 1, "bbox": [500, 150, 200, 450], "score": 0.9},
                                 {"frame_index": 1, "bbox": [0, 0, 50, 50], "score": 0.1}]))
    res = run_demo(_mp4(posetrack18_root).parent, tiny_ckpt, boxes=boxes, out_dir=tmp_path, max_frames=2,
                   progress=False)
    assert res["n_frames"] == 2 and res["n_people"] == 1  # the low-score box is skipped
    assert Path(res["video"]).is_file()
    ann = json.loads(Path(res["predictions"]).read_text())["annotations"]
    assert len(ann) == 1 and ann[0]["image_id"] == 1 and ann[0]["bbox"] == [500, 150, 200, 450]


def test_demo_streams_with_bounded_buffers(tmp_path: Path, tiny_ckpt: Path, monkeypatch) -> None:
    """A video longer than the batch: frames are pulled lazily, written as their batch is done, and
    never more than the clip window plus one batch are held; every input frame comes out."""
    from ftp_pose.video import demo

    n_in, batch = 13, 3
    state = {"read": 0, "written": 0, "held_max": 0}

    def frames():
        rng = np.random.default_rng(0)
        for _ in range(n_in):
            state["read"] += 1
            state["held_max"] = max(state["held_max"], state["read"] - state["written"])
            yield rng.integers(0, 255, (72, 96, 3), dtype=np.uint8)

    monkeypatch.setattr(demo, "open_frames", lambda source, max_frames=None: (frames(), 10.0, None))
    write = demo._VideoSink.write

    def counting_write(self, frame):
        state["written"] += 1
        return write(self, frame)
    monkeypatch.setattr(demo._VideoSink, "write", counting_write)
    video = tmp_path / "long.mp4"
    video.write_bytes(b"")  # never opened: open_frames is replaced
    res = demo.run_demo(video, tiny_ckpt, out_dir=tmp_path / "out", detector="none", batch_frames=batch,
                        progress=False)
    window = 3  # t-1, t, t+1 of the tiny checkpoint's config
    assert state["held_max"] <= window + batch, state
    assert res["n_frames"] == n_in and state["written"] == n_in
    cap = cv2.VideoCapture(res["video"])
    n_out = 0
    while cap.read()[0]:
        n_out += 1
    cap.release()
    assert n_out == n_in
    doc = json.loads(Path(res["predictions"]).read_text())
    assert len(doc["images"]) == n_in and len(doc["annotations"]) == n_in
    assert {a["track_id"] for a in doc["annotations"]} == {0}  # the whole-frame box is one track


def test_open_frames_is_lazy(posetrack18_root: Path) -> None:
    from ftp_pose.video.demo import open_frames

    it, fps, n = open_frames(_mp4(posetrack18_root))
    assert n == 5 and fps > 0
    first = next(it)
    assert first.shape == (720, 1280, 3) and first.dtype == np.uint8
    assert sum(1 for _ in it) == 4
    it, _, n = open_frames(_mp4(posetrack18_root).parent, max_frames=4)
    assert n == 4 and len(list(it)) == 4


def test_torchvision_detector_from_a_local_weights_file(tmp_path: Path) -> None:
    """The loading code of --detector torchvision, on randomly initialised weights saved to tmp."""
    import torchvision.models.detection as tvd

    from ftp_pose.video.demo import make_detector
    from ftp_pose.video.detect import TorchvisionPersonDetector
    from ftp_pose.errors import CheckpointError, MissingFileError

    torch.manual_seed(0)
    arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    net = tvd.fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None, num_classes=91)
    weights = tmp_path / "det.pth"
    torch.save(net.state_dict(), weights)
    det = TorchvisionPersonDetector(weights, arch, score_thresh=0.0)
    boxes, scores = det(np.zeros((120, 160, 3), np.uint8))
    assert boxes.shape[1:] == (4,) and boxes.shape[0] == scores.shape[0] and boxes.dtype == np.float32
    assert np.all(np.diff(scores) <= 0)
    torch.save({"model": net.state_dict()}, tmp_path / "wrapped.pth")
    TorchvisionPersonDetector(tmp_path / "wrapped.pth", arch)  # a checkpoint dict holding the state dict
    with pytest.raises(CheckpointError, match="do not fit torchvision fasterrcnn_resnet50_fpn"):
        TorchvisionPersonDetector(weights, "fasterrcnn_resnet50_fpn")
    (tmp_path / "cut.pth").write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="cut.pth"):
        TorchvisionPersonDetector(tmp_path / "cut.pth", arch)
    with pytest.raises(MissingFileError, match="--detector-weights"):
        make_detector("torchvision")
    with pytest.raises(MissingFileError, match="nope.pth"):
        make_detector("torchvision", weights=tmp_path / "nope.pth")


def test_hog_detector_is_opencvs_own_hog_on_a_bundled_frame(sample_root: Path) -> None:
    """The boxes are those of a direct cv2.HOGDescriptor.detectMultiScale call with the same parameters
    on the same resized frame, scaled back to the frame (IoU > 0.9 each), best first."""
    from torchvision.ops import box_iou

    from ftp_pose.video.demo import open_frames
    from ftp_pose.video.detect import HOGPeopleDetector

    frame = next(open_frames(sample_root / "videos" / "mmpose_demo.mp4")[0])  # 960 x 540, pedestrians
    det = HOGPeopleDetector(width=640, win_stride=8, padding=8, scale=1.05, hit_threshold=0.0, group_threshold=1)
    boxes, scores = det(frame)
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    small = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
    ref, _ = hog.detectMultiScale(small, hitThreshold=0.0, winStride=(8, 8), padding=(8, 8), scale=1.05,
                                  groupThreshold=1)
    ref = np.asarray(ref, np.float64).reshape(-1, 4) * (960 / 640)
    assert len(boxes) >= 2 and len(boxes) == len(ref), (boxes, ref)
    xyxy = lambda b: torch.as_tensor(np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1), dtype=torch.float64)  # noqa: E731
    iou = box_iou(xyxy(boxes), xyxy(np.clip(ref, 0, None)))
    assert torch.all(iou.max(1).values > 0.9) and torch.all(iou.max(0).values > 0.9), iou
    assert np.all(np.diff(scores) <= 0) and np.all(boxes[:, 3] > boxes[:, 2])
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 0] + boxes[:, 2] <= 960)


def test_hog_finds_several_people_on_a_street_video(sample_file, tmp_path: Path, tiny_ckpt: Path) -> None:
    """The default detector on OpenPose's street video (not bundled: academic licence)."""
    from ftp_pose.video.demo import run_demo

    video = sample_file("videos/openpose_video.avi")
    res = run_demo(video, tiny_ckpt, out_dir=tmp_path, max_frames=2, progress=False)
    doc = json.loads(Path(res["predictions"]).read_text())
    per_frame = [sum(a["image_id"] == im["id"] for a in doc["annotations"]) for im in doc["images"]]
    assert len(per_frame) == 2 and min(per_frame) >= 3, per_frame
    for a in doc["annotations"]:
        x, y, w, h = a["bbox"]
        assert w > 0 and h > 1.5 * w  # upright person boxes (64 x 128 windows)
    ids = [a["track_id"] for a in doc["annotations"] if a["image_id"] == 0]
    assert len(ids) == len(set(ids))


def test_demo_errors(tmp_path: Path, tiny_ckpt: Path, posetrack18_root: Path) -> None:
    from ftp_pose.video.demo import run_demo

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(ValueError, match="cannot read video .*broken.mp4"):
        run_demo(bad, tiny_ckpt, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="video not found"):
        run_demo(tmp_path / "missing.mp4", tiny_ckpt, out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nope.pt"):
        run_demo(_mp4(posetrack18_root), tmp_path / "nope.pt", out_dir=tmp_path)


def test_demo_geometry_and_clips_with_an_oracle_model(tmp_path: Path, monkeypatch) -> None:
    """An oracle model reads the frame index stamped into every frame of each clip it receives and puts
    joint j's heatmap peak at a known cell: each clip is t-1, t, t+1 across batch boundaries (the key
    frame repeats at the video's ends), and each keypoint lands within 1 px of where the box's crop
    geometry, computed here by hand, puts that cell in the frame."""
    from types import SimpleNamespace

    from ftp_pose.data.clips import IMAGENET_MEAN, IMAGENET_STD
    from ftp_pose.video import demo

    n, batch, (H, W) = 10, 4, (160, 200)
    in_h, in_w, hm_h, hm_w = 64, 48, 16, 12
    cells = [(4 + j % 4, 4 + j // 4) for j in range(17)]  # (x, y) heatmap cell of joint j, 4+ cells from the border
    seen: list[list[list[int]]] = []  # per forward pass, per clip: the stamps of its frames

    class Oracle(torch.nn.Module):
        def forward(self, clips: torch.Tensor) -> torch.Tensor:  # B x T x 3 x in_h x in_w
            centre = clips[:, :, 0, in_h // 2, in_w // 2] * IMAGENET_STD[0] + IMAGENET_MEAN[0]
            seen.append(torch.round(centre * 255).int().tolist())
            ys, xs = torch.meshgrid(torch.arange(hm_h), torch.arange(hm_w), indexing="ij")
            hm = torch.stack([torch.exp(-((xs - x) ** 2 + (ys - y) ** 2) / 2.0) for x, y in cells])
            return hm.expand(len(clips), -1, -1, -1).clone()

    cfg = SimpleNamespace(data=SimpleNamespace(input_size=(in_h, in_w), heatmap_size=(hm_h, hm_w), offsets=(-1, 1),
                                               box_enlarge=1.25, synthetic=None))
    frames = (np.full((H, W, 3), t, np.uint8) for t in range(n))  # frame value = its index
    monkeypatch.setattr(demo, "open_frames", lambda source, max_frames=None: (frames, 10.0, n))
    monkeypatch.setattr(demo, "load_model", lambda checkpoint, device: (Oracle(), cfg))
    ckpt, video = tmp_path / "oracle.pt", tmp_path / "stamped.mp4"
    ckpt.write_bytes(b"")
    video.write_bytes(b"")  # never opened: open_frames is replaced
    box = (40.0, 10.0, 80.0, 120.0)  # x, y, w, h: 2.3 frame pixels per input pixel
    res = demo.run_demo(video, ckpt, out_dir=tmp_path / "out", batch_frames=batch, progress=False,
                        detector=lambda img: (np.array([box]), np.array([1.0])))

    expected = [[max(t - 1, 0) if t > 0 else t, t, min(t + 1, n - 1)] for t in range(n)]
    expected[0], expected[-1] = [0, 0, 1], [n - 2, n - 1, n - 1]
    assert seen == [expected[0:4], expected[4:8], expected[8:10]]
    # the crop: the box centred, widened to the input's aspect 48 / 64, enlarged 1.25 times
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    crop_h = max(box[3], box[2] * in_h / in_w) * 1.25
    crop_w = crop_h * in_w / in_h
    stride = in_w / hm_w
    want = np.array([[cx + ((x + 0.5) * stride - 0.5 - in_w / 2) * crop_w / in_w,
                      cy + ((y + 0.5) * stride - 0.5 - in_h / 2) * crop_h / in_h] for x, y in cells])
    doc = json.loads(Path(res["predictions"]).read_text())
    assert [a["image_id"] for a in doc["annotations"]] == list(range(n))
    for a in doc["annotations"]:
        xy = np.asarray(a["keypoints"], np.float64).reshape(17, 3)[:, :2]
        assert np.abs(xy - want).max() < 1.0, np.abs(xy - want).max()


def test_the_demo_says_when_the_checkpoint_saw_only_synthetic_people(tmp_path: Path, tiny_ckpt: Path,
                                                                     monkeypatch) -> None:
    """The shipped quick CPU checkpoint was trained on the synthetic videos its config renders: one
    line says its skeletons will not fit real people; a PoseTrack config says nothing."""
    from ftp_pose.engine.checkpoint import load_checkpoint
    from ftp_pose.engine.config import config_from_dict, load_config
    from ftp_pose.paths import REPO_ROOT
    from ftp_pose.video import demo

    shipped = load_checkpoint(REPO_ROOT / "checkpoints" / "quick_cpu.pt")["config"]
    assert demo.trained_on_synthetic_data(config_from_dict(shipped))
    assert not demo.trained_on_synthetic_data(load_config(REPO_ROOT / "configs" / "ftp_pose.yaml"))

    model, cfg = demo.load_model(tiny_ckpt, torch.device("cpu"))
    cfg.data.synthetic = config_from_dict(shipped).data.synthetic
    cfg.data.train_ann = shipped["data"]["train_ann"]
    monkeypatch.setattr(demo, "load_model", lambda checkpoint, device: (model, cfg))
    lines: list[str] = []
    demo.run_demo(_frame_folder(tmp_path), tiny_ckpt, out_dir=tmp_path / "out", detector="none", progress=False,
                  log=lines.append)
    assert len(lines) == 1 and "synthetic" in lines[0] and "will not fit real people" in lines[0]


def _frame_folder(root: Path, n: int = 2) -> Path:
    """A folder of ``n`` small frames."""
    folder = root / "frames"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i:03d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    return folder


def test_token_marks_map_kept_indices_to_frame_pixels() -> None:
    """HR index -> its heatmap cell's centre in the input; LR index -> its key-frame patch corners;
    then the input -> frame affine (a shift and zoom by 2 here)."""
    from ftp_pose.video.demo import token_marks

    inv = np.array([[2, 0, 100], [0, 2, 50]], np.float32)  # input -> frame
    info = {"kept_index_h": torch.tensor([[13]]),  # 16 x 12 heatmap: cell (1, 1)
            "kept_index_l": torch.tensor([[3, 12 + 4]])}  # 4 x 3 patches per frame; only key frame 1's count
    dots, squares = token_marks(info, 0, inv, key_index=1, input_size=(64, 48), heatmap_size=(16, 12))
    assert np.allclose(dots, [[100 + 2 * 5.5, 50 + 2 * 5.5]])  # cell centre (1.5 * 4 - 0.5) in the input
    assert np.allclose(squares, [[[100 + 2 * 16, 50 + 2 * 16], [100 + 2 * 31, 50 + 2 * 31]]])  # patch 4: (1, 1)
