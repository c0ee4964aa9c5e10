"""The web front end (aiohttp): a thin adapter over core, like the Telegram and Discord bots.

app.py        run_web_bot / build_app: the aiohttp application beside the result-event consumer
context.py    WebContext (what every handler shares) and Tuning
requester.py  who is asking: the embedded default's one local user, or the platform user of a signed link
session.py    the session cookie (signed, HttpOnly, SameSite) and its CSRF token
security.py   middlewares: content security policy and headers, CSRF on every state change, errors as JSON
links.py      /link/<token>: a bot's signed link opens a session as that platform user
pages.py      the chat page, the gallery and the region editor (plain HTML from static/)
commands.py   /api/imagine, /api/press, /api/region, /api/delete → one core call each
gallery.py    /api/gallery: the user's own results, newest first
markup.py     core's result (caption, images, buttons) as JSON for the page
events.py     /api/events: result events as server-sent events; following the chat platforms' streams
hub.py        which open pages watch which user, each with its queue of events
images.py     /images/…: the stored images, served by this process
replies.py    the one place an error becomes what the page shows
"""

from bots.web.app import build_app, run_web_bot
from bots.web.context import Tuning

__all__ = ["Tuning", "build_app", "run_web_bot"]
