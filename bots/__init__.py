"""Chat-platform front ends: thin adapters that turn platform input into core calls and render results."""
