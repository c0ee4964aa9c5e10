"""The worker: arq jobs that render requests with a backend, post-process, check, store and report them.

worker/ never imports bots/; the two meet only through Redis (job ids on queues, events on streams).
"""
