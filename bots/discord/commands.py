"""The application commands: /imagine, /vary, /upscale, /settings, /cancel, /quota, /help, "Vary this image",
and the /admin group (admin.py).

Each handler turns its options into one core call: typed options become grammar flags (flags.py), so they are
checked by the same grammar as flags typed in the prompt, and uploads become img2img source bytes. Numeric
options also declare the widest range any model takes (`app_commands.Range`), so Discord's client refuses what
no model could draw before sending it; the grammar applies the model's own limits. Whatever core would refuse
at once (a ban or a pause, a bad value, a refused prompt, a file too large) is refused before the public
"thinking…" (`_precheck`), so only the person who asked sees it. Errors raised anywhere reach
`ImagebotTree.on_error` or `send_error`, the one place they become messages.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import discord
from discord import app_commands

from bots.discord.admin import build_admin_group
from bots.discord.choices import (
    ASPECT_CHOICES,
    CONTROL_CHOICES,
    SAMPLER_CHOICES,
    lora_autocomplete,
    model_autocomplete,
)
from bots.discord.context import context_of
from bots.discord.flags import with_flags
from bots.discord.forget import forget
from bots.discord.library import COMMANDS as LIBRARY_COMMANDS
from bots.discord.replies import respond, send_error, show_queued
from bots.discord.requester import requester_of
from core.commands.adapters import MAX_CONTROL_WEIGHT, MIN_CONTROL_WEIGHT
from core.commands.grammar import (
    FLAG_EXAMPLES,
    MAX_GUIDANCE,
    MAX_SEED,
    MAX_STRENGTH,
    MIN_GUIDANCE,
    MIN_STRENGTH,
    ImagineOptions,
    parse_imagine,
)
from core.commands.uploads import UPLOAD_MAX_BYTES
from core.errors import InvalidRequest, NotFound
from core.governance.preferences import UserPrefs
from core.jobs.queue import CancelOutcome, Submission
from core.models.catalog import CATALOG, get_model
from core.models.privileges import Privilege
from core.models.request import Requester
from core.service import UPSCALE_STRENGTH
from core.settings import Settings

log = logging.getLogger(__name__)

PRECHECK_S = 1.5  # of Discord's 3 s to answer: a prompt check that takes longer goes on after "thinking…"
MAX_COUNT = 4  # the most images any server allows (LimitsSettings.max_images)
Seed = app_commands.Range[int, 0, MAX_SEED]
Steps = app_commands.Range[int, 1, max(spec.max_steps for spec in CATALOG)]
Guidance = app_commands.Range[float, MIN_GUIDANCE, MAX_GUIDANCE]
Count = app_commands.Range[int, 1, MAX_COUNT]
Strength = app_commands.Range[float, MIN_STRENGTH, MAX_STRENGTH]
ControlWeight = app_commands.Range[float, MIN_CONTROL_WEIGHT, MAX_CONTROL_WEIGHT]
VARY_MENU = "Vary this image"
UPSCALE_PROMPT = "high detail, sharp focus"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

HELP = (
    "**/imagine** `prompt` — make images. Options: aspect, seed, negative, steps, guidance, model, count.\n"
    "You can also write flags in the prompt: "
    + ", ".join(f"`{example}`" for example in FLAG_EXAMPLES.values())
    + ".\n"
    "**/vary** `image` `prompt` — new images starting from a picture you upload.\n"
    "**/upscale** `image` — a twice-as-large, refined copy of a picture you upload.\n"
    "**/settings** — your defaults (aspect ratio, model, number of images, private replies, Remix, live previews).\n"
    "**/cancel** — cancel your latest request while it is still waiting.\n"
    "**/quota** — your limits and what you've used today.\n"
    "**/describe** `image` — four prompts for a picture, each a button that imagines it.\n"
    "**/history** — your recent results · **/info** `request` — how one was made · **/styles** — the presets "
    "for `--style`.\n"
    "**/forget** — delete everything I keep about you (asks first).\n"
    "**/loras** — the LoRA style adapters for `--lora name` (or `--lora name:0.7`, up to three). "
    "`--sampler` picks a sampler; `--control canny|depth|pose|scribble` with `control_image` follows a picture's "
    "shape (`--cw` its weight).\n"
    "Under results: **U1–U4** show one image at full size, **V1–V4** make variations of it, 🔄 tries again.\n"
    "Under one image: **Upscale** (Subtle / Creative), **Vary** (Subtle / Strong / Region), **Zoom Out** "
    "(2×, 1.5×, Custom) and ⬅️ ➡️ ⬆️ ⬇️ to pan. With **Remix** on (/settings) you edit the prompt first.\n"
    "`--region 0,0,50,100` with an uploaded picture repaints that part of it (percent: left,top,right,bottom)."
)
MODERATOR_HELP = (
    "\nModerators: **/admin** — ban, tier, quota, usage, queue, cancel, pause, resume, block, policy, "
    "delete, audit, stats."
)


class ImagebotTree(app_commands.CommandTree[discord.Client]):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        original = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await send_error(interaction, original)


async def _prefs(interaction: discord.Interaction) -> UserPrefs:
    return await context_of(interaction).preferences.get("discord", str(interaction.user.id))


@app_commands.command(name="imagine", description="Make images from a text prompt")
@app_commands.describe(
    prompt="What to draw; flags like --ar 16:9 work here too",
    aspect="Aspect ratio",
    seed="Seed, to repeat a result",
    negative="What to leave out, comma-separated",
    steps="Denoising steps",
    guidance="How closely to follow the prompt (guidance scale)",
    model="Model",
    count="How many images (1–4)",
    lora="A LoRA style adapter (more with --lora name:0.7 in the prompt; see /loras)",
    sampler="The sampler",
    control="Follow the shape of control_image: its edges, depth, pose or a scribble",
    control_image="The picture --control reads",
    control_weight="How strongly to follow control_image (0–2, default 1)",
)
@app_commands.choices(aspect=ASPECT_CHOICES, sampler=SAMPLER_CHOICES, control=CONTROL_CHOICES)
@app_commands.autocomplete(model=model_autocomplete, lora=lora_autocomplete)
async def imagine(
    interaction: discord.Interaction,
    prompt: str,
    aspect: str | None = None,
    seed: Seed | None = None,
    negative: str | None = None,
    steps: Steps | None = None,
    guidance: Guidance | None = None,
    model: str | None = None,
    count: Count | None = None,
    lora: str | None = None,
    sampler: str | None = None,
    control: str | None = None,
    control_image: discord.Attachment | None = None,
    control_weight: ControlWeight | None = None,
) -> None:
    if control_image is not None:
        _require_image(control_image)
        if control is None:
            raise InvalidRequest("control", "You attached a control_image: pick a control kind for it too.")
    text = with_flags(
        prompt,
        {
            "aspect": aspect,
            "seed": seed,
            "negative": negative,
            "steps": steps,
            "guidance": guidance,
            "model": model,
            "count": count,
            "lora": lora,
            "sampler": sampler,
            "control": control,
            "control_weight": control_weight,
        },
    )
    await _imagine(interaction, text, control_image)


async def _imagine(
    interaction: discord.Interaction,
    text: str,
    source: discord.Attachment | bytes | None,
    *,
    finish: Callable[[ImagineOptions], str] | None = None,
) -> None:
    """The shared path of /imagine, /vary, /upscale and the context menu. `finish` completes the command
    from what the grammar made of it (the model it picked) before it is submitted."""
    context = context_of(interaction)
    prefs = await _prefs(interaction)
    requester = requester_of(interaction)
    options = await _precheck(interaction, text, requester, prefs, source)
    if finish is not None:
        text = finish(options)

    async def submit(reply_to: dict[str, str]) -> Submission:
        image = (
            source.read if isinstance(source, discord.Attachment) else source
        )  # a fetcher: read when asked
        return await context.service.imagine(
            text,
            requester,
            source_id=f"interaction:{interaction.id}",
            reply_to=reply_to,
            defaults=prefs.defaults(),
            source_image=image,  # an attachment is downloaded only once the command passed every check
        )

    async def show(submission: Submission) -> None:
        await show_queued(interaction, submission)

    await respond(interaction, submit, show, ephemeral=prefs.private)


async def _precheck(
    interaction: discord.Interaction,
    text: str,
    requester: Requester,
    prefs: UserPrefs,
    source: discord.Attachment | bytes | None,
) -> ImagineOptions:
    """What core would refuse at once, refused before anything is shown: a ban or a pause, a value the grammar
    refuses, a refused prompt, an upload too large. Core checks it all again when the command is submitted."""
    context = context_of(interaction)
    if isinstance(source, discord.Attachment) and source.size > UPLOAD_MAX_BYTES:
        raise InvalidRequest(
            "image",
            f"That file is {source.size / 1e6:.1f} MB; please upload one under "
            f"{UPLOAD_MAX_BYTES // 1_000_000} MB.",
        )
    policy = await context.service.admission.admit(requester)
    options = parse_imagine(
        text,
        default_model=policy.default_model or context.settings.default_model,
        limits=context.settings.limits,
        defaults=prefs.defaults(),
        adapters=context.settings.adapters,
    )
    try:
        async with asyncio.timeout(PRECHECK_S):
            await context.service.check_prompt(options.prompt, options.negative_prompt, requester)
    except TimeoutError:
        log.info("interaction %s: the prompt check goes on after acknowledging", interaction.id)
    return options


def _is_image(attachment: discord.Attachment) -> bool:
    if attachment.content_type:
        return attachment.content_type.startswith("image/")
    return attachment.filename.lower().endswith(IMAGE_SUFFIXES)


def _require_image(attachment: discord.Attachment) -> None:
    if not _is_image(attachment):
        raise InvalidRequest("image", "Please attach a picture (PNG, JPEG or WebP).")


@app_commands.command(name="vary", description="New images starting from a picture you upload")
@app_commands.describe(
    image="The picture to start from",
    prompt="What the new images should show",
    strength="How far to move away from the picture (0.05–1)",
)
async def vary(
    interaction: discord.Interaction, image: discord.Attachment, prompt: str, strength: Strength | None = None
) -> None:
    _require_image(image)
    await _imagine(interaction, with_flags(prompt, {"strength": strength, "count": 1}), image)


@app_commands.command(name="upscale", description="A twice-as-large, refined copy of a picture you upload")
@app_commands.describe(image="The picture to upscale", prompt="What the picture shows (helps the refinement)")
async def upscale(
    interaction: discord.Interaction, image: discord.Attachment, prompt: str | None = None
) -> None:
    _require_image(image)
    if not image.width or not image.height:
        raise InvalidRequest(
            "image", "I couldn't read that picture's size; please upload a PNG, JPEG or WebP."
        )
    text = with_flags(prompt or UPSCALE_PROMPT, {"strength": UPSCALE_STRENGTH, "count": 1})
    shown = f"{image.width}×{image.height}"
    width, height = image.width * 2, image.height * 2

    def twice_the_size(options: ImagineOptions) -> str:
        """The model the grammar picked (the user's, the server's policy, or the bot's default) must draw
        twice the picture's size; the grammar checks the --size again when the command is submitted."""
        spec = get_model(options.model)
        if max(width, height) > spec.max_side:
            raise InvalidRequest(
                "image",
                f"That picture is {shown}; twice that is more than "
                f"{spec.name} can draw ({spec.max_side} px a side). Please upload a smaller one.",
            )
        if min(width, height) < spec.min_side:
            raise InvalidRequest(
                "image",
                f"That picture is {shown}; twice that is still less than "
                f"{spec.name} draws ({spec.min_side} px a side at least). Please upload a larger one.",
            )
        return with_flags(text, {"size": f"{width}x{height}"})

    await _imagine(interaction, text, image, finish=twice_the_size)


@app_commands.context_menu(name=VARY_MENU)
async def vary_this_image(interaction: discord.Interaction, message: discord.Message) -> None:
    images = [a for a in message.attachments if _is_image(a)]
    if not images:
        raise InvalidRequest("image", "That message has no picture to vary; pick a message with an image.")
    prompt = await _prompt_of(interaction, message)
    await _imagine(interaction, with_flags(prompt, {"count": 1}), images[0])


async def _prompt_of(interaction: discord.Interaction, message: discord.Message) -> str:
    """The prompt of one of our results (from its button ids), else the message's text."""
    from core.commands.buttons import decode_button

    for row in message.components:
        for component in getattr(row, "children", []):
            custom_id = getattr(component, "custom_id", None)
            if not custom_id:
                continue
            try:
                request = await context_of(interaction).service.queue.load(
                    decode_button(custom_id).request_id
                )
            except (InvalidRequest, NotFound):
                continue
            return request.prompt
    if message.content.strip():
        return message.content.strip()
    raise InvalidRequest("prompt", "That message has no text to use as a prompt; use /vary and describe it.")


@app_commands.command(name="settings", description="Your defaults for /imagine (only you see this)")
@app_commands.describe(
    aspect="Default aspect ratio",
    model="Default model",
    count="Default number of images",
    private="Replies only you can see",
    remix="Edit the prompt before variations, rerolls, zooms, pans and region edits",
    previews="Show a small picture of your image as it forms (off: progress as text only)",
    reset="Forget all your defaults",
)
@app_commands.choices(aspect=ASPECT_CHOICES)
@app_commands.autocomplete(model=model_autocomplete)
async def settings(
    interaction: discord.Interaction,
    aspect: str | None = None,
    model: str | None = None,
    count: Count | None = None,
    private: bool | None = None,
    remix: bool | None = None,
    previews: bool | None = None,
    reset: bool = False,
) -> None:
    store = context_of(interaction).preferences
    user = str(interaction.user.id)
    changes: dict[str, object] = {}
    if reset:
        changes = UserPrefs().model_dump()  # every field back to its default
    options = (
        ("aspect", aspect),
        ("model", model),
        ("n", count),
        ("private", private),
        ("remix", remix),
        ("previews", previews),
    )
    for name, value in options:
        if value is not None:
            changes[name] = value
    prefs = await store.update("discord", user, **changes) if changes else await store.get("discord", user)
    saved = "Saved. " if changes else ""
    await interaction.response.send_message(saved + _describe(prefs), ephemeral=True)


def _describe(prefs: UserPrefs) -> str:
    return (
        f"Your defaults: aspect {prefs.aspect or 'the model’s own'} · model {prefs.model or 'the server’s'} · "
        f"{prefs.n or 'the server’s number of'} images · replies {'only you see' if prefs.private else 'public'}"
        f" · remix {'on' if prefs.remix else 'off'} · live previews {'on' if prefs.previews else 'off'}."
    )


@app_commands.command(name="cancel", description="Cancel a request that is still waiting")
@app_commands.describe(request="The request id (default: your latest)")
async def cancel(interaction: discord.Interaction, request: str | None = None) -> None:
    context = context_of(interaction)
    requester = requester_of(interaction)
    request_id = request.strip() if request else await context.service.last_request(requester)
    outcome = await context.service.cancel(request_id, requester)
    text = {
        CancelOutcome.CANCELLED: "Cancelled.",
        CancelOutcome.RUNNING: "That one is already being drawn, so it can't be cancelled now.",
    }.get(outcome, "That request isn't waiting any more (it has finished or was cancelled).")
    await interaction.response.send_message(text, ephemeral=True)


@app_commands.command(name="quota", description="Your image limits and what you've used (only you see this)")
async def quota(interaction: discord.Interaction) -> None:
    context = context_of(interaction)
    if not context.settings.quotas.enabled:
        await interaction.response.send_message("There are no image limits on this bot.", ephemeral=True)
        return
    status = await context.service.admission.quotas.status(requester_of(interaction))
    await interaction.response.send_message(status.describe(), ephemeral=True)


@app_commands.command(name="loras", description="The LoRA style adapters you can use with --lora")
async def loras(interaction: discord.Interaction) -> None:
    text = await context_of(interaction).service.loras(requester_of(interaction))
    await interaction.response.send_message(text[:2000], ephemeral=True)


@app_commands.command(name="help", description="How to use the image bot")
async def help_command(interaction: discord.Interaction) -> None:
    text = HELP + (MODERATOR_HELP if requester_of(interaction).privilege >= Privilege.MOD else "")
    await interaction.response.send_message(text, ephemeral=True)


COMMANDS: tuple[app_commands.Command[Any, Any, None] | app_commands.ContextMenu, ...] = (
    imagine,
    vary,
    upscale,
    settings,
    cancel,
    quota,
    loras,
    help_command,
    vary_this_image,
    *LIBRARY_COMMANDS,
    forget,
)


def build_tree(client: discord.Client, bot_settings: Settings) -> ImagebotTree:
    tree = ImagebotTree(client)
    for command in COMMANDS:
        tree.add_command(command)
    tree.add_command(build_admin_group(bot_settings))
    return tree
