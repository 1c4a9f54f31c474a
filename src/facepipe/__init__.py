"""facepipe: find who is on screen in TV episodes.

Four user-facing steps, each a Snakemake rule with declared outputs:
Detect -> Track -> Stills -> Cluster (embed + cluster).
"""

__version__ = "0.1.0"
