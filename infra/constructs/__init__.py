"""Reusable pieces of the orchestrator stack: one Lambda step, one workflow, the run data stores."""
