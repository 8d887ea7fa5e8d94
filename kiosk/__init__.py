"""The gate daemon: per-person pipeline, decision rules, local store, codes."""
