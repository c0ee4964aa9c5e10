"""The /start and /help texts, written from core's grammar so they list exactly the flags it accepts."""

from __future__ import annotations

from core.commands.grammar import FLAG_EXAMPLES
from core.models.catalog import model_names

FLAG_MEANINGS = {
    "ar": "aspect ratio, width:height",
    "size": "exact size in pixels",
    "seed": "repeat a result exactly",
    "no": "what to leave out",
    "steps": "more steps, more detail (slower)",
    "cfg": "how closely to follow the prompt",
    "n": "how many images, 1 to 4",
    "model": "which model draws it",
    "strength": "how far to move from your photo",
    "cloud": "use the cloud generator",
    "style": "a preset style (/styles lists them)",
    "lora": "a LoRA style (see /loras), optional weight; up to three",
    "sampler": "the sampler: Euler, Euler a, DPM++ 2M (Karras), DDIM, UniPC, LCM",
    "control": "follow your photo's edges, depth, pose or scribble",
    "cw": "how strongly to follow it, 0 to 2",
    "region": "repaint this part of your photo (left,top,right,bottom in percent)",
}

START_TEXT = (
    "Hi! I turn descriptions into images.\n"
    "Try: /imagine a lighthouse at dusk --ar 16:9\n"
    "Send /help for the options and /settings for your defaults."
)


def help_text() -> str:
    lines = [
        "Describe an image, then add flags if you like:",
        "/imagine a lighthouse at dusk --ar 16:9",
        "/imagine a red fox in snow --seed 1234 --no people",
        "",
        "Flags:",
    ]
    for name, example in FLAG_EXAMPLES.items():
        meaning = FLAG_MEANINGS.get(name)
        lines.append(f"{example} — {meaning}" if meaning else example)
    lines += [
        "",
        f"Models: {', '.join(model_names())}",
        "",
        "Send a photo with /imagine in its caption, or reply to a photo with /imagine, to start from it "
        "(with --control canny, the new images follow its shape instead).",
        "/loras lists the LoRA styles for --lora.",
        "In a private chat, any plain message is a prompt. In groups, use /imagine (or /img).",
        "Under a result: U1–U4 send one image at full size, V1–V4 make variations of one, 🔄 draws again.",
        "Under one image: Upscale (Subtle/Creative), Vary (Subtle/Strong/Region), Zoom Out 2×/1.5×/Custom, "
        "and ⬅️ ➡️ ⬆️ ⬇️ to pan. With Remix on (/settings) you edit the prompt first.",
        "/settings sets your defaults, Remix and live previews; /cancel cancels your last request while it waits.",
        "/quota shows how many images you have left today and when that resets.",
        "/describe: send a photo captioned /describe (or reply to one) for four prompts, each a button.",
        "/history lists your recent results; reply to a result with /info to see how it was made.",
        "Moderators: /admin lists the admin commands you can use.",
    ]
    return "\n".join(lines)
