# Workflow-level progress: publish each episode's plan when the run starts, settle it at the end.
# Job starts and failures come from the facepipe logger plugin (--logger facepipe, default profile).
from facepipe.runtime import run_events


onstart:
    try:
        run_events.on_start(workflow, config, SEASONS)
    except FacepipeError as err:
        raise WorkflowError(str(err))


onsuccess:
    run_events.on_end(True, log)


onerror:
    run_events.on_end(False, log)
