"""The user-facing tools: the `facepipe` command, the status view, eval and test media."""
