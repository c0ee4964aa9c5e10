"""The `imagebot` command: the composition root, the one place that wires core, worker, bots and moderation."""
