"""Season: the clusters of a season's episodes linked into cast members (cast.json), with their
screen time per episode (screen_time.csv, screen_time.png) and their faces (cast.jpg).

Public API: load_episode, build_cast, cast_summary, SEASON_THRESHOLDS (cast.py); link (linking.py);
write_csv, write_chart, write_cast_sheet, seconds_table (report.py).
"""

from .cast import SEASON_THRESHOLDS, EpisodeClusters, build_cast, cast_summary, load_episode
from .linking import link
from .report import seconds_table, write_cast_sheet, write_chart, write_csv

__all__ = ["SEASON_THRESHOLDS", "EpisodeClusters", "build_cast", "cast_summary", "load_episode", "link",
           "seconds_table", "write_cast_sheet", "write_chart", "write_csv"]
