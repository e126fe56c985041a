"""PURE. Who may see and download what: the authorization policy, as functions of Settings.
Slack (handlers) and the browser pages (bot.web) both ask here, so the two never disagree.

Rules:
- backupbot admins (slack.admins) may see and download everything, from anywhere;
- anyone else must be in the site's allowed_users (empty = everyone in the workspace);
- and, if the site lists allowed_channels, a request from a shared conversation must come from
  one of them. A DM with the bot (channel id "D…") and the App Home (no channel) are private:
  there the user must be named on the site (allowed_users or download_users) — otherwise a
  site kept to its channels would be open to anyone who DMs the bot. Any other channel id
  (C…, G…, or an unknown kind) counts as shared, so an unfamiliar conversation type never
  widens access;
- raw downloads contain passwords: only admins and the site's download_users, and a download
  user must also be allowed to see the site;
- the browser pages have no channel: a request there is private (channel None), as in the App Home.

Messages name the site but never who is allowed. Handlers and pages must call these on every
request, including button presses (a message may have been forwarded or shared since it was
posted) and every page load (a session outlives a change of the config).
"""

from __future__ import annotations

from bot.core.errors import Forbidden
from bot.core.models import Settings, Site


def is_admin(settings: Settings, user: str) -> bool:
    return user in settings.slack.admins


def _private(channel: str | None) -> bool:
    return channel is None or channel.startswith("D")


def _user_allowed(site: Site, user: str) -> bool:
    return not site.allowed_users or user in site.allowed_users


def _channel_allowed(site: Site, user: str, channel: str | None) -> bool:
    if not site.allowed_channels:
        return True
    if _private(channel):
        return user in site.allowed_users or user in site.download_users
    return channel in site.allowed_channels


def can_view(settings: Settings, site: Site, user: str, channel: str | None) -> bool:
    if is_admin(settings, user):
        return True
    return _user_allowed(site, user) and _channel_allowed(site, user, channel)


def can_download(settings: Settings, site: Site, user: str) -> bool:
    if is_admin(settings, user):
        return True
    return user in site.download_users and _user_allowed(site, user)


def require_view(settings: Settings, site: Site, user: str, channel: str | None) -> None:
    if can_view(settings, site, user, channel):
        return
    if _user_allowed(site, user):
        raise Forbidden(f"{site.name} can't be shown here. Ask in one of the site's channels.")
    raise Forbidden(f"You are not allowed to see {site.name}. Ask a backupbot admin.")


def require_download(settings: Settings, site: Site, user: str) -> None:
    if can_download(settings, site, user):
        return
    if not _user_allowed(site, user):
        raise Forbidden(f"You are not allowed to see {site.name}. Ask a backupbot admin.")
    raise Forbidden(f"Raw downloads contain passwords; only backupbot admins and {site.name}'s "
                    "download_users can download them.")


def visible_sites(settings: Settings, user: str, channel: str | None) -> list[Site]:
    """The sites this user may see here, in inventory order (for sites, search and App Home)."""
    return [site for site in settings.sites.values() if can_view(settings, site, user, channel)]
