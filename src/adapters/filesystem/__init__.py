"""Filesystem adapters: links into other apps, mapping configs."""
