"""Platform-neutral heart of imagebot: settings, request/result models, grammar, queue, storage, events.

core/ imports no platform library and no ML library; bots/, worker/ and moderation/ depend on it.
"""
