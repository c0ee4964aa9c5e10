"""What a community (or the bot, by default) lets through: one value of a few, typed.

The values are the wire spelling in settings (IMAGEBOT_MODERATION__NSFW_POLICY), in a community's stored policy
and on a GenerationRequest (`image_policy`), so requests and policies stored before the enum read unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class NsfwPolicy(StrEnum):
    """What happens to an image the image check flags as NSFW (spoiler and allow only in age-restricted
    channels; moderation.image_check.ImagePolicy decides)."""

    REFUSE = "refuse"  # withhold it (quarantined), everywhere
    SPOILER = "spoiler"  # deliver it behind a spoiler / blur
    ALLOW = "allow"  # deliver it as is
