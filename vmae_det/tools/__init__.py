"""The command-line tools, importable and installed as console scripts (see pyproject.toml); ``tools/*.py`` in the
repository are thin launchers of these modules. The top layer: nothing in the package imports it."""
