"""The base every wing stands on: where files live (layout, project), how they are written
(atomic), errors, episodes, configuration, media and image helpers, video reading, clocks and
worker processes. Nothing here imports a stage, the runtime or a tool."""
