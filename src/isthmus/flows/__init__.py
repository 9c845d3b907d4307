"""Business workflows. Decisions are pure functions; steps reach storage only through ports."""
