# Season: every episode's clusters linked across the season's episodes into cast members.
rule season:
    input:
        unpack(season_inputs),
        references=reference_photo_files,
        corrections=season_corrections,
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
        corrections=lambda wildcards: corrections_digest(season_corrections(wildcards)),
    script:
        "../../scripts/season.py"
