"""Command-line shell: `isthmus <command>`; thin wrappers over the hub."""
