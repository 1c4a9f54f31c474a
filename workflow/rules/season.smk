# Season: every episode's clusters linked across the season's episodes into cast members.
from facepipe.base.seasons import group as group_seasons

try:
    SEASONS = group_seasons(EPISODES, config["season"])
except FacepipeError as err:
    raise WorkflowError(str(err))


wildcard_constraints:
    season="[A-Za-z0-9_-]+",


def season_out(pattern, **names):
    return str(DATA_ROOT / pattern.format(season="{season}", **names))


def season_episodes(season):
    if season not in SEASONS:
        raise WorkflowError(f"no season {season!r}: the seasons here are {', '.join(SEASONS) or 'none'} "
                            "(season.pattern, season.episodes)")
    return SEASONS[season]


def season_inputs(wildcards):
    """Each episode's clusters, embeddings, tracks and stills: a new or rebuilt episode reruns the season."""
    eps = season_episodes(wildcards.season)
    return {name: [str(DATA_ROOT / pattern.format(ep=ep)) for ep in eps]
            for name, pattern in (("clusters", layout.CLUSTERS), ("embeddings", layout.EMBEDDINGS),
                                  ("tracks", layout.TRACKS), ("stills", layout.STILLS_DIR))}


rule season:
    input:
        unpack(season_inputs),
        references=reference_photo_files,
    output:
        cast=season_out(layout.CAST),
        csv=season_out(layout.SCREEN_TIME_CSV),
        chart=report(season_out(layout.SCREEN_TIME_CHART), caption="../report/screen_time.rst",
                     category="Season", subcategory="{season}"),
        sheet=report(season_out(layout.CAST_SHEET), caption="../report/cast_sheet.rst",
                     category="Season", subcategory="{season}"),
    log:
        season_out(layout.SEASON_LOG, job="season"),
    benchmark:
        season_out(layout.SEASON_BENCHMARK, job="season")
    params:
        season=config["season"],
        episodes=lambda wildcards: season_episodes(wildcards.season),
        # naming the cast as clusters are named: the same references, thresholds, embedder and crop
        cluster=config["cluster"],
        embed=config["embed"],
        margin=config["stills"]["margin"],
    script:
        "../../scripts/season.py"
