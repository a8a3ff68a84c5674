"""A sweep: its configuration, the driver's loop (when things happen), each trial's
lifecycle (what happens), resuming from MLflow, warm starts, and experiment files."""
