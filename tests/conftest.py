from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import SEASON_SETS, SHARED, SHARED_VIDEOS, copy_workdir, snakemake, write_config


def pytest_configure(config):
    if not SHARED_VIDEOS.is_dir():
        raise pytest.UsageError(f"{SHARED_VIDEOS}: shared test media not found; set FACEPIPE_SHARED_DATA")


@pytest.fixture(scope="session")
def built_run(tmp_path_factory) -> Path:
    """One full `snakemake cluster_target` on the shared videos, built once per test session."""
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

    work = tmp_path_factory.mktemp("seasons")
    labels = {}
    for season, photos in SEASON_SETS.items():
        _videos, labels[season] = make_season(SHARED / "faces" / photos, work / "videos", season.split("_")[0])
        (work / f"{season}.labels.json").write_text(json.dumps(labels[season]))
    write_config(work, "videos")  # relative to the workdir: a copy of the run has its own folder
    snakemake(work, "season_target")
    return work, labels
