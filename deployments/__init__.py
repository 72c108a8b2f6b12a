"""Entry points that serve or deploy the flows (`python -m deployments.serve`)."""
