#!/usr/bin/python3
"""A minimal WebKitGTK browser for WebKitWebDriver (run by the system Python, which has PyGObject).

Debian's MiniBrowser always uses a throw-away profile under automation, where ``navigator.storage.getDirectory()``
fails, so OPFS (and resuming after every page closed) cannot be tested with it. This one keeps its website data in
``--data-dir``, allows automation, turns on the storage features the upload engine uses, and injects
``--user-script`` at document start in every page (the tests record the card labels with it).

WebKitWebDriver starts it as ``webkit_browser.py --automation [args]``.
"""

from __future__ import annotations

import argparse
import os
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import Gtk, WebKit2  # noqa: E402

APP_NAME = "smartcat-test-browser"
FEATURES = {"StorageAPI", "StorageAPIEstimate", "FileSystem", "FileSystemWritableStream", "AccessHandle"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--automation", action="store_true")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--user-script")
    args, _ = parser.parse_known_args()
    data = os.path.abspath(args.data_dir)
    manager = WebKit2.WebsiteDataManager(
        base_data_directory=os.path.join(data, "data"), base_cache_directory=os.path.join(data, "cache")
    )
    context = WebKit2.WebContext(website_data_manager=manager)
    context.set_automation_allowed(args.automation)

    settings = WebKit2.Settings()
    features = WebKit2.Settings.get_all_features()
    enabled = set()
    for i in range(features.get_length()):
        feature = features.get(i)
        if feature.get_identifier() in FEATURES:
            settings.set_feature_enabled(feature, True)
            enabled.add(feature.get_identifier())
    if enabled != FEATURES:
        sys.exit(f"this WebKitGTK lacks the features {sorted(FEATURES - enabled)}")

    script = None
    if args.user_script:
        with open(args.user_script, encoding="utf-8") as f:
            script = WebKit2.UserScript(
                f.read(), WebKit2.UserContentInjectedFrames.TOP_FRAME,
                WebKit2.UserScriptInjectionTime.START, None, None,
            )
    windows: set[Gtk.Window] = set()

    def new_view() -> WebKit2.WebView:
        content = WebKit2.UserContentManager()
        if script is not None:
            content.add_script(script)
        view = WebKit2.WebView(
            web_context=context, settings=settings, user_content_manager=content,
            is_controlled_by_automation=args.automation,
        )
        window = Gtk.Window()
        window.set_default_size(1100, 800)
        window.add(view)
        windows.add(window)

        def closed(_view: WebKit2.WebView) -> None:
            windows.discard(window)
            window.destroy()
            if not windows:
                Gtk.main_quit()

        view.connect("close", closed)
        window.show_all()
        return view

    def automation_started(_context: WebKit2.WebContext, session: WebKit2.AutomationSession) -> None:
        info = WebKit2.ApplicationInfo()
        info.set_name(APP_NAME)
        # WebKitWebDriver reports this as browserVersion: make it the engine's.
        info.set_version(WebKit2.get_major_version(), WebKit2.get_minor_version(), WebKit2.get_micro_version())
        session.set_application_info(info)
        session.connect("create-web-view", lambda _session: new_view())

    context.connect("automation-started", automation_started)
    if not args.automation:
        new_view().load_uri("about:blank")
    Gtk.main()


if __name__ == "__main__":
    main()
