"""The job runner: job specs, slot claims, and running the jobs that features contribute."""
