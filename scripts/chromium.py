"""Where Debian's chromium is, and how Playwright starts it here (tests and screenshot alike).

Playwright's own browser download does not work on these machines; ``POC_CHROMIUM`` points
at another binary. The flags keep a root, headless chromium off the (closed) network.
"""

import os
from pathlib import Path

CHROMIUM = Path(os.environ.get("POC_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
