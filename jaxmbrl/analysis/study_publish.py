"""Copies a finished study's light products into a directory meant for the repository
(issue 19: `results/study-cpu/`, the findings of Zhang et al., AISTATS 2021, on a CPU).

The study directory holds everything a resume needs (checkpoints, schedules' arrays); the
published copy keeps what a reader opens on GitHub: report.md, study.json, manifest.json,
the PNGs and GIFs, and each run's config.json, summary.json and members.jsonl (the report
links them), with the same relative paths so that report.md's links still resolve.
"""

from __future__ import annotations

import os
import shutil

KEEP = (".md", ".json", ".jsonl", ".png", ".gif")
SKIP_DIRS = ("checkpoints",)


def publish(study_dir: str, dest: str) -> dict[str, int]:
    """Copies the files of `study_dir` ending in KEEP (outside SKIP_DIRS) to `dest`.

    Files in `dest` that the study no longer has are removed (a rerun into the same
    `dest` leaves no stale GIF behind), and folders left empty by that; other files there are
    left alone.

    Returns:
      dict(files=copied files, bytes=their total size).

    Raises:
      ValueError: `study_dir` holds no report.md, or `dest` lies inside `study_dir`.
    """
    src, dst = os.path.abspath(study_dir), os.path.abspath(dest)
    if not os.path.isfile(os.path.join(src, "report.md")):
        raise ValueError(f"{study_dir} holds no report.md: run the study first")
    if os.path.commonpath([src, dst]) == src:
        raise ValueError(f"publish directory {dest} lies inside the study's {study_dir}")
    wanted = set()
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in files:
            if name.endswith(KEEP):
                wanted.add(os.path.relpath(os.path.join(root, name), src))
    if os.path.isdir(dst):
        # Bottom-up, so a folder that only held stale files (an env dropped) goes too.
        for root, _, files in os.walk(dst, topdown=False):
            for name in files:
                rel = os.path.relpath(os.path.join(root, name), dst)
                if name.endswith(KEEP) and rel not in wanted:
                    os.remove(os.path.join(root, name))
            if root != dst and not os.listdir(root):
                os.rmdir(root)
    total = 0
    for rel in sorted(wanted):
        os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
        shutil.copyfile(os.path.join(src, rel), os.path.join(dst, rel))
        total += os.path.getsize(os.path.join(dst, rel))
    return dict(files=len(wanted), bytes=total)
