"""A key a holder claims by writing its own token there: only that holder may give it back.

A delivery lease, a button press in progress, a preview message being sent: each is a key whose value says who
holds it. It may lapse and be taken by someone else meanwhile, so giving it back is a compare-and-delete.
"""

from __future__ import annotations

from typing import Final

# KEYS: the claimed key. ARGV: the holder's token. Deletes the key only while it still holds that token; returns
# 1 when it did, 0 when the claim had lapsed, been taken over or been replaced.
RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
