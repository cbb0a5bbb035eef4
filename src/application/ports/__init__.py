"""Ports: what the application needs from the outside world, one per role."""
