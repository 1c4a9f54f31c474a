"""Cluster: tracks grouped into identities (grouping.py), named from reference photos
(naming.py), shown on a contact sheet (contact_sheet.py).

Public API: cluster_tracks, load_embeddings, write_clusters, unit, DEFAULT_THRESHOLDS, METHODS;
load_references, name_clusters, reference_photos; render_contact_sheet.
"""

from .contact_sheet import render as render_contact_sheet
from .grouping import DEFAULT_THRESHOLDS, METHODS, cluster_tracks, load_embeddings, unit, write_clusters
from .naming import load_references, name_clusters, reference_photos

__all__ = ["render_contact_sheet", "DEFAULT_THRESHOLDS", "METHODS", "cluster_tracks", "load_embeddings", "unit",
           "write_clusters", "load_references", "name_clusters", "reference_photos"]
