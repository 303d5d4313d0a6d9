"""Completion notifications in Chromium: the Service Worker shows what the server pushes, <smartcat-uploader>'s
offer (web/notify.mjs) asks for permission only after a long-wait view (and a click), falls back to email, and a real
upload finishing in a hidden tab produces an email and a push.

Headless Chromium cannot subscribe to a real push service offline, so where a subscription is needed its endpoint is
the test's push service (tests/support/notify.py), which checks VAPID and decrypts what the server sent; the
decrypted payload is then handed to the Service Worker through the DevTools protocol
(``ServiceWorker.deliverPushMessage``), as the browser's push service would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from sqlalchemy import select

from server.outbox import DeliveryStatus, OutboxEvent
from tests.notify.conftest import complete_upload, fast_settings
from tests.support.live_server import LiveServer, MakeLiveServer
from tests.support.notify import PushService, SmtpSink
from tests.support.s3_proxy import s3_proxy
from tests.support.seaweed import SeaweedService
from wire.plan import MiB

from .conftest import RUNTIME_DIR, WEB_DIR, Browser, random_file, wait_for
from .ui import ELEMENT, card, offer, pick

PLAY_VIEW = (
    f"(v) => document.querySelector('{ELEMENT}').uploader.dispatchEvent(new CustomEvent('change', {{ detail: v }}))"
)


@pytest.fixture
def server(make_live_server: MakeLiveServer, smtp: SmtpSink) -> LiveServer:
    return make_live_server(web_dir=WEB_DIR, runtime_dir=RUNTIME_DIR, **fast_settings(smtp.port, None))


def poll(page: Page, condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll with a deadline, letting Playwright deliver events (CDP) between tries."""
    for _ in range(int(timeout * 20)):
        value = condition()
        if value:
            return value
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def open_page(context: BrowserContext, url: str) -> Page:
    page = context.new_page()
    page.on("console", lambda m: print(f"[page {m.type}] {m.text}") if m.type in ("error", "warning") else None)
    page.goto(url)
    return page


def user_client(context: BrowserContext, server: LiveServer) -> httpx.Client:
    """An API client that is the browser's user (its identity cookie)."""
    cookies = {c["name"]: c["value"] for c in context.cookies(server.base_url)}
    return server.client(cookies=cookies)


def service_worker_ready(page: Page) -> str:
    scope: str = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    return scope


# Counts notifications the worker finished showing. (Chromium's getNotifications() called before a notification is
# stored can keep answering [] for a while, so the test reads it only once the worker says it has shown one.)
COUNT_SHOWN = """() => {
  if (self.__shown !== undefined) return;
  self.__shown = 0;
  const show = self.registration.showNotification.bind(self.registration);
  self.registration.showNotification = (title, options) => show(title, options).then(() => { self.__shown += 1; });
}"""


def deliver_push(page: Page, origin: str, payload: dict[str, Any]) -> None:
    """What a push service does: wake the origin's Service Worker with a push message; returns once it has shown
    the notification."""
    [worker] = [w for w in page.context.service_workers if w.url == origin + "/sw.js"]
    worker.evaluate(COUNT_SHOWN)
    shown_before: int = worker.evaluate("self.__shown")
    cdp = page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    versions: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.on("ServiceWorker.workerVersionUpdated", lambda e: versions.extend(e["versions"]))
    cdp.send("ServiceWorker.enable")
    [registration] = poll(
        page,
        lambda: [r for r in registrations if r["scopeURL"] == origin + "/" and not r["isDeleted"]][:1],
        10,
        "the Service Worker registration",
    )
    # A push reaching a worker still activating is lost: wait until its version is activated.
    poll(
        page,
        lambda: any(
            v["registrationId"] == registration["registrationId"] and v["status"] == "activated" for v in versions
        ),
        10,
        "the Service Worker activated",
    )
    cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": origin, "registrationId": registration["registrationId"], "data": json.dumps(payload)},
    )
    poll(page, lambda: worker.evaluate("self.__shown") > shown_before, 10, "the worker to show the notification")


def notifications(page: Page) -> list[dict[str, Any]]:
    shown: list[dict[str, Any]] = page.evaluate(
        """navigator.serviceWorker.ready
             .then((r) => r.getNotifications())
             .then((ns) => ns.map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data })))"""
    )
    return shown


def dispatch_view(page: Page, **view: Any) -> None:
    """A card's view model as the engine would send it, played into the element's client (its "change" event)."""
    defaults = {"local_id": "local-1", "session_id": "s-1", "file_name": "big.bin", "size": 10 * 1024**3}
    defaults.update({"phase": "uploading", "percent": 3, "eta_seconds": 600, "offer_notification": True})
    defaults.update({"label": "Uploading", "actions": [], "banner": None, "saved": True})
    page.evaluate(PLAY_VIEW, {**defaults, **view})


# Records permission prompts and answers them as the test says (default: the user refuses).
COUNT_PERMISSION_ASKS = """
window.__asks = 0;
window.__answer = "denied";
Notification.requestPermission = async () => { window.__asks += 1; return window.__answer; };
"""

# Stands in for the browser's push service registration (unreachable offline): hands out the subscription the
# test set in window.__subscription, or fails like Chromium does when the push service cannot be reached.
FAKE_PUSH_SUBSCRIBE = """
window.__subscribeCalls = [];
PushManager.prototype.subscribe = function (options) {
  const key = new Uint8Array(options.applicationServerKey);
  window.__subscribeCalls.push({ userVisibleOnly: options.userVisibleOnly, key: btoa(String.fromCharCode(...key)) });
  if (window.__subscribeMode === "hang") return new Promise(() => {});
  if (!window.__subscription) {
    return Promise.reject(new DOMException("Registration failed - push service error", "AbortError"));
  }
  const json = window.__subscription;
  const subscription = { endpoint: json.endpoint, options: { applicationServerKey: key.buffer }, toJSON: () => json,
                         unsubscribe: async () => { window.__fakeSubscription = null; window.__unsubscribed = true;
                                                    return true; } };
  window.__fakeSubscription = subscription;
  return Promise.resolve(subscription);
};
PushManager.prototype.getSubscription = function () { return Promise.resolve(window.__fakeSubscription || null); };
"""


def b64url_to_b64(text: str) -> str:
    padded = text + "=" * (-len(text) % 4)
    return padded.replace("-", "+").replace("_", "/")


def page_that_can_subscribe(
    browser: Browser, server: LiveServer, push_service: PushService
) -> tuple[BrowserContext, Page]:
    """The app with notifications already allowed and a push service the test controls behind subscribe()."""
    context = browser.context
    assert context is not None
    context.grant_permissions(["notifications"], origin=server.base_url)
    context.add_init_script(FAKE_PUSH_SUBSCRIBE)
    page = open_page(context, server.base_url + "/")
    assert service_worker_ready(page) == server.base_url + "/"
    page.evaluate("(s) => { window.__subscription = s; }", push_service.subscription("chromium"))
    return context, page


# ---- the Service Worker ------------------------------------------------------------------------------------------


def test_the_service_worker_shows_what_the_server_pushed_and_a_click_leads_to_the_file(
    browser: Browser, server: LiveServer, push_service: PushService
) -> None:
    context, page = page_that_can_subscribe(browser, server, push_service)
    # The page subscribes (permission already granted: no prompt) and hands the subscription to the server.
    dispatch_view(page)
    expect(offer(page)).to_have_attribute("data-state", "push-on")
    with user_client(context, server) as client:
        public_key = client.get("/api/notifications/vapid-public-key").json()["public_key"]
        assert client.get("/api/profile").json()["push_subscriptions"] == 1
        calls = page.evaluate("window.__subscribeCalls")
        assert calls == [{"userVisibleOnly": True, "key": b64url_to_b64(public_key)}]

        # An upload of this user completes: the server pushes (signed, encrypted) to the push service ...
        push_service.vapid_public_key = public_key
        session = complete_upload(client, "report.pdf", b"hello world")
    [push] = push_service.wait_for(1)

    # ... which wakes the Service Worker with the decrypted message; it shows the notification.
    deliver_push(page, server.base_url, push.payload)
    [shown] = notifications(page)
    assert shown["title"] == "Upload complete"
    assert shown["body"] == "report.pdf (11 B) is uploaded."
    assert shown["data"]["url"] == f"/files/{session['session_id']}"
    assert shown["tag"] == f"upload-{session['session_id']}"

    # The click handler runs only on a real click (Chromium requires that activation to open or focus a window);
    # dispatched here it shows which way it went: no tab on the file's page -> open one ...
    [worker] = context.service_workers
    click = """async () => {
      const [notification] = await self.registration.getNotifications();
      let pending = null;
      const event = new NotificationEvent("notificationclick", { notification });
      Object.defineProperty(event, "waitUntil", { value: (p) => { pending = p; } });
      self.dispatchEvent(event);
      try { await pending; return "done"; } catch (error) { return error.message; }
    }"""
    assert worker.evaluate(click) == "Not allowed to open a window."
    # ... a tab already on it -> focus that one. The page it leads to shows the file to its owner.
    file_page = open_page(context, server.base_url + shown["data"]["url"])
    expect(file_page.locator("h1.file-name")).to_have_text("report.pdf")
    expect(file_page.locator(".file-facts")).to_have_attribute("data-status", "completed")
    deliver_push(page, server.base_url, push.payload)
    assert worker.evaluate(click) == "Not allowed to focus a window."


def event_delivered(server: LiveServer, session_id: str) -> bool:
    assert server.app is not None
    with server.app.state.database.sessions() as db:
        status = db.scalar(select(OutboxEvent.status).where(OutboxEvent.session_id == session_id))
    return bool(status == DeliveryStatus.DELIVERED.value)


def test_push_and_email_can_be_turned_off_and_nothing_more_is_sent(
    browser: Browser, server: LiveServer, push_service: PushService, smtp: SmtpSink
) -> None:
    context, page = page_that_can_subscribe(browser, server, push_service)
    dispatch_view(page)
    region = offer(page)
    expect(region).to_have_attribute("data-state", "push-on")

    region.get_by_role("button", name="Turn off").click()
    expect(region).to_have_attribute("data-state", "push-off")
    assert page.evaluate("window.__unsubscribed") is True, "the browser dropped its subscription too"
    region.get_by_role("button", name="Email me instead").click()
    region.get_by_label("Email address").fill("ana@example.com")
    region.get_by_role("button", name="Email me").click()
    expect(region).to_have_attribute("data-state", "email-on")
    region.get_by_role("button", name="Stop emails").click()
    expect(region).to_have_attribute("data-state", "email-off")

    with user_client(context, server) as client:
        profile = client.get("/api/profile").json()
        assert profile["push_subscriptions"] == 0 and profile["email_notifications"] is False
        quiet = complete_upload(client, "quiet.bin", b"not announced")
        # Channels are chosen when the completion event reaches the notifier: wait for that, then turn email back
        # on and finish a second upload. The one message that comes is about it alone, so the first upload
        # (finished while both channels were off) produced none.
        wait_for(lambda: event_delivered(server, quiet["session_id"]), 15, "the completion event to be handled")
        client.put("/api/profile", json={"email_notifications": True})
        loud = complete_upload(client, "loud.bin", b"announced")
    [mail] = smtp.wait_for(1)
    assert "loud.bin" in mail.body("plain") and "quiet.bin" not in mail.body("plain")
    # Once both events are delivered every consumer is done with them (the sink holds a mail before its sender
    # hears it was taken), so nothing more can come.
    wait_for(lambda: event_delivered(server, loud["session_id"]), 15, "the second completion event to be handled")
    assert len(smtp.messages) == 1
    assert push_service.pushes == []


def test_a_push_without_a_usable_payload_still_shows_a_notification_on_this_origin(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.context
    assert context is not None
    context.grant_permissions(["notifications"], origin=server.base_url)
    page = open_page(context, server.base_url + "/")
    service_worker_ready(page)
    deliver_push(page, server.base_url, {"title": "", "url": "https://evil.example/phish"})
    [shown] = notifications(page)
    assert shown["title"] == "Upload complete"
    assert shown["data"]["url"] == "/files", "a foreign URL is never opened"


# ---- the page: permission and the email fallback -----------------------------------------------------------------


def test_permission_is_asked_only_after_a_long_wait_view_and_refusal_offers_email(
    browser: Browser, server: LiveServer
) -> None:
    context = browser.context
    assert context is not None
    context.add_init_script(COUNT_PERMISSION_ASKS)
    page = open_page(context, server.base_url + "/")
    service_worker_ready(page)
    with user_client(context, server) as client:
        client.put("/api/profile", json={"email": "known@example.com"})
    region = offer(page)

    assert page.evaluate("window.__asks") == 0, "never on page load"
    dispatch_view(page, offer_notification=False, eta_seconds=20)
    expect(region).to_be_hidden()
    assert page.evaluate("window.__asks") == 0

    dispatch_view(page, offer_notification=True)
    expect(region).to_have_attribute("data-state", "push-offer")
    assert page.evaluate("window.__asks") == 0, "the offer is shown; the prompt waits for the user's click"

    page.get_by_role("button", name="Notify me in this browser").click()
    expect(region).to_have_attribute("data-state", "email-form")
    assert page.evaluate("window.__asks") == 1
    expect(region.locator(".notify-reason")).to_have_text("Browser notifications are turned off for this site.")
    email = region.get_by_label("Email address")
    expect(email).to_have_value("known@example.com")  # prefilled from the profile

    email.fill("not an address")
    email.evaluate("(input) => { input.type = 'text'; }")  # past the browser's own check, to reach the server's
    region.get_by_role("button", name="Email me").click()
    expect(region.locator(".notify-error")).to_have_text("That address doesn't look right.")

    email.fill("ana@example.com")
    region.get_by_role("button", name="Email me").click()
    expect(region).to_have_attribute("data-state", "email-on")
    # Nothing goes to a new address before its owner confirms it: the page says where the link went.
    expect(region).to_contain_text("We sent a link to ana@example.com: open it to confirm the address")
    with user_client(context, server) as client:
        profile = client.get("/api/profile").json()
    assert profile["email"] == "ana@example.com" and profile["email_notifications"] is True

    dispatch_view(page, local_id="local-2", offer_notification=True)
    assert page.evaluate("window.__asks") == 1, "asked once per page, not per upload"


@pytest.mark.parametrize("mode", ["fails", "hangs"])
def test_push_that_cannot_subscribe_falls_back_to_email(browser: Browser, server: LiveServer, mode: str) -> None:
    context = browser.context
    assert context is not None
    context.grant_permissions(["notifications"], origin=server.base_url)
    context.add_init_script(FAKE_PUSH_SUBSCRIBE)
    context.add_init_script("window.__notifyConfig = { subscribeTimeoutMs: 500 };")
    page = open_page(context, server.base_url + "/")
    service_worker_ready(page)
    if mode == "hangs":
        page.evaluate("window.__subscribeMode = 'hang'")
    dispatch_view(page)
    region = offer(page)
    expect(region).to_have_attribute("data-state", "email-form")
    expect(region.locator(".notify-reason")).to_have_text("Browser notifications aren't available here.")
    with user_client(context, server) as client:
        assert client.get("/api/profile").json()["push_subscriptions"] == 0


def test_a_known_address_is_used_when_the_browser_blocks_notifications(browser: Browser, server: LiveServer) -> None:
    context = browser.context
    assert context is not None
    page = open_page(context, server.base_url + "/")
    service_worker_ready(page)
    with user_client(context, server) as client:
        client.put("/api/profile", json={"email": "known@example.com"})
    page.evaluate("() => { Object.defineProperty(Notification, 'permission', { get: () => 'denied' }); }")
    dispatch_view(page)
    region = offer(page)
    expect(region).to_have_attribute("data-state", "email-on")
    region.get_by_role("button", name="Change").click()
    expect(region).to_have_attribute("data-state", "email-form")
    expect(region.get_by_label("Email address")).to_have_value("known@example.com")


def test_an_unanswered_offer_goes_away_when_its_upload_finishes(browser: Browser, server: LiveServer) -> None:
    context = browser.context
    assert context is not None
    context.add_init_script(COUNT_PERMISSION_ASKS)
    page = open_page(context, server.base_url + "/")
    # A host with notifications of its own turns the offer off: the card is there, no offer is made.
    page.locator(ELEMENT).evaluate("(el) => el.setAttribute('notifications', 'off')")
    dispatch_view(page, local_id="quiet", file_name="quiet.bin")
    expect(card(page, "quiet.bin")).to_be_visible()
    region = offer(page)
    expect(region).to_be_hidden()
    assert region.get_attribute("data-state") is None, "no offer was made"
    page.locator(ELEMENT).evaluate("(el) => el.removeAttribute('notifications')")

    dispatch_view(page, local_id="big")
    expect(region).to_have_attribute("data-state", "push-offer")
    dispatch_view(page, local_id="other", phase="completed", offer_notification=False)
    expect(region).to_be_visible()
    dispatch_view(page, local_id="big", phase="completed", offer_notification=False, eta_seconds=None)
    expect(region).to_be_hidden()
    assert page.evaluate("window.__asks") == 0


# ---- end to end: a real upload in a tab the user is not looking at ------------------------------------------------


def test_an_upload_finishing_in_a_hidden_tab_sends_an_email_and_a_push(
    runtime_built: None,
    browser: Browser,
    make_live_server: MakeLiveServer,
    seaweed: SeaweedService,
    smtp: SmtpSink,
    push_service: PushService,
    tmp_path: Path,
) -> None:
    context = browser.context
    assert context is not None
    with s3_proxy(seaweed.endpoint_url) as proxy:
        server = make_live_server(
            web_dir=WEB_DIR, runtime_dir=RUNTIME_DIR, s3_public_endpoint_url=proxy.url, **fast_settings(smtp.port, None)
        )
        context.grant_permissions(["notifications"], origin=server.base_url)
        page = open_page(context, server.base_url + "/")
        page.wait_for_selector('#engine[data-state="ready"]', timeout=60_000)
        with user_client(context, server) as client:
            push_service.vapid_public_key = client.get("/api/notifications/vapid-public-key").json()["public_key"]
            client.put("/api/profile", json={"email": "ana@example.com"})
            subscription = push_service.subscription("laptop")
            assert client.post("/api/notifications/push-subscriptions", json=subscription).is_success

        proxy.state.rate_bytes_per_s = 4e6  # about 1.6 s for the file: time to leave before it is done
        source = random_file(tmp_path / "contract-scan.pdf", 6 * MiB)
        pick(page, source)
        # The user moves on: another tab of the app comes to the front, and the one they picked the file in is
        # closed. (Headless Chromium reports every open tab as visible; closing it makes sure nothing in that page
        # takes part in finishing or announcing the upload. The SharedWorker lives on through the other tab.)
        elsewhere = open_page(context, server.base_url + "/projects")
        elsewhere.bring_to_front()
        card = elsewhere.locator(".upload", has_text="contract-scan.pdf")
        expect(card).to_be_visible()
        assert card.get_attribute("data-phase") != "completed", "the upload finished before the user left"
        page.close()

        [mail] = smtp.wait_for(1, timeout=120)
        assert mail.rcpt_tos == ["ana@example.com"]
        assert mail.message["Subject"] == "Uploaded: contract-scan.pdf"
        assert "6.3 MB" in mail.body("plain")
        [push] = push_service.wait_for(1, timeout=30)
        assert push.payload["body"] == "contract-scan.pdf (6.3 MB) is uploaded."
        session_id = push.payload["files"][0]["session_id"]
        assert f"/files/{session_id}?token=" in mail.body("plain")
        expect(card).to_have_attribute("data-phase", "completed")

        # The push, delivered as the browser's push service would, becomes the notification the user sees.
        deliver_push(elsewhere, server.base_url, push.payload)
        [shown] = notifications(elsewhere)
        assert shown["body"] == "contract-scan.pdf (6.3 MB) is uploaded."
        assert shown["data"]["url"] == f"/files/{session_id}"


def test_the_offer_is_styled_under_the_csp_and_nothing_is_blocked(browser: Browser, server: LiveServer) -> None:
    """Pages run under a CSP that allows styles and scripts from 'self' only: nothing the app does may be refused."""
    context = browser.context
    assert context is not None
    refused: list[str] = []
    page = context.new_page()
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(server.base_url + "/")
    service_worker_ready(page)
    dispatch_view(page, offer_notification=True)
    region = offer(page)
    expect(region).to_be_visible()
    assert region.evaluate("(el) => getComputedStyle(el).borderTopColor") == "rgb(201, 215, 240)", "styled"
    assert refused == [], refused
    page.locator(ELEMENT).evaluate("(el) => el.setAttribute('notifications', 'off')")  # the host turns it off
    expect(region).to_be_hidden()

