"""HTTP shell: thin routes over the hub's stores and flows."""
