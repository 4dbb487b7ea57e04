"""Synthetic PoseTrack-format videos: rendered articulated stick people with exact labels.

Each video shows 1-3 people (``people_per_frame``) whose 2-D bodies move smoothly: a
walking-like cycle of joint angles in the image plane, translation and a slow change of size.
Bodies are thick textured limbs (left limbs in a blue/cyan family, right limbs in an
orange/red family, so left/right is learnable), a torso in clothing colours, skin-coloured
hands, shoes, and an elliptic head with a face (front view) or hair (back view). Backgrounds
are gradients with clutter shapes and noise; optional occluder bars and motion blur.

Visibility rule (``v`` in the labels). A joint gets ``v = 1`` when
  (a) its rounded pixel lies inside the image, and
  (b) nothing drawn *after* its person (a person in front, or an occluder bar) covers that
      pixel; the person's own limbs do not hide its joints (PoseTrack labels self-occlusion),
      except the nose of a person seen from the back (hidden by the head).
Otherwise ``v = 0`` and ``x = y = 0`` (the COCO/PoseTrack convention for unlabeled joints).
A person with no visible joint in a frame gets no annotation there. ``bbox`` is the box of the
visible joints enlarged by 12 % of its size on every side (at least 4 % of the body height),
clipped to the image; ``bbox_head`` is the box of the head ellipse.

Ablation benchmark options (all off by default; :data:`ABLATION_BENCHMARK` bundles them as
``python -m ftp_pose ablate`` uses them). They make the mechanisms the paper's Tables II/III are
about matter, and they draw from a separate random stream (``SeedSequence([seed, split, video,
1])``), so with every option off the files are byte-identical to a set rendered without them:

* ``height=(lo, hi)``: person height as a fraction of the frame height (overrides the
  difficulty's); with a small ``size`` this gives small people whose wrists/ankles span a few
  pixels, so localising them needs the fine (high-resolution) token grid, not 16-pixel patches.
* ``side_cue="view"``: left and right limbs get the *same* colour (one random hue per person), so
  left/right is no longer written in colour. It follows from the pose context only, as in real
  footage: a person seen from the front (face drawn) has their left side on the image right, a
  person seen from the back (hair drawn) on the image left. Unlike the colour cue this is
  consistent under horizontal flipping, so flip augmentation and the flip test are valid.
  ``"colour"`` (default) keeps left blue/cyan and right orange/red.
* ``key_occlusion=p``: in a frame, with probability ``p``, a textured patch is pasted over one
  limb joint (elbow, wrist, knee or ankle) of one person. Only that frame is hit, never two
  consecutive frames, so the neighbours at offsets -1/+1 show the joint. The covered joint
  *keeps* its label (``v = 1``, its true position): the model has to infer it from the body
  context and the neighbour frames — the temporal evidence the LRB/HRB aggregate.
* ``key_blur=p``: in a frame, with probability ``p`` (again never two consecutive frames), a
  strong motion blur (kernel 11-17 px) smears the whole frame; labels are unchanged.
* ``person_occlusion=p``: in every frame, each person independently with probability ``p`` (never in
  two consecutive frames of that person) gets a larger patch (radius 0.10-0.15 body heights) over
  one limb joint, often hiding a limb end and its neighbour. Labels are kept (``v = 1``); with
  ``p = 0.5`` about a third of the person instances are hit. Drawn from a stream of its own
  (``SeedSequence([seed, split, video, 2])``).
* ``limb_ends=s``: hands and shoes ``s`` times larger, in a saturated glove / shoe colour of their
  own, so wrists and ankles can be localised in small crops (distractor hands grow alike).
* With ``key_occlusion``, ``key_blur`` or ``person_occlusion`` on, every annotation carries
  ``"perturbation": {"occluded": [joint indices under a patch], "blurred": bool}`` (its frame got
  the one-frame blur), so results can be split by what a perturbation touched
  (:func:`perturbation_shares`).
* ``distractors=n``: ``n`` static limb-like sticks per video (two thick segments in limb colours
  ending in a skin-coloured "hand") drawn into the background: clutter that looks like body
  parts, the redundant/noisy tokens DPC-KNN token pruning is meant to drop.

Layout written under ``out_dir`` (like PoseTrack 2018)::

    images/<split>/<vid>/000000.jpg ...
    annotations/<split>/<vid>.json      one json per video (what poseval reads)
    annotations/<split>.json            all videos of the split merged

with ``file_name`` relative to ``out_dir``, ``frame_id = id = 10000000000 + vid * 10000 + idx``,
every frame listed and labeled. Train videos are numbered from 1, val videos from 500001, and
every video has its own random stream (``SeedSequence([seed, split, video])``), so a seed gives
byte-identical files and the splits never share a video.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from tqdm import tqdm

from ftp_pose.io import atomic_write, make_dirs, write_json
from ftp_pose.keypoints import EVAL_JOINTS, JOINT_NAMES, NUM_JOINTS, SKELETON

#: Per-difficulty settings: person height as a fraction of the frame height, chance of an
#: occluder bar per video, chance of motion blur per frame, number of clutter shapes, chance of a
#: person seen from the back, saturation ceiling of the clutter.
DIFFICULTIES: dict[str, dict] = {
    "easy": dict(height=(0.60, 0.90), occluder_prob=0.0, blur_prob=0.0, clutter=4, back_prob=0.0, clutter_sat=80),
    "medium": dict(height=(0.42, 0.82), occluder_prob=0.35, blur_prob=0.15, clutter=10, back_prob=0.15,
                   clutter_sat=140),
    "hard": dict(height=(0.25, 0.70), occluder_prob=0.7, blur_prob=0.3, clutter=20, back_prob=0.3, clutter_sat=255),
}

#: The option bundle of the ablation benchmark (``python -m ftp_pose ablate``; see the module docstring).
ABLATION_BENCHMARK: dict = dict(difficulty="medium", height=(0.3, 0.6), side_cue="view", key_occlusion=0.3,
                                key_blur=0.15, distractors=6, person_occlusion=0.5, limb_ends=2.0)
SIDE_CUES = ("colour", "view")

_SUB = 4                # cv2 sub-pixel drawing: coordinates in 1/16 pixel
_SUBF = float(1 << _SUB)
_VAL_VIDEO_BASE = 500001


def _hsv(h: float, s: float, v: float) -> tuple[int, int, int]:
    """OpenCV HSV (h in degrees 0-360, s/v 0-255) -> RGB tuple of ints."""
    px = np.uint8([[[int(h / 2) % 180, int(np.clip(s, 0, 255)), int(np.clip(v, 0, 255))]]])
    r, g, b = cv2.cvtColor(px, cv2.COLOR_HSV2RGB)[0, 0]
    return int(r), int(g), int(b)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]) * _SUBF)), int(round(float(p[1]) * _SUBF))


@dataclass
class _Style:
    """Everything random about one person, fixed for the video."""
    height: float           # body height in pixels at frame 0
    grow: float             # relative size change per frame
    pos: np.ndarray         # pelvis position at frame 0
    vel: np.ndarray         # pixels per frame
    back: bool              # seen from the back
    freq: float             # walking cycles per frame
    phase: float
    arm_base: np.ndarray    # [left, right] upper-arm angle from "down", outward, degrees
    arm_amp: float
    elbow: np.ndarray       # [left, right] elbow bend (signed), degrees
    elbow_amp: float
    leg_base: np.ndarray
    leg_amp: float
    knee: np.ndarray
    knee_amp: float
    lean: float
    lean_amp: float
    head_tilt: float
    yaw: float              # nose shift in head radii (-0.4..0.4)
    colors: dict            # part -> RGB
    stripe: tuple[float, float, float]  # texture: angle, period, strength
    hand_r: float = 0.028   # hand disc radius in body heights (``limb_ends`` scales it)
    shoe_scale: float = 1.0  # shoe ellipse size factor (``limb_ends``)


def _sample_style(rng: np.random.Generator, size: tuple[int, int], cfg: dict) -> _Style:
    w, h = size
    hp = float(rng.uniform(*cfg["height"])) * h
    margin = 0.05 * hp
    lo_y, hi_y = 0.55 * hp - margin, h - 0.48 * hp + margin
    py = float(rng.uniform(min(lo_y, hi_y), max(lo_y, hi_y)))
    px = float(rng.uniform(0.12, 0.88)) * w
    vel = np.array([rng.uniform(-1, 1) * 0.012 * w, rng.uniform(-1, 1) * 0.002 * h])
    lh, rh = rng.uniform(185, 235), rng.uniform(0, 35)  # left: blue/cyan family, right: orange/red family
    skin = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)][rng.integers(5)]
    torso_h = float(rng.choice([rng.uniform(60, 160), rng.uniform(260, 330)]))  # greens/yellows or purples
    colors = {
        "left_upper": _hsv(lh, rng.uniform(170, 255), rng.uniform(190, 255)),
        "left_lower": _hsv(lh + rng.uniform(-10, 10), rng.uniform(170, 255), rng.uniform(120, 180)),
        "right_upper": _hsv(rh, rng.uniform(170, 255), rng.uniform(200, 255)),
        "right_lower": _hsv(rh + rng.uniform(-8, 8), rng.uniform(170, 255), rng.uniform(130, 190)),
        "torso": _hsv(torso_h, rng.uniform(60, 200), rng.uniform(90, 230)),
        "skin": skin,
        "hair": _hsv(rng.uniform(0, 40), rng.uniform(50, 200), rng.uniform(20, 90)),
        "shoe": _hsv(rng.uniform(0, 360), rng.uniform(0, 60), rng.uniform(20, 70)),
    }
    return _Style(
        height=hp, grow=float(rng.uniform(-0.006, 0.006)), pos=np.array([px, py]), vel=vel,
        back=bool(rng.random() < cfg["back_prob"]), freq=float(rng.uniform(0.04, 0.10)),
        phase=float(rng.uniform(0, 2 * np.pi)),
        arm_base=rng.uniform(8, 75, size=2), arm_amp=float(rng.uniform(15, 55)),
        elbow=rng.uniform(0, 70, size=2) * rng.choice([-1, 1], size=2), elbow_amp=float(rng.uniform(0, 35)),
        leg_base=rng.uniform(3, 20, size=2), leg_amp=float(rng.uniform(6, 24)),
        knee=rng.uniform(0, 35, size=2) * rng.choice([-1, 1], size=2), knee_amp=float(rng.uniform(0, 25)),
        lean=float(rng.uniform(-8, 8)), lean_amp=float(rng.uniform(0, 4)),
        head_tilt=float(rng.uniform(-12, 12)), yaw=float(rng.uniform(-0.4, 0.4)), colors=colors,
        stripe=(float(rng.uniform(0, np.pi)), float(rng.uniform(4, 12)), float(rng.uniform(0.05, 0.2))),
    )


class _Person:
    """An articulated 2-D person; :meth:`pose` gives joints and drawing geometry at frame t."""

    # body proportions in body heights
    TORSO, SHOULDER, HIP = 0.28, 0.11, 0.085
    UPPER_ARM, FOREARM, THIGH, SHIN = 0.16, 0.15, 0.24, 0.23
    HEAD_RX, HEAD_RY, NECK = 0.062, 0.078, 0.03

    def __init__(self, style: _Style) -> None:
        self.s = style

    def pose(self, t: int) -> dict:
        s = self.s
        hp = s.height * (1.0 + s.grow) ** t
        pelvis = s.pos + s.vel * t
        ph = 2 * np.pi * s.freq * t + s.phase
        sw = math.sin(ph)
        lean = math.radians(s.lean + s.lean_amp * math.sin(ph * 2))
        up = np.array([math.sin(lean), -math.cos(lean)])
        right = np.array([math.cos(lean), math.sin(lean)])
        down = -up
        side_l = -1.0 if s.back else 1.0      # image direction of the person's left side
        sides = (side_l, -side_l)

        def direction(angle_deg: float, side: float) -> np.ndarray:
            a = math.radians(angle_deg)
            return math.cos(a) * down + math.sin(a) * side * right

        j = np.zeros((NUM_JOINTS, 2))
        shoulder_c = pelvis + self.TORSO * hp * up
        for k, (sh, el, wr, hi, kn, an) in enumerate(((5, 7, 9, 11, 13, 15), (6, 8, 10, 12, 14, 16))):
            side = sides[k]
            swing = sw if k == 0 else -sw
            j[sh] = shoulder_c + side * self.SHOULDER * hp * right
            a_up = s.arm_base[k] + s.arm_amp * swing
            j[el] = j[sh] + self.UPPER_ARM * hp * direction(a_up, side)
            a_lo = a_up + s.elbow[k] + s.elbow_amp * swing
            j[wr] = j[el] + self.FOREARM * hp * direction(a_lo, side)
            j[hi] = pelvis + side * self.HIP * hp * right
            a_th = s.leg_base[k] + s.leg_amp * swing
            j[kn] = j[hi] + self.THIGH * hp * direction(a_th, side)
            a_sh = a_th + s.knee[k] + s.knee_amp * max(0.0, swing)
            j[an] = j[kn] + self.SHIN * hp * direction(a_sh, side)
        tilt = lean + math.radians(s.head_tilt * math.sin(ph * 0.5))
        hup = np.array([math.sin(tilt), -math.cos(tilt)])
        hright = np.array([math.cos(tilt), math.sin(tilt)])
        rx, ry = self.HEAD_RX * hp, self.HEAD_RY * hp
        chin = shoulder_c + self.NECK * hp * up
        head_c = chin + ry * hup
        j[1] = chin                                   # head_bottom
        j[2] = head_c + ry * hup                      # head_top
        yaw = 0.0 if s.back else s.yaw * math.cos(ph * 0.3)
        j[0] = head_c - 0.18 * ry * hup + yaw * rx * hright   # nose
        j[3] = head_c + side_l * 0.92 * rx * hright   # left ear
        j[4] = head_c - side_l * 0.92 * rx * hright   # right ear
        return dict(joints=j, hp=hp, head_c=head_c, rx=rx, ry=ry, tilt=tilt, hup=hup, hright=hright,
                    shoulder_c=shoulder_c, pelvis=pelvis, right=right, sides=sides)

    def draw(self, canvas: np.ndarray, mask: np.ndarray, p: dict) -> None:
        """Draw the person into ``canvas`` (RGB) and ``mask`` (255 where drawn)."""
        s, j, hp, c = self.s, p["joints"], p["hp"], self.s.colors

        def line(a, b, color, thick):
            th = max(1, int(round(thick * hp)))
            cv2.line(canvas, _pt(a), _pt(b), color, th, cv2.LINE_AA, _SUB)
            cv2.line(mask, _pt(a), _pt(b), 255, th, cv2.LINE_AA, _SUB)

        def disc(a, r, color):
            rr = max(1, int(round(r * _SUBF)))
            cv2.circle(canvas, _pt(a), rr, color, -1, cv2.LINE_AA, _SUB)
            cv2.circle(mask, _pt(a), rr, 255, -1, cv2.LINE_AA, _SUB)

        def ellipse(center, axes, angle_rad, color, target_mask=True):
            ax = (max(1, int(round(axes[0] * _SUBF))), max(1, int(round(axes[1] * _SUBF))))
            cv2.ellipse(canvas, _pt(center), ax, math.degrees(angle_rad), 0, 360, color, -1, cv2.LINE_AA, _SUB)
            if target_mask:
                cv2.ellipse(mask, _pt(center), ax, math.degrees(angle_rad), 0, 360, 255, -1, cv2.LINE_AA, _SUB)

        names = ("left", "right")
        # legs, then shoes
        for k, (hi, kn, an) in enumerate(((11, 13, 15), (12, 14, 16))):
            line(j[hi], j[kn], c[f"{names[k]}_upper"], 0.075)
            line(j[kn], j[an], c[f"{names[k]}_lower"], 0.06)
        for k, an in enumerate((15, 16)):
            toe = j[an] + p["sides"][k] * 0.04 * hp * p["right"] + 0.012 * hp * -p["right"] * 0
            ellipse((j[an] + toe) / 2 + 0.01 * hp * np.array([0, 1]),
                    (0.045 * s.shoe_scale * hp, 0.022 * s.shoe_scale * hp),
                    math.atan2(toe[1] - j[an][1], toe[0] - j[an][0]), c["shoe"])
        # torso polygon (shoulders to hips, a little wider than the joints)
        r = p["right"]
        sl, sr = j[5] + p["sides"][0] * 0.03 * hp * r, j[6] + p["sides"][1] * 0.03 * hp * r
        hl, hr = j[11] + p["sides"][0] * 0.02 * hp * r, j[12] + p["sides"][1] * 0.02 * hp * r
        poly = np.array([_pt(sl), _pt(sr), _pt(hr), _pt(hl)], np.int32)
        cv2.fillPoly(canvas, [poly], c["torso"], cv2.LINE_AA, _SUB)
        cv2.fillPoly(mask, [poly], 255, cv2.LINE_AA, _SUB)
        # neck, arms, hands
        line(p["shoulder_c"], j[1], c["skin"], 0.05)
        for k, (sh, el, wr) in enumerate(((5, 7, 9), (6, 8, 10))):
            line(j[sh], j[el], c[f"{names[k]}_upper"], 0.055)
            line(j[el], j[wr], c[f"{names[k]}_lower"], 0.045)
            disc(j[wr], s.hand_r * hp, c.get("hand", c["skin"]))
        # head: ears, face or hair
        hc, rx, ry, tilt = p["head_c"], p["rx"], p["ry"], p["tilt"]
        for e in (3, 4):
            disc(j[e], 0.018 * hp, c["skin"])
        if s.back:
            ellipse(hc, (rx, ry), tilt, c["hair"])
        else:
            ellipse(hc, (rx, ry), tilt, c["skin"])
            ellipse(hc + 0.55 * ry * p["hup"], (rx * 0.95, ry * 0.5), tilt, c["hair"], target_mask=False)
            eye_y = hc + 0.15 * ry * p["hup"]
            shift = (j[0] - hc) @ p["hright"]
            for sgn in (-1, 1):
                e = eye_y + (sgn * 0.42 * rx + shift * 0.8) * p["hright"]
                cv2.circle(canvas, _pt(e), max(1, int(round(0.12 * rx * _SUBF))), (25, 25, 25), -1, cv2.LINE_AA, _SUB)
            cv2.circle(canvas, _pt(j[0]), max(1, int(round(0.13 * rx * _SUBF))), (150, 60, 50), -1, cv2.LINE_AA, _SUB)
            mouth = hc - 0.55 * ry * p["hup"] + shift * 0.8 * p["hright"]
            cv2.ellipse(canvas, _pt(mouth), (int(0.3 * rx * _SUBF), int(0.08 * ry * _SUBF) + 1),
                        math.degrees(tilt), 0, 360, (120, 30, 30), -1, cv2.LINE_AA, _SUB)


def _background(rng: np.random.Generator, size: tuple[int, int], cfg: dict) -> np.ndarray:
    w, h = size
    c0 = np.array(_hsv(rng.uniform(0, 360), rng.uniform(0, 90), rng.uniform(60, 230)), np.float32)
    c1 = np.array(_hsv(rng.uniform(0, 360), rng.uniform(0, 90), rng.uniform(60, 230)), np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = (xx * math.cos(ang) / w + yy * math.sin(ang) / h)
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    img = (c0[None, None] * (1 - g[..., None]) + c1[None, None] * g[..., None])
    img = np.clip(img, 0, 255).astype(np.uint8)
    for _ in range(int(cfg["clutter"])):
        color = _hsv(rng.uniform(0, 360), rng.uniform(0, cfg["clutter_sat"]), rng.uniform(40, 240))
        kind = rng.integers(3)
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        if kind == 0:
            x1, y1 = x0 + int(rng.uniform(10, 0.35 * w)), y0 + int(rng.uniform(10, 0.35 * h))
            cv2.rectangle(img, (x0, y0), (x1, y1), color, -1)
        elif kind == 1:
            cv2.circle(img, (x0, y0), int(rng.uniform(5, 0.12 * min(w, h))), color, -1, cv2.LINE_AA)
        else:
            x1, y1 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
            cv2.line(img, (x0, y0), (x1, y1), color, int(rng.integers(1, 5)), cv2.LINE_AA)
    noise = rng.normal(0, 6, size=img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def _texture(canvas: np.ndarray, mask: np.ndarray, style: _Style, origin: np.ndarray,
             rng: np.random.Generator) -> None:
    """Stripes (moving with the person) and grain on the drawn pixels, in place."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return
    ang, period, strength = style.stripe
    u = (xs - origin[0]) * math.cos(ang) + (ys - origin[1]) * math.sin(ang)
    f = 1.0 + strength * np.sin(2 * np.pi * u / period) + rng.normal(0, 0.04, size=len(ys))
    canvas[ys, xs] = np.clip(canvas[ys, xs].astype(np.float32) * f[:, None], 0, 255).astype(np.uint8)


def _motion_blur(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(5, 10))
    k = np.zeros((n, n), np.float32)
    ang = rng.uniform(0, np.pi)
    c = (n - 1) / 2
    cv2.line(k, (int(round(c - c * math.cos(ang))), int(round(c - c * math.sin(ang)))),
             (int(round(c + c * math.cos(ang))), int(round(c + c * math.sin(ang)))), 1.0, 1)
    k /= k.sum()
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)


def _geometry_side_colours(style: _Style, xrng: np.random.Generator) -> None:
    """``side_cue="view"``: one random limb hue for both sides (left/right only from the view)."""
    hue = float(xrng.uniform(0, 360))
    up = _hsv(hue, xrng.uniform(150, 255), xrng.uniform(170, 255))
    lo = _hsv(hue + xrng.uniform(-10, 10), xrng.uniform(150, 255), xrng.uniform(110, 180))
    style.colors.update(left_upper=up, right_upper=up, left_lower=lo, right_lower=lo)


def _draw_distractors(img: np.ndarray, xrng: np.random.Generator, n: int, height: tuple[float, float],
                      hand_r: float = 0.028) -> None:
    """``n`` static limb-like sticks (upper + lower segment, a hand disc of ``hand_r`` body heights) into
    ``img``, in place."""
    h, w = img.shape[:2]
    skins = [(255, 219, 172), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36)]
    for _ in range(n):
        hp = float(xrng.uniform(*height)) * h
        a = np.array([xrng.uniform(0, w), xrng.uniform(0, h)])
        ang = xrng.uniform(0, 2 * np.pi)
        b = a + 0.16 * hp * np.array([math.cos(ang), math.sin(ang)])
        ang += math.radians(xrng.uniform(-70, 70))
        c = b + 0.15 * hp * np.array([math.cos(ang), math.sin(ang)])
        hue = float(xrng.uniform(0, 360))
        for p0, p1, th, v in ((a, b, 0.055, 220), (b, c, 0.045, 150)):
            cv2.line(img, _pt(p0), _pt(p1), _hsv(hue, xrng.uniform(150, 255), v), max(1, int(round(th * hp))),
                     cv2.LINE_AA, _SUB)
        cv2.circle(img, _pt(c), max(1, int(round(hand_r * hp * _SUBF))), skins[int(xrng.integers(5))], -1,
                   cv2.LINE_AA, _SUB)


def _occlude_joint(img: np.ndarray, xrng: np.random.Generator, joints: np.ndarray,
                   hp: float, radius: tuple[float, float] = (0.07, 0.11)) -> tuple[int, int, int, int] | None:
    """Paste a textured patch over one limb joint (elbow, wrist, knee or ankle), in place; return the
    patch ``(x0, y0, x1, y1)`` (pixels, end exclusive), or None when it fell outside the image."""
    h, w = img.shape[:2]
    q = int(xrng.choice([7, 8, 9, 10, 13, 14, 15, 16]))
    cx, cy = joints[q] + xrng.normal(0, 0.02 * hp, 2)
    r = float(xrng.uniform(*radius)) * hp
    x0, x1 = int(max(0, cx - r)), int(min(w, cx + r + 1))
    y0, y1 = int(max(0, cy - r)), int(min(h, cy + r + 1))
    if x1 <= x0 or y1 <= y0:
        return None
    color = np.array(_hsv(xrng.uniform(0, 360), xrng.uniform(0, 120), xrng.uniform(50, 210)), np.float32)
    patch = color[None, None] * (1.0 + 0.1 * np.sin(np.arange(x1 - x0) / 2.0))[None, :, None]
    img[y0:y1, x0:x1] = np.clip(patch + xrng.normal(0, 6, (y1 - y0, x1 - x0, 3)), 0, 255).astype(np.uint8)
    return x0, y0, x1, y1


def _large_limb_ends(style: _Style, xrng: np.random.Generator, scale: float) -> None:
    """``limb_ends=scale``: hands and shoes ``scale`` times larger, in a saturated glove / shoe colour of
    their own (hue away from the limb colour), so wrists and ankles are visible at small crop sizes."""
    style.hand_r *= scale
    style.shoe_scale *= scale
    hue = float(xrng.uniform(0, 360))
    style.colors["hand"] = _hsv(hue, xrng.uniform(200, 255), xrng.uniform(200, 255))
    style.colors["shoe"] = _hsv(hue + 180.0, xrng.uniform(200, 255), xrng.uniform(60, 120))


def _strong_blur(img: np.ndarray, xrng: np.random.Generator) -> np.ndarray:
    n = int(xrng.integers(11, 18))
    k = np.zeros((n, n), np.float32)
    ang = xrng.uniform(0, np.pi)
    c = (n - 1) / 2
    cv2.line(k, (int(round(c - c * math.cos(ang))), int(round(c - c * math.sin(ang)))),
             (int(round(c + c * math.cos(ang))), int(round(c + c * math.sin(ang)))), 1.0, 1)
    k /= k.sum()
    return cv2.filter2D(img, -1, k, borderType=cv2.BORDER_REFLECT)


def _categories() -> list[dict]:
    return [{"supercategory": "person", "id": 1, "name": "person", "keypoints": list(JOINT_NAMES),
             "skeleton": [[a + 1, b + 1] for a, b in SKELETON]}]


def _render_video(rng: np.random.Generator, vid_num: int, split: str, n_frames: int, size: tuple[int, int],
                  people: tuple[int, int], cfg: dict, out_dir: Path, jpeg_quality: int,
                  bar: tqdm | None, draw_people: bool = True, xrng: np.random.Generator | None = None,
                  extra: dict | None = None, prng: np.random.Generator | None = None) -> dict:
    """One video; ``rng``: the default stream, ``xrng``: the ablation options' stream, ``prng``: the
    ``person_occlusion`` stream (its own, so that turning it on leaves every other draw alone)."""
    w, h = size
    vid = f"{vid_num:06d}"
    extra = extra or {}
    bg = _background(rng, size, cfg)
    n_people = int(rng.integers(people[0], people[1] + 1))
    persons = [_Person(_sample_style(rng, size, cfg)) for _ in range(n_people)]
    limb_ends = float(extra.get("limb_ends", 1.0))
    if xrng is not None:
        if extra.get("distractors", 0):
            _draw_distractors(bg, xrng, int(extra["distractors"]), cfg["height"], 0.028 * limb_ends)
        if extra.get("side_cue", "colour") == "view":
            for person in persons:
                _geometry_side_colours(person.s, xrng)
        if limb_ends != 1.0:
            for person in persons:
                _large_limb_ends(person.s, xrng, limb_ends)
    record = bool(extra.get("key_occlusion") or extra.get("key_blur") or extra.get("person_occlusion"))
    last_hit = -2   # last frame with a key-frame-only occlusion / blur (never two in a row)
    last_person_hit = [-2] * n_people   # per person: last frame with a person occlusion
    order = sorted(range(n_people), key=lambda k: persons[k].s.height)   # small (far) people first
    occluder = None
    if rng.random() < cfg["occluder_prob"]:
        vertical = rng.random() < 0.7
        thick = rng.uniform(0.05, 0.12) * (w if vertical else h)
        occluder = dict(vertical=vertical, thick=thick, pos=rng.uniform(0.2, 0.8) * (w if vertical else h),
                        vel=rng.uniform(-1.5, 1.5), color=_hsv(rng.uniform(0, 360), rng.uniform(0, 120),
                                                              rng.uniform(40, 200)),
                        extent=(rng.uniform(0, 0.3), rng.uniform(0.7, 1.0)))
    images, annotations = [], []
    for t in range(n_frames):
        frame_id = 10000000000 + vid_num * 10000 + t
        file_name = f"images/{split}/{vid}/{t:06d}.jpg"
        img = bg.copy()
        rank = np.full((h, w), -1, np.int16)
        poses = {}
        for r_idx, k in enumerate(order):
            p = persons[k].pose(t)
            poses[k] = (r_idx, p)
            canvas = np.zeros_like(img)
            mask = np.zeros((h, w), np.uint8)
            persons[k].draw(canvas, mask, p)
            _texture(canvas, mask, persons[k].s, p["pelvis"], rng)
            m = mask > 127
            if draw_people:
                img[m] = canvas[m]
            rank[m] = r_idx
        if occluder is not None:
            pos = occluder["pos"] + occluder["vel"] * t
            a, b = occluder["extent"]
            if occluder["vertical"]:
                x0, x1 = int(round(pos - occluder["thick"] / 2)), int(round(pos + occluder["thick"] / 2))
                y0, y1 = int(a * h), int(b * h)
            else:
                y0, y1 = int(round(pos - occluder["thick"] / 2)), int(round(pos + occluder["thick"] / 2))
                x0, x1 = int(a * w), int(b * w)
            x0, x1, y0, y1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
            if x1 > x0 and y1 > y0:
                patch = np.empty((y1 - y0, x1 - x0, 3), np.float32)
                patch[:] = occluder["color"]
                yy = np.arange(y0, y1)[:, None]
                patch *= (1.0 + 0.12 * np.sin(yy / 3.0))[..., None]
                img[y0:y1, x0:x1] = np.clip(patch + rng.normal(0, 5, patch.shape), 0, 255).astype(np.uint8)
                rank[y0:y1, x0:x1] = n_people
        patches: list[tuple[int, int, int, int]] = []
        blurred = False
        if prng is not None:
            for k in range(n_people):
                if t - last_person_hit[k] > 1 and prng.random() < extra["person_occlusion"]:
                    rect = _occlude_joint(img, prng, poses[k][1]["joints"], poses[k][1]["hp"], (0.10, 0.15))
                    if rect is not None:
                        patches.append(rect)
                        last_person_hit[k] = t
        if xrng is not None and t - last_hit > 1:
            hit = False
            if extra.get("key_occlusion", 0.0) and xrng.random() < extra["key_occlusion"]:
                k = int(xrng.integers(n_people))
                rect = _occlude_joint(img, xrng, poses[k][1]["joints"], poses[k][1]["hp"])
                if rect is not None:
                    patches.append(rect)
                hit = True
            if extra.get("key_blur", 0.0) and xrng.random() < extra["key_blur"]:
                img = _strong_blur(img, xrng)
                hit = blurred = True
            if hit:
                last_hit = t
        if rng.random() < cfg["blur_prob"]:
            img = _motion_blur(img, rng)
        img = np.clip(img.astype(np.int16) + rng.integers(-3, 4, size=img.shape), 0, 255).astype(np.uint8)

        for k in range(n_people):
            r_idx, p = poses[k]
            j = p["joints"]
            kp = np.zeros((NUM_JOINTS, 3))
            for q in range(NUM_JOINTS):
                xi, yi = int(round(j[q, 0])), int(round(j[q, 1]))
                if not (0 <= xi < w and 0 <= yi < h):
                    continue
                if rank[yi, xi] > r_idx:
                    continue
                if q == 0 and persons[k].s.back:
                    continue
                kp[q] = (j[q, 0], j[q, 1], 1)
            vis = kp[:, 2] > 0
            if not vis.any():
                continue
            lo, hi = kp[vis, :2].min(0), kp[vis, :2].max(0)
            m = np.maximum(0.12 * (hi - lo), 0.04 * p["hp"])
            lo, hi = np.maximum(lo - m, 0), np.minimum(hi + m, [w, h])
            hc, rx, ry = p["head_c"], p["rx"], p["ry"]
            head = [hc[0] - rx, hc[1] - ry, 2 * rx, 2 * ry]
            ann_extra = {}
            if record:   # which labelled joints a one-frame perturbation touched (labels stay v = 1)
                occluded = [q for q in range(NUM_JOINTS) if kp[q, 2] > 0 and any(
                    x0 <= int(round(j[q, 0])) < x1 and y0 <= int(round(j[q, 1])) < y1 for x0, y0, x1, y1 in patches)]
                ann_extra = {"perturbation": {"occluded": occluded, "blurred": blurred}}
            annotations.append({
                **ann_extra,
                "bbox_head": [round(float(v), 2) for v in head],
                "keypoints": [round(float(v), 3) for v in kp.reshape(-1)],
                "track_id": int(k), "image_id": frame_id,
                "bbox": [round(float(lo[0]), 2), round(float(lo[1]), 2),
                         round(float(hi[0] - lo[0]), 2), round(float(hi[1] - lo[1]), 2)],
                "scores": [], "category_id": 1, "id": frame_id * 100 + k, "iscrowd": False,
                "num_keypoints": int(vis.sum()),
            })
        images.append({"has_no_densepose": True, "is_labeled": True, "file_name": file_name, "nframes": n_frames,
                       "frame_id": frame_id, "vid_id": vid, "id": frame_id, "width": w, "height": h,
                       "ignore_regions_x": [], "ignore_regions_y": []})
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise RuntimeError(f"could not encode {file_name}")
        atomic_write(out_dir / file_name, lambda tmp, data=buf.tobytes(): Path(tmp).write_bytes(data))
        if bar is not None:
            bar.update(1)
    return {"categories": _categories(), "images": images, "annotations": annotations}


def generate_synthetic_posetrack(out_dir: str | Path, n_videos: int = 4, n_frames: int = 12, seed: int = 0,
                                 size: tuple[int, int] = (384, 288), people_per_frame: tuple[int, int] = (1, 3),
                                 n_val_videos: int = 2, difficulty: str = "medium", jpeg_quality: int = 92,
                                 progress: bool = True, draw_people: bool = True,
                                 height: Sequence[float] | None = None, side_cue: str = "colour",
                                 key_occlusion: float = 0.0, key_blur: float = 0.0,
                                 distractors: int = 0, person_occlusion: float = 0.0,
                                 limb_ends: float = 1.0) -> dict[str, Path]:
    """Render a synthetic PoseTrack-format set (see the module docstring for the layout and labels).

    Args:
        out_dir: root folder (the ``image_root`` of the set).
        n_videos, n_val_videos: number of train / val videos (0 val videos: train only).
        n_frames: frames per video.
        seed: random seed; the same seed gives byte-identical jsons and jpgs.
        size: frame ``(W, H)`` in pixels.
        people_per_frame: inclusive range of the number of people per video.
        difficulty: ``"easy"`` (large people, no occluder/blur), ``"medium"`` or ``"hard"``
            (see :data:`DIFFICULTIES`).
        jpeg_quality: quality of the written jpgs.
        progress: show a tqdm bar.
        draw_people: False renders the very same videos (same random stream, same labels) without
            compositing the people: the bare backgrounds and occluders, for checks.
        height, side_cue, key_occlusion, key_blur, distractors, person_occlusion, limb_ends: the
            ablation-benchmark options
            (module docstring; :data:`ABLATION_BENCHMARK`); the defaults leave the output unchanged.
    Returns:
        ``{"train": <out_dir>/annotations/train.json, "val": .../val.json}`` (the merged jsons;
        the per-video jsons sit in ``annotations/<split>/``).
    """
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    if n_videos < 1 or n_frames < 1 or n_val_videos < 0:
        raise ValueError(f"need n_videos >= 1, n_frames >= 1, n_val_videos >= 0 "
                         f"(got {n_videos}, {n_frames}, {n_val_videos})")
    lo, hi = int(people_per_frame[0]), int(people_per_frame[1])
    if not 1 <= lo <= hi:
        raise ValueError(f"people_per_frame must be (min, max) with 1 <= min <= max, got {people_per_frame}")
    w, h = int(size[0]), int(size[1])
    if w < 32 or h < 32:
        raise ValueError(f"size (W, H) must be at least 32 x 32, got {size}")
    if side_cue not in SIDE_CUES:
        raise ValueError(f"side_cue must be one of {SIDE_CUES}, got {side_cue!r}")
    if not (0.0 <= key_occlusion <= 1.0 and 0.0 <= key_blur <= 1.0 and 0.0 <= person_occlusion <= 1.0) \
            or distractors < 0:
        raise ValueError(f"need 0 <= key_occlusion, key_blur, person_occlusion <= 1 and distractors >= 0 "
                         f"(got {key_occlusion}, {key_blur}, {person_occlusion}, {distractors})")
    if not 1.0 <= limb_ends <= 4.0:
        raise ValueError(f"limb_ends must be a size factor in [1, 4], got {limb_ends}")
    out_dir = Path(out_dir)
    cfg = dict(DIFFICULTIES[difficulty])
    if height is not None:
        lo_h, hi_h = float(height[0]), float(height[1])
        if not 0.0 < lo_h <= hi_h <= 1.5:
            raise ValueError(f"height must be (min, max) fractions of the frame height, got {height}")
        cfg["height"] = (lo_h, hi_h)
    extra = dict(side_cue=side_cue, key_occlusion=float(key_occlusion), key_blur=float(key_blur),
                 distractors=int(distractors), person_occlusion=float(person_occlusion), limb_ends=float(limb_ends))
    use_extra = side_cue != "colour" or key_occlusion > 0 or key_blur > 0 or distractors > 0 or limb_ends != 1.0
    make_dirs(out_dir)  # a folder that cannot be created: one line, before anything is rendered
    splits = [("train", 0, n_videos, 1)] + ([("val", 1, n_val_videos, _VAL_VIDEO_BASE)] if n_val_videos else [])
    total = sum(n for _, _, n, _ in splits) * n_frames
    result: dict[str, Path] = {}
    with tqdm(total=total, desc="synth frames", disable=None if progress else True, leave=False) as bar:
        for split, code, n, base in splits:
            merged = {"categories": _categories(), "images": [], "annotations": []}
            for v in range(n):
                rng = np.random.default_rng(np.random.SeedSequence([int(seed), code, v]))
                xrng = np.random.default_rng(np.random.SeedSequence([int(seed), code, v, 1])) if use_extra else None
                prng = (np.random.default_rng(np.random.SeedSequence([int(seed), code, v, 2]))
                        if person_occlusion > 0 else None)
                data = _render_video(rng, base + v, split, n_frames, (w, h), (lo, hi), cfg, out_dir,
                                     jpeg_quality, bar, draw_people, xrng=xrng, extra=extra, prng=prng)
                write_json(out_dir / "annotations" / split / f"{base + v:06d}.json", data)
                merged["images"] += data["images"]
                merged["annotations"] += data["annotations"]
            result[split] = write_json(out_dir / "annotations" / f"{split}.json", merged)
    return result


def perturbation_shares(ann: str | Path | dict) -> dict:
    """What the one-frame perturbations touch in a split, as shares of its *scored* set.

    ``ann``: a merged split json (or its loaded dict). Scored = the labelled (``v = 1``) evaluated
    joints (:data:`ftp_pose.keypoints.EVAL_JOINTS`) and the person instances with at least one.
    Returns ``{"persons", "joints", "persons_occluded", "persons_blurred", "persons_touched",
    "joints_occluded", "joints_blurred"}`` (counts, then shares in [0, 1]); annotations without a
    ``perturbation`` record count as untouched.
    """
    doc = json.loads(Path(ann).read_text()) if not isinstance(ann, dict) else ann
    ev = set(EVAL_JOINTS)
    persons = joints = p_occ = p_blur = p_any = j_occ = j_blur = 0
    for a in doc["annotations"]:
        kp = np.asarray(a["keypoints"], float).reshape(NUM_JOINTS, 3)
        scored = [q for q in EVAL_JOINTS if kp[q, 2] > 0]
        if not scored:
            continue
        rec = a.get("perturbation", {})
        occ = [q for q in rec.get("occluded", []) if q in ev and kp[q, 2] > 0]
        blur = bool(rec.get("blurred", False))
        persons += 1
        joints += len(scored)
        p_occ += bool(occ)
        p_blur += blur
        p_any += bool(occ) or blur
        j_occ += len(occ)
        j_blur += len(scored) if blur else 0
    div = lambda n, d: round(n / d, 4) if d else 0.0  # noqa: E731
    return {"persons": persons, "joints": joints, "persons_occluded": div(p_occ, persons),
            "persons_blurred": div(p_blur, persons), "persons_touched": div(p_any, persons),
            "joints_occluded": div(j_occ, joints), "joints_blurred": div(j_blur, joints)}


# ----------------------------------------------------------------------------------------------
# CLI: python -m ftp_pose synth
# ----------------------------------------------------------------------------------------------
def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 384x288 (W x H), got {text!r}") from None


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("data/synth"), help="output root (default data/synth)")
    parser.add_argument("--videos", type=int, default=4, help="train videos (default 4)")
    parser.add_argument("--val-videos", type=int, default=2, help="val videos (default 2)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=_parse_size, default=(384, 288), help="frame W x H (default 384x288)")
    parser.add_argument("--people", type=int, nargs=2, default=(1, 3), metavar=("MIN", "MAX"),
                        help="people per video (default 1 3)")
    parser.add_argument("--difficulty", choices=sorted(DIFFICULTIES), default="medium")
    parser.add_argument("--side-cue", choices=SIDE_CUES, default="colour",
                        help="colour: left blue / right orange (default); view: same colour, side from the view")
    parser.add_argument("--key-occlusion", type=float, default=0.0,
                        help="per-frame chance of a one-frame patch over a limb joint (label kept)")
    parser.add_argument("--key-blur", type=float, default=0.0, help="per-frame chance of a one-frame strong blur")
    parser.add_argument("--distractors", type=int, default=0, help="limb-like clutter sticks per video")
    parser.add_argument("--person-occlusion", type=float, default=0.0,
                        help="per-person, per-frame chance of a one-frame patch over a limb joint (label kept)")
    parser.add_argument("--limb-ends", type=float, default=1.0, help="hand / shoe size factor (own colour when > 1)")
    parser.add_argument("--height", type=float, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="person height range as fractions of the frame height")


def run_cli(args: argparse.Namespace) -> int:
    paths = generate_synthetic_posetrack(args.out, n_videos=args.videos, n_frames=args.frames, seed=args.seed,
                                         size=args.size, people_per_frame=tuple(args.people),
                                         n_val_videos=args.val_videos, difficulty=args.difficulty,
                                         height=args.height, side_cue=args.side_cue,
                                         key_occlusion=args.key_occlusion, key_blur=args.key_blur,
                                         distractors=args.distractors, person_occlusion=args.person_occlusion,
                                         limb_ends=args.limb_ends)
    print(f"wrote {args.videos} train + {args.val_videos} val videos x {args.frames} frames under {args.out}")
    for split, p in paths.items():
        print(f"  {split}: {p}  (per-video jsons in {p.parent / split})")
    return 0
