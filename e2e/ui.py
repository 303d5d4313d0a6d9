"""Page objects: the one home of what the browser tests and the benchmark read on a page that embeds
``<smartcat-uploader>`` (the standalone app in web/ is one).

The element draws in an open shadow root. Playwright's CSS locators pierce it, so ``card(page, name)`` and friends
are plain locators; JavaScript run in the page (``page.evaluate``, init scripts) does not, and goes through
:data:`SHADOW` instead. The header's engine status (``#engine``) and indicator are the standalone page's own.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Locator, Page

ELEMENT = "smartcat-uploader"
#: The element's file input (Playwright pierces the shadow root).
PICKER = f"{ELEMENT} input.picker"
#: The same for drivers whose CSS does not pierce: puppeteer's deep combinator (e2e/engines/drivers.py splits it for
#: WebDriver's shadow-root lookup).
PICKER_DEEP = f"{ELEMENT} >>> input.picker"
#: The standalone page's header once its engine is ready.
ENGINE_READY = '#engine[data-state="ready"]'
#: The element's shadow root, for JavaScript run in the page.
SHADOW = "document.querySelector('smartcat-uploader')?.shadowRoot"

# Records every status text an upload card ever shows, so short-lived states ("Resuming…") can be asserted. An init
# script runs before the element exists: it starts watching once the element is defined (its shadow root is there).
RECORD_LABELS = """
window.__labels = [];
customElements.whenDefined('smartcat-uploader').then(() => {
  const root = document.querySelector('smartcat-uploader')?.shadowRoot;
  if (!root) return;
  new MutationObserver(() => {
    for (const el of root.querySelectorAll('.upload-status')) {
      if (window.__labels[window.__labels.length - 1] !== el.textContent) window.__labels.push(el.textContent);
    }
  }).observe(root, { subtree: true, childList: true, characterData: true });
});
"""


def pick(page: Page, *files: Path | str) -> None:
    """Files chosen in the element's picker, as a user's pick."""
    page.set_input_files(PICKER, [str(f) for f in files])


def card(page: Page, name: str) -> Locator:
    """The card of the upload of ``name``."""
    return page.locator(f"{ELEMENT} .upload", has_text=name)


def bar_drawn(upload: Locator) -> float:
    """The share of a card's progress bar its fill covers on screen, as drawn (layout and transform): what the user
    sees, whatever the CSS does to draw it."""
    return float(upload.locator(".bar").evaluate(
        "(bar) => bar.querySelector('.fill').getBoundingClientRect().width / bar.getBoundingClientRect().width"))


def status(page: Page, name: str) -> Locator:
    """What the card of ``name`` says its state is ("Uploading", "Paused (by you)" …)."""
    return card(page, name).locator(".upload-status")


def banner(page: Page) -> Locator:
    """The "you can leave" banner."""
    return page.locator(f"{ELEMENT} .banner")


def notices(page: Page) -> Locator:
    """The engine's notices ("… is already in your uploads")."""
    return page.locator(f"{ELEMENT} .notices")


def toasts(page: Page) -> Locator:
    """Completion toasts."""
    return page.locator(f"{ELEMENT} .toasts")


def offer(page: Page) -> Locator:
    """The completion-notification offer (its ``data-state`` says which step it shows)."""
    return page.locator(f"{ELEMENT} .notify")
