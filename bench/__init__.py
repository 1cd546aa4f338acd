"""`make bench`: the engine's figures beside the reference programs', in one run (run.sh)."""
