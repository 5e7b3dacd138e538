"""Reader for the v4s.dataset.v1 format written by `v4s dataset` (src/sim-adapters/builtin/dataset.ts).

Files: index.json, frames.u8 [N,H,W,3], masks.u8 [N,H,W] (category id, 0 none),
actions.u8 [N] (action that led to the frame, 0 = episode start), poses.f32 [N,3] (x, z, yaw).
"""
import json
import os

import numpy as np


class Dataset:
    def __init__(self, root):
        self.root = root
        path = os.path.join(root, "index.json")
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path}: no index.json (was `v4s dataset` run to completion?)")
        with open(path) as f:
            self.index = json.load(f)
        if self.index.get("format") != "v4s.dataset.v1":
            raise ValueError(f"{path}: format {self.index.get('format')!r}, expected 'v4s.dataset.v1'")
        n = self.index["totalFrames"]
        h, w = self.index["height"], self.index["width"]
        self.frames = np.memmap(os.path.join(root, "frames.u8"), dtype=np.uint8, mode="r", shape=(n, h, w, 3))
        self.masks = np.memmap(os.path.join(root, "masks.u8"), dtype=np.uint8, mode="r", shape=(n, h, w))
        self.actions = np.fromfile(os.path.join(root, "actions.u8"), dtype=np.uint8)
        self.poses = np.fromfile(os.path.join(root, "poses.f32"), dtype="<f4").reshape(n, 3)
        self.episodes = [(e["start"], e["length"], e["seed"]) for e in self.index["episodes"]]
        self.categories = self.index["categories"]
        self.n = n

    def load_all(self):
        """Frames and masks into memory (the train split fits: ~12 KB a frame)."""
        self.frames = np.ascontiguousarray(self.frames)
        self.masks = np.ascontiguousarray(self.masks)
        return self


def sample_context_offsets(rng, newest, k, max_offset):
    """Choose k-1 older context frames before `newest` (absolute indices within an episode).

    Mirrors the ContextBuffer's policies, so training sees the same non-contiguous layouts as inference:
    recent-exponential (1,2,4,8,… with jitter), uniform over history, and contiguous.
    Returns a sorted array of k absolute indices ending with `newest`.
    """
    lo = max(0, newest - max_offset)
    avail = newest - lo  # frames strictly older than newest within range
    need = min(k - 1, avail)
    if need <= 0:
        return np.array([newest])
    mode = rng.random()
    if mode < 0.4:
        offs = set()
        e = 1
        while len(offs) < need and e <= avail:
            j = int(e * (1.0 + 0.5 * rng.random()))
            j = min(max(j, 1), avail)
            offs.add(j)
            e *= 2
        while len(offs) < need:
            offs.add(int(rng.integers(1, avail + 1)))
        older = newest - np.array(sorted(offs))
    elif mode < 0.85:
        older = lo + rng.choice(avail, size=need, replace=False)
    else:
        older = np.arange(newest - need, newest)
    idx = np.sort(np.concatenate([older, [newest]]))
    return idx


class ClipSampler:
    """Samples training clips: K context frames (non-contiguous, true offsets) + H consecutive targets."""

    def __init__(self, ds, horizon, max_offset, seed=0):
        self.ds = ds
        self.h = horizon
        self.max_offset = max_offset
        self.rng = np.random.default_rng(seed)
        # episodes long enough for a clip
        self.eps = [(s, l) for (s, l, _) in ds.episodes if l >= horizon + 2]
        self.num_cats = len(ds.categories)

    def batch(self, b, k):
        """Returns absolute dataset indices of context [b,k] and targets [b,h], context offsets [b,k],
        target actions [b,h], goal category [b] and the targets' category masks [b,h,H,W]."""
        ds, h, rng = self.ds, self.h, self.rng
        ctx_idx = np.zeros((b, k), np.int64)
        tgt_idx = np.zeros((b, h), np.int64)
        cpos = np.zeros((b, k), np.float32)
        goal = np.zeros((b,), np.int64)
        for i in range(b):
            s, l = self.eps[rng.integers(len(self.eps))]
            t0 = int(rng.integers(1, l - h + 1))  # first target frame index within the episode
            newest = t0 - 1
            idx = sample_context_offsets(rng, newest, k, self.max_offset)
            # fewer frames than k early in an episode: repeat the oldest (its true position is kept)
            if len(idx) < k:
                idx = np.concatenate([np.full(k - len(idx), idx[0]), idx])
            ctx_idx[i] = s + idx
            cpos[i] = (idx - newest).astype(np.float32)
            tgt_idx[i] = s + t0 + np.arange(h)
        tmask = ds.masks[tgt_idx.reshape(-1)].reshape(b, h, *ds.masks.shape[1:])
        acts = ds.actions[tgt_idx].astype(np.int64)
        for i in range(b):
            # goal category: usually one visible in the targets, else a random one (learns "absent")
            present = np.unique(tmask[i])
            present = present[present > 0]
            if rng.random() < 0.1:
                goal[i] = 0  # no goal: the runtime sends 0 for candidates without a goal category
            elif len(present) > 0 and rng.random() < 0.75:
                goal[i] = int(rng.choice(present))
            else:
                goal[i] = int(rng.integers(1, self.num_cats + 1))
        return ctx_idx, tgt_idx, cpos, acts, goal, tmask
