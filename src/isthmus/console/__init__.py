"""Web console shell (issue 7)."""
