"""Adapters to AWS (and later Kubernetes) behind small interfaces; the only place boto3 is used."""
