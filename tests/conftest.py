"""The shared fixtures, and what happens without the shared test media (../shared/data, or
$FACEPIPE_SHARED_DATA).

Without them, the pure unit tests still run, and a test that needs them is skipped naming
FACEPIPE_SHARED_DATA: one marked `media`, one using a fixture that calls `helpers.need_media()`
(every fixture here that builds from the media does), or one calling a helper that reads them
(`videos_with`, `truncated_copy`). In CI (CI=true) missing media are an error that stops the whole
session at once: CI never passes by skipping the real tests.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from helpers import MEDIA_MISSING, SEASON_SETS, SHARED, SHARED_VIDEOS, copy_workdir, need_media, snakemake, write_config


def pytest_configure(config):
    if MEDIA_MISSING and os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise pytest.UsageError(f"{MEDIA_MISSING}; CI runs every test, so it refuses to start without them")


def pytest_collection_modifyitems(config, items):
    if MEDIA_MISSING:
        for item in items:
            if item.get_closest_marker("media"):
                item.add_marker(pytest.mark.skip(reason=MEDIA_MISSING), append=False)


@pytest.fixture(scope="session")
def built_run(tmp_path_factory) -> Path:
    """One full `snakemake cluster_target` on the shared videos, built once per test session."""
    need_media()
    workdir = tmp_path_factory.mktemp("built")
    write_config(workdir, SHARED_VIDEOS)
    proc = snakemake(workdir, "cluster_target")
    (workdir / "first-run.log").write_text(proc.stdout + proc.stderr)
    return workdir


@pytest.fixture
def run_copy(built_run, tmp_path) -> Path:
    """A private copy of the built run, for tests that change outputs or config."""
    return copy_workdir(built_run, tmp_path / "run")


def _slideshow(tmp_path_factory, photos: str) -> tuple[Path, Path]:
    """A shared photo set as a test episode `<photos>.mp4`: (videos folder, labels file)."""
    need_media()
    from facepipe.tools.slideshow import make_slideshow

    videos = tmp_path_factory.mktemp(f"{photos}-videos")
    labels = make_slideshow(SHARED / "faces" / photos, videos / f"{photos}.mp4")
    moved = labels.parent.parent / labels.name
    shutil.move(labels, moved)  # keep the videos folder to videos only
    return videos, moved


@pytest.fixture(scope="session")
def lfw_slideshow(tmp_path_factory) -> tuple[Path, Path]:
    """The lfw10 photos (10 people x 10) as a test episode: (videos folder, labels file)."""
    return _slideshow(tmp_path_factory, "lfw10")


@pytest.fixture(scope="session")
def johns_slideshow(tmp_path_factory) -> tuple[Path, Path]:
    """The johns face chips (5 people x 11) as a test episode: (videos folder, labels file)."""
    return _slideshow(tmp_path_factory, "johns")


@pytest.fixture(scope="session")
def slideshow_run(lfw_slideshow, johns_slideshow, tmp_path_factory) -> Path:
    """Both slideshows built in one default `snakemake cluster_target` (the workdir, whose
    `videos` folder links them), once per test session."""
    work = tmp_path_factory.mktemp("slideshows")
    videos = work / "videos"
    videos.mkdir()
    for folder, _labels in (lfw_slideshow, johns_slideshow):
        for video in folder.iterdir():
            (videos / video.name).symlink_to(video)
    write_config(work, videos)
    snakemake(work, "cluster_target")
    return work


@pytest.fixture(scope="session")
def season_run(tmp_path_factory):
    """Two seasons of three slideshow episodes each (lfw10 and johns photos, overlapping casts,
    different photos per episode), built with `snakemake season_target`: (workdir, labels)."""
    import json

    from facepipe.tools.slideshow import make_season

    need_media()
    work = tmp_path_factory.mktemp("seasons")
    labels = {}
    for season, photos in SEASON_SETS.items():
        _videos, labels[season] = make_season(SHARED / "faces" / photos, work / "videos", season.split("_")[0])
        (work / f"{season}.labels.json").write_text(json.dumps(labels[season]))
    write_config(work, "videos")  # relative to the workdir: a copy of the run has its own folder
    snakemake(work, "season_target")
    return work, labels
