"""The runtime: what a job, a run and a watcher share. Steps and their pct bands, progress in
pipeline_state.json, the runtime.json registry and its locks, run events, stale-lock release,
processes, cancelling, planning, launching and status snapshots. It never imports a stage."""
