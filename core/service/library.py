"""Styles, /describe, /loras, and one's own results: /history, /info, Show and delete."""

from __future__ import annotations

from core.commands.adapters import lora_catalog
from core.commands.describe import suggestion
from core.commands.recipe import ResultInfo
from core.errors import NotFound
from core.governance.admission import community_of
from core.governance.describing import ImageSource
from core.governance.library import Deleted, History
from core.governance.styles import NamedStyle
from core.jobs.queue import Submission
from core.models.request import Requester
from core.models.result import EventKind, ResultEvent
from core.service.edits import EditService


class LibraryService(EditService):
    async def loras(self, requester: Requester) -> str:
        """/loras: the operator's LoRA catalog, with those the requester's community turned off marked."""
        policy = await self.admission.communities.policy(community_of(requester))
        return lora_catalog(self.settings.adapters, policy.denied_loras)

    # -- styles, /describe, and one's own results --------------------------------------------------------------

    async def list_styles(self, requester: Requester) -> list[NamedStyle]:
        """/styles: the presets `requester` may use where they are."""
        return await self.styles.all(requester)

    async def describe(
        self,
        requester: Requester,
        *,
        image: ImageSource | None = None,
        result_id: str | None = None,
        index: int = 0,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """/describe an upload (`image`) or image `index` of a result: four prompt suggestions, queued."""
        result = None
        if result_id is not None:
            await self.check_owner(result_id, requester)
            result = (result_id, index)
        return await self.describer.describe(
            requester, image=image, result=result, source_id=source_id, reply_to=reply_to
        )

    async def imagine_suggestion(
        self,
        describe_id: str,
        index: int,
        requester: Requester,
        *,
        source_id: str | None = None,
        reply_to: dict[str, str] | None = None,
    ) -> Submission:
        """A suggestion's button: that prompt through the normal /imagine path (checks, quota, queue)."""
        described = await self.results.load(describe_id)
        await self._authorize_for(described.requester, requester)
        text = suggestion(described, index)
        return await self.imagine(text, requester, source_id=source_id, reply_to=reply_to)

    async def history(
        self, requester: Requester, anchor: str | None = None, *, older: bool = True
    ) -> History:
        """/history: a page of `requester`'s own results (the web gallery reads the same)."""
        return await self.library.history(requester, anchor, older)

    async def info(self, request_id: str, requester: Requester) -> ResultInfo:
        """/info: the command line that makes a result again, and its provenance in plain words."""
        return await self.library.info(request_id, requester)

    async def delete(self, request_id: str, requester: Requester) -> Deleted:
        """Delete one's own result: its files leave the public prefix and the cache."""
        return await self.library.delete_own(request_id, requester)

    async def show(self, request_id: str, requester: Requester) -> ResultEvent:
        """A result from one's /history, to post again with its buttons."""
        await self.check_owner(request_id, requester)
        result = await self.results.load(request_id)
        if result.kind is not EventKind.DONE or not result.images:
            raise NotFound("That result has no images any more.")
        return result
