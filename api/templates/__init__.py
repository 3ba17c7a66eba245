"""HTML for people, rendered server-side from report data; no scripts, no network assets."""
