"""Build, release and deployment files; the scripts run as `python deploy/<name>.py`."""
