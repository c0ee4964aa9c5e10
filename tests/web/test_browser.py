"""The pages in a real browser (Debian's headless Chromium through Playwright): type a prompt, watch it render,
press U1 and V1, open the gallery, paint a mask and submit it. Screenshots are saved as test artefacts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from core import constants as c
from core.commands.buttons import Button, button_label, grid_buttons, single_buttons
from core.models.request import Mode
from tests.pipeline_fixture import Pipeline, pipeline  # noqa: F401
from tests.web.conftest import WebServer, chromium_or_skip

RENDER_S = 90_000  # ms: a render on a loaded 2-core machine


def labels(rows: list[list[Button]]) -> list[str]:
    """The buttons the bots show under the same result, in order."""
    return [button_label(button) for row in rows for button in row]


async def _console_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors


async def test_chat_buttons_gallery_and_region_editor(
    web_server: WebServer,
    pipeline: Pipeline,  # noqa: F811
    artefacts: Path,
) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 900})
            errors = await _console_errors(page)
            await chat_and_buttons(page, expect, web_server, artefacts)
            await gallery(page, expect, artefacts)
            await region_editor(page, expect, pipeline, artefacts)
            assert errors == []  # no script error, and nothing the content security policy blocked
        finally:
            await browser.close()


async def chat_and_buttons(page: Any, expect: Any, server: WebServer, artefacts: Path) -> None:
    await page.goto(f"{server.url}/")
    await expect(page.locator("body")).to_have_attribute("data-live", "1")  # the event stream is open
    await page.fill("#prompt", "a lighthouse at dusk --seed 7 --steps 8")
    await page.press("#prompt", "Enter")
    grid = page.locator("#messages li.card").first
    await expect(grid).to_have_attribute("data-kind", "done", timeout=RENDER_S)
    images = grid.locator(".images img")
    await expect(images).to_have_count(4)
    await expect(grid.locator(".status")).to_contain_text("seed 7, 8, 9, 10")
    assert await grid.get_attribute("data-progress") == "8/8"  # progress came through, to the last step
    assert await images.evaluate_all("all => all.every(i => i.complete && i.naturalWidth === 64)")
    request_id = await grid.get_attribute("data-request-id")
    await expect(grid.locator("button")).to_have_text(labels(grid_buttons(request_id, range(4))))
    await page.screenshot(path=artefacts / "1-chat-result.png", full_page=True)

    await grid.get_by_role("button", name="U1", exact=True).click()
    single = page.locator("#messages li.card[data-kind='image']")
    await expect(single.locator(".images img")).to_have_count(1)
    await expect(single.locator("button")).to_have_text(labels(single_buttons(request_id, 0)))
    # Custom Zoom asks for its factor on the page, then queues like any press
    await single.get_by_role("button", name=button_label(Button(c.ACTION_ZOOM_CUSTOM, request_id, 0))).click()
    question = page.locator("#messages li.card[data-kind='ask']")
    await question.locator("input").fill("1.5")
    await question.locator("button[type='submit']").click()
    zoomed = page.locator("#messages li.card").last
    await expect(zoomed).to_have_attribute("data-kind", "done", timeout=RENDER_S)
    await expect(zoomed.locator(".status")).to_contain_text("Zoom Out 1.5× of image 1")
    zoom_id = await zoomed.get_attribute("data-request-id")
    await expect(zoomed.locator("button")).to_have_text(labels(single_buttons(zoom_id, 0)))  # one image

    await grid.get_by_role("button", name="V1", exact=True).click()
    done = page.locator("#messages li.card[data-kind='done']")
    await expect(done).to_have_count(3, timeout=RENDER_S)
    await expect(done.nth(2).locator(".status")).to_contain_text("Variation of image 1")
    await page.screenshot(path=artefacts / "2-chat-u1-v1.png", full_page=True)


async def gallery(page: Any, expect: Any, artefacts: Path) -> None:
    await page.click("nav >> text=Gallery")
    results = page.locator("#results li.card")
    await expect(results).to_have_count(3)  # the grid, its zoom and its variation, newest first
    await expect(results.nth(0).locator("dl.parameters")).to_contain_text("variation")
    await expect(results.nth(1).locator("dl.parameters")).to_contain_text("outpaint")
    await expect(results.nth(2).locator("dl.parameters")).to_contain_text("txt2img")
    await page.screenshot(path=artefacts / "3-gallery.png", full_page=True)
    delete = results.nth(0).locator("button.delete")  # the variation goes, after a second click to confirm
    await delete.click()
    await expect(delete).to_have_text("Delete for good?")
    await delete.click()
    await expect(results).to_have_count(2)
    await page.reload()
    await expect(results).to_have_count(2)
    await results.nth(1).get_by_role("button", name="U2", exact=True).click()
    await page.locator("li.card[data-kind='image']").get_by_role("button", name="Vary (Region)").click()
    await page.wait_for_selector("#mask")  # on the web, Vary (Region) opens the region editor


async def region_editor(page: Any, expect: Any, pipeline: Pipeline, artefacts: Path) -> None:  # noqa: F811
    canvas = page.locator("#mask")
    box = await canvas.bounding_box()
    assert box is not None

    def at(fx: float, fy: float) -> tuple[float, float]:
        return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy

    await page.mouse.move(*at(0.1, 0.2))  # a brush stroke across the top
    await page.mouse.down()
    await page.mouse.move(*at(0.5, 0.2), steps=8)
    await page.mouse.up()
    await page.check("input[value='rect']")  # a rectangle at the bottom right
    await page.mouse.move(*at(0.6, 0.6))
    await page.mouse.down()
    await page.mouse.move(*at(0.9, 0.9), steps=5)
    await page.mouse.up()
    await page.check("input[value='eraser']")  # and a bit of the rectangle rubbed out
    await page.mouse.move(*at(0.75, 0.62))
    await page.mouse.down()
    await page.mouse.move(*at(0.75, 0.88), steps=5)
    await page.mouse.up()
    await page.fill("#region-prompt", "a red sailing boat")
    await page.screenshot(path=artefacts / "4-region-editor.png", full_page=True)
    await page.click("#edit button[type='submit']")

    card = page.locator("#messages li.card")
    await expect(card).to_have_count(1)
    request_id = await card.get_attribute("data-request-id")
    service = pipeline.runtime.service
    request = await service.queue.load(request_id)
    assert request.mode is Mode.INPAINT and request.prompt == "a red sailing boat"
    assert request.parent_index == 1 and request.mask_image is not None
    with Image.open(io.BytesIO(await service.store.get(request.mask_image))) as mask:
        assert mask.size == (64, 64) and mask.mode == "L"
        assert mask.getpixel((19, 13)) == 255  # under the brush
        assert mask.getpixel((51, 51)) == 255  # inside the rectangle
        assert mask.getpixel((48, 48)) == 0  # rubbed out by the eraser
        assert mask.getpixel((3, 60)) == 0 and mask.getpixel((60, 3)) == 0  # never painted
    await expect(card).to_have_attribute("data-kind", "done", timeout=RENDER_S)
    await expect(card.locator(".images img")).to_have_count(request.n)
    await expect(card.locator("button")).to_have_text(labels(single_buttons(request.request_id, 0)))
    await page.screenshot(path=artefacts / "5-region-result.png", full_page=True)
    await card.get_by_role("button", name="Vary (Subtle)").click()  # its buttons work here too
    await expect(page.locator("#messages li.card")).to_have_count(2)
    edited = (await service.result(request.request_id)).images[0]
    assert request.source_image is not None
    with (
        Image.open(io.BytesIO(await service.store.get(request.source_image))) as before,
        Image.open(io.BytesIO(await service.store.get(edited.key))) as after,
    ):
        assert after.size == before.size
        # outside the mask the picture is kept exactly
        for xy in ((3, 60), (60, 3), (48, 48)):
            assert after.convert("RGB").getpixel(xy) == before.convert("RGB").getpixel(xy)
