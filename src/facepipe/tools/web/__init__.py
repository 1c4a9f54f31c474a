"""`facepipe serve`: a local live web dashboard over a data root and a videos folder.

- `server`: the settings `facepipe serve` takes, the listening socket, uvicorn and Ctrl-C.
- `app`: the Starlette routes (pages, JSON API, Server-Sent Events, files).
- `board`: one row per episode (state, registry, chips from the cached dry-run plan) and the
  plan's refresh in the background.
- `watcher`: one task polling every episode's state and registry files, and the fan-out of the
  changed rows to every connected browser.
- `launcher`: the snakemake processes the page starts (Cluster, Detect, ...), their end, and
  stopping them when the server stops.
- `security`: host, token and origin checks, and files served only from an episode's outputs.
- `detail`: an episode's page (clusters, stills, progress history, log tail).
- `static/`: the pages' HTML, CSS and JavaScript (no build step, nothing loaded from elsewhere).
"""
