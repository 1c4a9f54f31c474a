"""`facepipe serve`: a local live web dashboard over a data root and a videos folder.

- `settings`: the settings `facepipe serve` takes, and their rules (the loopback, the token);
  every other module reads them from here.
- `server`: the listening socket, uvicorn and Ctrl-C.
- `app`: the Starlette routes (pages, JSON API, Server-Sent Events, files).
- `board`: one row per episode (state, registry, chips from the cached dry-run plan), the steps
  the pages show (sent in the board's meta), and the plan's refresh in the background.
- `watcher`: one task polling every episode's state and registry files, and the fan-out of the
  changed rows to every connected browser.
- `launcher`: the snakemake processes the pages start (Cluster, Detect, ..., a season), their
  end, and stopping them when the server stops.
- `security`: host, token and origin checks, and files served only from an episode's outputs.
- `detail`: an episode's page (clusters, stills, merge suggestions, corrections, progress
  history, log tail), and every still's address.
- `seasons`: a row per season, and a season's page.
- `corrections`: the pages' corrections (recorded by tools.corrections, then built by the
  launcher, or when the run that holds the unit ends), and the names to suggest.
- `static/`: the pages' HTML, CSS and JavaScript (no build step, nothing loaded from elsewhere).

Imports run one way: server -> app -> the others -> settings; no module imports server
(tests/test_architecture.py fails on any import cycle).
"""
