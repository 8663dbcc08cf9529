"""The fleet workflow's domain: the fleet input, waves and their tolerance, maintenance windows, per-cluster
lease locks, wave records and the fleet report. No boto3 here: the run table is behind ``locks.RunTable``."""
