"""The stages: Detect -> Track -> Stills -> Embed -> Cluster, each a module or subpackage.

A stage reads its inputs and writes its outputs; it knows nothing of Snakemake, progress files
or the registry (the entry scripts in scripts/ join a stage to the runtime). A stage may use
another stage's public API (its package's names), never its inner modules.
"""
