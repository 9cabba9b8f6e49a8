"""Kept for tools that still call ``setup.py``; everything is declared in pyproject.toml (PEP 621)."""

from setuptools import setup

setup()
