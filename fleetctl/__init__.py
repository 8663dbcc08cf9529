"""``fleetctl``: the operator's command line (simulate a fleet on the local engine; later: scan, plan,
approve, manage the fleet registry)."""
