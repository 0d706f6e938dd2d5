"""German demo corpus: sources, build script and rendered files."""
