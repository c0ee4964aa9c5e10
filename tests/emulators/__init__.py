"""Small local emulators of third-party HTTP APIs, driven by the real client libraries in tests."""
