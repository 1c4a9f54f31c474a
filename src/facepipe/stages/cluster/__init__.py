"""Cluster: tracks grouped into identities (grouping.py), named from reference photos
(naming.py), shown on a contact sheet (contact_sheet.py).

Public API: cluster_tracks, load_embeddings, write_clusters, l2_normalise, agglomerate, cannot_link,
track_vectors, track_screen_time, DEFAULT_THRESHOLDS, METHODS; load_references, name_clusters,
name_groups, group_distances, reference_photos, embed_face, naming_threshold, DEFAULT_NAME_THRESHOLDS;
render_contact_sheet; apply_corrections,
apply_corrections_file, corrections_summary, TrackIndex, person_id (the user's corrections).
"""

from .contact_sheet import render as render_contact_sheet
from .corrections import TrackIndex, apply_corrections, apply_corrections_file, corrections_summary, person_id
from .grouping import (
                       DEFAULT_THRESHOLDS,
                       METHODS,
                       agglomerate,
                       cannot_link,
                       cluster_tracks,
                       l2_normalise,
                       load_embeddings,
                       track_screen_time,
                       track_vectors,
                       write_clusters,
)
from .naming import (
                       DEFAULT_NAME_THRESHOLDS,
                       embed_face,
                       group_distances,
                       load_references,
                       name_clusters,
                       name_groups,
                       naming_threshold,
                       reference_photos,
)

__all__ = ["apply_corrections", "apply_corrections_file", "corrections_summary", "TrackIndex", "person_id",
           "render_contact_sheet", "DEFAULT_THRESHOLDS", "METHODS", "agglomerate",
           "cannot_link", "cluster_tracks", "load_embeddings", "track_screen_time", "track_vectors", "l2_normalise",
           "write_clusters", "group_distances", "load_references", "name_clusters", "name_groups", "reference_photos",
           "DEFAULT_NAME_THRESHOLDS", "embed_face", "naming_threshold"]
