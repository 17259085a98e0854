"""HTTP edges: one folder per dialect; they parse, call a service and render."""
