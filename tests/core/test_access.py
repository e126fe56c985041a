"""Authorization policy: admins, allowed_users, allowed_channels vs private conversations, downloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import access
from bot.core.errors import Forbidden
from bot.core.models import Settings, Site, SlackSettings

ADMIN, ALICE, BOB, EVE = "U0ADMIN01", "U0ALICE01", "U0BOB0001", "U0EVE0001"
OPS, RANDOM, PRIVATE, DM = "C0OPS0001", "C0RANDOM1", "G0PRIV001", "D0DM00001"

OPEN = Site("open", ())
STAFF = Site("staff", (), allowed_users=frozenset({ALICE, BOB}))
OPS_ONLY = Site("ops-only", (), allowed_channels=frozenset({OPS, PRIVATE}))
VAULT = Site("vault", (), allowed_users=frozenset({ALICE}), allowed_channels=frozenset({OPS}),
             download_users=frozenset({ALICE, BOB}))
SETTINGS = Settings(Path("x.db"), {s.name: s for s in (OPEN, STAFF, OPS_ONLY, VAULT)},
                    slack=SlackSettings(admins=frozenset({ADMIN})))


def test_admins_see_and_download_every_site_from_anywhere() -> None:
    """An admin passes every rule: not in allowed_users, in an unlisted channel, not a download user."""
    for site in SETTINGS.sites.values():
        for channel in (RANDOM, DM, None):
            assert access.can_view(SETTINGS, site, ADMIN, channel)
        assert access.can_download(SETTINGS, site, ADMIN)
    assert access.visible_sites(SETTINGS, ADMIN, RANDOM) == list(SETTINGS.sites.values())


def test_empty_allowed_users_means_everyone() -> None:
    """A site without allowed_users or allowed_channels is visible to anyone, anywhere."""
    for channel in (RANDOM, PRIVATE, DM, None):
        assert access.can_view(SETTINGS, OPEN, EVE, channel)


def test_allowed_users_limits_who_sees_a_site_even_in_a_dm() -> None:
    """Only listed users see a site with allowed_users, whatever the conversation."""
    assert access.can_view(SETTINGS, STAFF, ALICE, RANDOM)
    for channel in (RANDOM, DM, None):
        assert not access.can_view(SETTINGS, STAFF, EVE, channel)


def test_allowed_channels_keep_a_site_in_its_channels() -> None:
    """Listed channels (C… or G…) pass, unlisted ones fail; a DM or the App Home only for named users."""
    assert access.can_view(SETTINGS, OPS_ONLY, EVE, OPS)
    assert access.can_view(SETTINGS, OPS_ONLY, EVE, PRIVATE)
    assert not access.can_view(SETTINGS, OPS_ONLY, EVE, RANDOM)
    assert not access.can_view(SETTINGS, OPS_ONLY, EVE, "G0OTHER01")
    # nobody is named on ops-only, so DMing the bot must not be a way around its channels
    assert not access.can_view(SETTINGS, OPS_ONLY, EVE, DM)
    assert not access.can_view(SETTINGS, OPS_ONLY, EVE, None)
    assert access.can_view(SETTINGS, VAULT, BOB, DM) is False  # a download user excluded by allowed_users


def test_unknown_conversation_kinds_count_as_shared() -> None:
    """A channel id of an unfamiliar kind must be listed: it never widens access like a DM would."""
    assert not access.can_view(SETTINGS, OPS_ONLY, EVE, "Z0WEIRD01")
    assert not access.can_view(SETTINGS, OPS_ONLY, EVE, "")


def test_both_rules_apply_together() -> None:
    """allowed_users and allowed_channels combine: the right user in the wrong channel is refused."""
    assert access.can_view(SETTINGS, VAULT, ALICE, OPS)
    assert access.can_view(SETTINGS, VAULT, ALICE, DM)
    assert not access.can_view(SETTINGS, VAULT, ALICE, RANDOM)
    assert not access.can_view(SETTINGS, VAULT, BOB, OPS)


def test_downloads_need_admin_or_download_user_who_may_also_view() -> None:
    """download_users may download; others may not; a download user excluded by allowed_users is refused."""
    assert access.can_download(SETTINGS, VAULT, ALICE)
    assert not access.can_download(SETTINGS, VAULT, BOB)  # a download user, but not in allowed_users
    assert not access.can_download(SETTINGS, VAULT, EVE)
    assert not access.can_download(SETTINGS, OPEN, EVE)  # seeing a site is not enough to download


def test_require_view_names_the_site_but_not_who_is_allowed() -> None:
    """Refusals are clear, name the site, and reveal neither users nor channels."""
    with pytest.raises(Forbidden) as refused:
        access.require_view(SETTINGS, STAFF, EVE, DM)
    assert str(refused.value) == "You are not allowed to see staff. Ask a backupbot admin."
    with pytest.raises(Forbidden) as wrong_place:
        access.require_view(SETTINGS, OPS_ONLY, EVE, RANDOM)
    assert "ops-only can't be shown here" in str(wrong_place.value)
    for message in (str(refused.value), str(wrong_place.value)):
        assert not any(secret in message for secret in (ALICE, BOB, OPS, PRIVATE))
    access.require_view(SETTINGS, STAFF, ALICE, RANDOM)  # allowed: returns quietly


def test_require_download_explains_who_may_download_in_general_terms() -> None:
    """A visible site without download rights gets the passwords explanation; an invisible one the view refusal."""
    with pytest.raises(Forbidden) as no_rights:
        access.require_download(SETTINGS, OPEN, EVE)
    assert str(no_rights.value) == ("Raw downloads contain passwords; only backupbot admins and open's "
                                    "download_users can download them.")
    with pytest.raises(Forbidden) as hidden:
        access.require_download(SETTINGS, VAULT, BOB)
    assert str(hidden.value) == "You are not allowed to see vault. Ask a backupbot admin."
    access.require_download(SETTINGS, VAULT, ALICE)


def test_visible_sites_never_include_a_site_the_user_may_not_see() -> None:
    """For sites, search and App Home: only the sites visible to this user in this conversation, in order."""
    assert [s.name for s in access.visible_sites(SETTINGS, EVE, RANDOM)] == ["open"]
    assert [s.name for s in access.visible_sites(SETTINGS, EVE, None)] == ["open"]
    assert [s.name for s in access.visible_sites(SETTINGS, ALICE, None)] == ["open", "staff", "vault"]
    assert [s.name for s in access.visible_sites(SETTINGS, ALICE, OPS)] == ["open", "staff", "ops-only", "vault"]
    assert [s.name for s in access.visible_sites(SETTINGS, BOB, RANDOM)] == ["open", "staff"]
