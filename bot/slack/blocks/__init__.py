"""PURE. Block Kit for backupbot's Slack surfaces; handlers and notify import everything from here.

    kit    Slack's size limits in one place, and the small builders that respect them
    pack   packing long lists into few sections within a message's budget
    ids    the action_ids of buttons and checkboxes, and the format of their values
    run    messages about runs: started, the digest, change notices, the host-key alert
    diff   diffs as a snippet or a short inline message
    views  /backup's answers (sites, a site's devices, versions, search) and the App Home
    grep   /backup grep's answers: inline when the result fits, else the first devices and a file

Every builder checks its output against kit's limits: a message Slack would reject is a ValueError
here. No I/O, no asyncio, no clock: `now` is passed in; user- and device-provided text is escaped.
"""

from bot.slack.blocks.diff import diff_inline, diff_text
from bot.slack.blocks.grep import grep_file_name, grep_inline, grep_started, grep_summary
from bot.slack.blocks.ids import (
    BACKUP_DEVICE,
    BACKUP_SITE,
    COMPARE_SELECTED,
    DOWNLOAD_VERSION,
    OPEN_DEVICE,
    OPEN_IN_BROWSER,
    OPEN_WEB,
    PAGE_VERSIONS,
    SELECT_VERSIONS,
    SHOW_DIFF,
    VIEW_VERSION,
    device_value,
    page_value,
    pair_value,
    parse_device,
    parse_page,
    parse_pair,
    parse_site,
    parse_version,
    parse_web,
    selected_versions,
    web_value,
)
from bot.slack.blocks.kit import Message, with_actions
from bot.slack.blocks.run import backup_started, change_notice, diff_note, host_key_alert, run_summary
from bot.slack.blocks.views import (
    app_home,
    device_versions,
    error,
    open_in_browser,
    search_results,
    site_devices,
    sites_overview,
    usage,
    version_header,
    web_link,
)

__all__ = [
    "BACKUP_DEVICE",
    "BACKUP_SITE",
    "COMPARE_SELECTED",
    "DOWNLOAD_VERSION",
    "OPEN_DEVICE",
    "OPEN_IN_BROWSER",
    "OPEN_WEB",
    "PAGE_VERSIONS",
    "SELECT_VERSIONS",
    "SHOW_DIFF",
    "VIEW_VERSION",
    "Message",
    "app_home",
    "backup_started",
    "change_notice",
    "device_value",
    "device_versions",
    "diff_inline",
    "diff_note",
    "diff_text",
    "error",
    "grep_file_name",
    "grep_inline",
    "grep_started",
    "grep_summary",
    "host_key_alert",
    "open_in_browser",
    "page_value",
    "pair_value",
    "parse_device",
    "parse_page",
    "parse_pair",
    "parse_site",
    "parse_version",
    "parse_web",
    "run_summary",
    "search_results",
    "selected_versions",
    "site_devices",
    "sites_overview",
    "usage",
    "version_header",
    "web_link",
    "web_value",
    "with_actions",
]
