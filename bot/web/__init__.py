"""The browser pages: a site's devices, a device's versions, a version, a comparison side by side, a
search of the configs.

Served under /ui/ on the public listener (bot.serve) and by `backupbot demo --web`; reached from
Slack through signed links (docs/slack.md, "In the browser"). A page is a route (routes.py) and a
template (templates/); what a page shows is built by pure view models (diffview.py, configview.py)
from what bot.backup.catalog answers, and every request is authorized from the session's user with
bot.core.access, the same rules as Slack.

    paths       the URL of every page (one place: links, templates and routes agree)
    links       signed links (HMAC), the secret from the environment, the Linker Slack uses
    sessions    session ids, the cookie, CSRF tokens
    diffview    PURE: a comparison as hunks, rows, word-level highlights, folds and parts
    configview  PURE: a config as numbered lines and a table of contents of its sections
    searchview  PURE: a fleet search (bot.backup.grep) as runs of lines, matches marked, linked to View
    texts       redacted texts and comparisons, computed in the CPU worker and kept for a while
    pages       what each page shows, gathered and authorized
    routes      the aiohttp handlers, refusals as plain 403 pages
    app         the /ui/ application: routes, templates, static files, security headers
"""
