"""
The chat page in real headless Chromium (Debian's, driven by Playwright),
against the real ``twistd -n chat --web``.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    expect,
    sync_playwright,
)

from .support.admin import add_account
from .support.net import free_port
from .support.proc import Twistd, User, guest, logged_in, registered

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
TIMEOUT_MS = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


class Server:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port, self.web = free_port(), free_port()
        self.process: Twistd | None = None
        self.extra: list[str] = []
        self.db = tmp_path / "history.sqlite3"

    def start(self) -> None:
        args = [
            *self.extra,
            "--port",
            f"tcp:{self.port}:interface=127.0.0.1",
            "--web",
            f"tcp:{self.web}:interface=127.0.0.1",
            "--db",
            str(self.db),
        ]
        self.process = Twistd(self.tmp_path, args)
        self.process.wait_for_port(self.web)

    def stop(self) -> None:
        assert self.process is not None
        self.process.process.send_signal(signal.SIGTERM)
        assert self.process.stopped() == 0
        self.process.__exit__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web}/"


@pytest.fixture
def unstarted(tmp_path: Path) -> Iterator[Server]:
    """A server to set up (``extra`` options, accounts) before it starts."""
    server = Server(tmp_path)
    yield server
    if server.process is not None:
        server.process.__exit__()


@pytest.fixture
def server(unstarted: Server) -> Server:
    unstarted.start()
    return unstarted


def open_chat(
    browser: Browser | BrowserContext,
    server: Server,
    nick: str,
    width: int = 900,
    height: int = 600,
) -> Page:
    """A page (in ``browser``, or a context of its) chatting as ``nick``."""
    page = browser.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.fill("#nick", nick)
    page.press("#nick", "Enter")
    expect(page.locator("#chat")).to_be_visible()
    return page


def asked_password(browser: Browser, server: Server, account: str) -> Page:
    """A page that gave the name of ``account`` and is asked its password."""
    page = browser.new_page(viewport={"width": 900, "height": 600})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.fill("#nick", account)
    page.press("#nick", "Enter")
    expect(page.locator("#password-label")).to_have_text(f"Password for {account}")
    return page


def say(page: Page, text: str) -> None:
    page.fill("#line", text)
    page.press("#line", "Enter")


def messages(page: Page) -> list[str]:
    return page.locator("#messages li").all_inner_texts()


def test_two_pages_and_a_tcp_user_chat(browser: Browser, server: Server) -> None:
    ann = open_chat(browser, server, "ann")
    ben = open_chat(browser, server, "ben")
    tcp = guest(server.port, "carl")
    say(ann, "hello from ann")
    expect(ben.locator("#messages")).to_contain_text("<ann> hello from ann")
    assert tcp.until("<ann> hello from ann")
    tcp.send("hello from the terminal")
    expect(ann.locator("#messages")).to_contain_text("<carl> hello from the terminal")
    expect(ben.locator("#messages")).to_contain_text("<carl> hello from the terminal")
    say(ben, "/me waves")
    assert tcp.until("* ben waves")
    expect(ann.locator("#users")).to_contain_text("carl")
    expect(ann.locator("#rooms")).to_contain_text("#lobby (3)")
    ARTIFACTS.mkdir(exist_ok=True)
    ann.screenshot(path=str(ARTIFACTS / "chat-page.png"))
    # Readable on a phone: nothing wider than the screen.
    ann.set_viewport_size({"width": 390, "height": 760})
    width = ann.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    expect(ann.locator("#line")).to_be_visible()
    ann.screenshot(path=str(ARTIFACTS / "chat-page-phone.png"))


def test_a_taken_nickname_is_shown_inline(browser: Browser, server: Server) -> None:
    open_chat(browser, server, "dora")
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.fill("#nick", "DORA")
    page.press("#nick", "Enter")
    expect(page.locator("#login-error")).to_have_text("nickname DORA is already taken")
    expect(page.locator("#login")).to_be_visible()
    page.fill("#nick", "dora2")
    page.press("#nick", "Enter")
    expect(page.locator("#chat")).to_be_visible()


def test_switching_rooms(browser: Browser, server: Server) -> None:
    eve = open_chat(browser, server, "eve")
    fay = open_chat(browser, server, "fay")
    fay.fill("#new-room-name", "games")
    fay.press("#new-room-name", "Enter")
    expect(fay.locator("#room-name")).to_have_text("#games")
    expect(eve.locator("#messages")).to_contain_text("fay left for #games")
    say(fay, "only in games")
    say(eve, "only in the lobby")
    expect(eve.locator("#messages")).to_contain_text("<eve> only in the lobby")
    expect(fay.locator("#messages")).to_contain_text("<fay> only in games")
    assert not any("only in games" in m for m in messages(eve))
    assert not any("only in the lobby" in m for m in messages(fay))
    fay.locator("#rooms li", has_text="#lobby").click()
    expect(fay.locator("#room-name")).to_have_text("#lobby")


def test_history_appears_on_join(browser: Browser, server: Server) -> None:
    gus = open_chat(browser, server, "gus")
    say(gus, "said before you came")
    expect(gus.locator("#messages")).to_contain_text("said before you came")
    hal = open_chat(browser, server, "hal")
    expect(hal.locator("#messages li.history")).to_contain_text(
        "<gus> said before you came"
    )


def test_history_asked_for_goes_in_its_place(
    browser: Browser, unstarted: Server
) -> None:
    server = unstarted
    server.extra = ["--history-replay", "2"]
    server.start()
    tcp = guest(server.port, "kai")
    seen = guest(server.port, "max")
    for n in range(1, 6):
        tcp.send(f"line {n}")
    assert seen.until("<kai> line 5")  # all five kept before lea comes
    lea = open_chat(browser, server, "lea")
    replayed = lea.locator("#messages li.history")
    expect(replayed).to_have_count(2)  # lines 4 and 5
    say(lea, "/history 5")
    expect(replayed).to_have_count(5)
    lines = [m for m in messages(lea) if "<kai>" in m]
    assert [m[m.index("<") :] for m in lines] == [
        f"<kai> line {n}" for n in range(1, 6)
    ], lines
    say(lea, "/history 5")  # nothing new: nothing twice
    tcp.send("line 6")
    expect(lea.locator("#messages")).to_contain_text("<kai> line 6")
    assert len([m for m in messages(lea) if "<kai>" in m]) == 6


def test_markup_is_shown_as_text(browser: Browser, server: Server) -> None:
    ivy = open_chat(browser, server, "ivy")
    jan = open_chat(browser, server, "jan")
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    jan.on("dialog", on_dialog)
    attack = "<img src=x onerror=alert(1)>"
    say(ivy, attack)
    expect(jan.locator("#messages")).to_contain_text("<ivy> " + attack)
    assert jan.locator("#messages img").count() == 0
    assert dialogs == []


def test_the_page_reconnects_after_a_restart(browser: Browser, server: Server) -> None:
    kim = open_chat(browser, server, "kim")
    server.stop()
    expect(kim.locator("#status")).to_contain_text("reconnecting")
    server.start()
    expect(kim.locator("#status")).to_have_text("connected", timeout=20_000)
    tcp = guest(server.port, "lee")
    # Registered again, under the same name.
    say(kim, "back again")
    assert tcp.until("<kim> back again")


def test_lines_typed_while_disconnected_go_out_once_back(
    browser: Browser, server: Server
) -> None:
    kim = open_chat(browser, server, "kim")
    server.stop()
    expect(kim.locator("#status")).to_contain_text("reconnecting")
    say(kim, "typed while away")
    say(kim, "/me waves meanwhile")
    # Shown as waiting, not as sent.
    expect(kim.locator("#messages li.waiting")).to_have_count(2)
    expect(kim.locator("#messages li.waiting").first).to_contain_text(
        "typed while away (waiting for the connection)"
    )
    server.start()
    expect(kim.locator("#status")).to_have_text("connected", timeout=20_000)
    # Sent once registered again, in order: live or, if lee came later, replayed.
    lee = guest(server.port, "lee")
    seen = lee.line()
    while not seen.endswith("<kim> typed while away"):
        seen = lee.line()
    assert lee.line().endswith("* kim waves meanwhile")
    expect(kim.locator("#messages li.waiting")).to_have_count(0)
    expect(kim.locator("#messages li.own")).to_have_count(2)
    # /quit while away is not queued: the page stops trying at once.
    server.stop()
    expect(kim.locator("#status")).to_contain_text("reconnecting")
    say(kim, "/quit")
    expect(kim.locator("#login-error")).to_have_text("You left the chat.")
    expect(kim.locator("#status")).to_have_text("disconnected")
    assert kim.evaluate("state.reconnect") is None  # no attempt to come


def test_quit_leaves_until_the_user_joins_again(
    browser: Browser, server: Server
) -> None:
    tcp = guest(server.port, "ned")
    oda = open_chat(browser, server, "oda")
    assert tcp.until("*** oda joined (2 here)")
    say(oda, "/quit see you")
    assert tcp.until("*** oda left (1 here): see you")
    expect(oda.locator("#status")).to_have_text("disconnected")
    expect(oda.locator("#login-error")).to_have_text("You left the chat.")
    expect(oda.locator("#nick")).to_be_visible()
    # Back only when asked: the next line ned reads is oda's return.
    oda.fill("#nick", "oda")
    oda.press("#nick", "Enter")
    expect(oda.locator("#status")).to_have_text("connected")
    assert tcp.line() == "*** oda joined (2 here)"
    say(oda, "back")
    assert tcp.until("<oda> back")


def test_a_killed_page_does_not_come_back_on_its_own(
    browser: Browser, unstarted: Server
) -> None:
    server = unstarted
    add_account(["--db", str(server.db)], "rhea", "rhea-secret", operator=True)
    server.start()
    rhea = logged_in(server.port, "rhea", "rhea-secret")
    pia = open_chat(browser, server, "pia")
    assert rhea.until("*** pia joined (2 here)")
    rhea.send("/kill pia enough")
    assert rhea.until("*** pia was disconnected by rhea: enough")
    expect(pia.locator("#login-error")).to_have_text(
        "! you were disconnected by rhea: enough"
    )
    # Not "disconnected — reconnecting in 1 s": pia is back only if she asks.
    expect(pia.locator("#status")).to_have_text("disconnected")
    expect(pia.locator("#nick")).to_be_visible()


def test_a_page_logged_in_elsewhere_does_not_take_its_account_back(
    browser: Browser, unstarted: Server
) -> None:
    server = unstarted
    add_account(["--db", str(server.db)], "tess", "tess-secret")
    server.start()
    first = asked_password(browser, server, "tess")
    first.fill("#password", "tess-secret")
    first.press("#password", "Enter")
    expect(first.locator("#chat")).to_be_visible()
    # The same account from a second tab (or device) takes the name over.
    second = asked_password(browser, server, "tess")
    second.fill("#password", "tess-secret")
    second.press("#password", "Enter")
    expect(first.locator("#login-error")).to_have_text(
        "tess logged in from another connection; closing this one"
    )
    expect(first.locator("#status")).to_have_text("disconnected")
    # Not back on its own (it would take the name from the second, and so on).
    assert first.evaluate("state.reconnect") is None
    expect(second.locator("#status")).to_have_text("connected")
    say(second, "only here")
    expect(second.locator("#messages li.own")).to_have_text(re.compile("only here"))


def test_a_page_closed_as_idle_waits_for_its_user(
    browser: Browser, unstarted: Server
) -> None:
    unstarted.extra = ["--idle-timeout", "2"]
    unstarted.start()
    ivy = open_chat(browser, unstarted, "ivy")
    expect(ivy.locator("#login-error")).to_have_text("! idle for 2 seconds; closing")
    expect(ivy.locator("#status")).to_have_text("disconnected")
    # Coming back at once would only be closed again, for as long as the
    # user is away: the page waits for them to join again.
    assert ivy.evaluate("state.reconnect") is None
    expect(ivy.locator("#nick")).to_have_value("ivy")


def test_a_password_set_in_the_page_logs_it_in_again_after_a_restart(
    browser: Browser, server: Server
) -> None:
    kit = open_chat(browser, server, "kit")
    say(kit, "hello")
    say(kit, "/register kit-secret-1")
    expect(kit.locator("#messages")).to_contain_text("kit is now registered")
    # Up gives back the last line typed, but not one holding a password.
    kit.press("#line", "ArrowUp")
    expect(kit.locator("#line")).to_have_value("")
    server.stop()
    expect(kit.locator("#status")).to_contain_text("reconnecting")
    server.start()
    expect(kit.locator("#status")).to_have_text("connected", timeout=20_000)
    expect(kit.locator("#chat")).to_be_visible()
    expect(kit.locator("#password-row")).to_be_hidden()
    tcp = guest(server.port, "lou")
    say(kit, "back with my account")
    assert tcp.until("<kit> back with my account")


def test_a_foreign_origin_is_refused(browser: Browser, server: Server) -> None:
    # A page from another origin: another port on the same host.
    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), _BlankPage)
    threading.Thread(target=elsewhere.serve_forever, daemon=True).start()
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"http://127.0.0.1:{elsewhere.server_address[1]}/")
    outcome = page.evaluate(
        """url => new Promise(resolve => {
            const ws = new WebSocket(url);
            ws.onopen = () => resolve("open");
            ws.onerror = () => resolve("refused");
        })""",
        f"ws://127.0.0.1:{server.web}/ws",
    )
    elsewhere.shutdown()
    assert outcome == "refused"
    assert server.process is not None
    line = server.process.wait_for_log("refused a WebSocket")
    assert f"from origin http://127.0.0.1:{elsewhere.server_address[1]}" in line


class _BlankPage(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>elsewhere</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_registered_name_asks_its_password(browser: Browser, server: Server) -> None:
    tcp = registered(server.port, "dana", "dana-secret")
    page = asked_password(browser, server, "dana")
    assert page.get_attribute("#password", "type") == "password"
    page.fill("#password", "not-it-at-all")
    page.press("#password", "Enter")
    expect(page.locator("#login-error")).to_have_text("wrong password for dana")
    # Asked again for the password, not for a nickname.
    expect(page.locator("#password-row")).to_be_visible()
    expect(page.locator("#password-label")).to_have_text("Password for dana")
    page.fill("#password", "dana-secret")
    page.press("#password", "Enter")
    expect(page.locator("#chat")).to_be_visible()
    # The old connection was taken over; the password is stored nowhere.
    assert tcp.until("*** dana logged in from another connection; closing this one")
    stored = page.evaluate("JSON.stringify(localStorage)")
    assert "dana-secret" not in stored
    assert '"twchat-nick":"dana"' in stored


def test_another_name_at_the_password_prompt_takes_the_account_back(
    browser: Browser, server: Server
) -> None:
    registered(server.port, "erin", "erin-secret")
    page = asked_password(browser, server, "erin")
    # Not erin after all: another name, no password.
    page.fill("#nick", "frank")
    page.press("#nick", "Enter")
    expect(page.locator("#chat")).to_be_visible()
    expect(page.locator("#messages")).to_contain_text("Welcome, frank!")
    expect(page.locator("#password-row")).to_be_hidden()


def test_a_nick_to_an_account_can_be_taken_back_with_no_password(
    browser: Browser, server: Server
) -> None:
    registered(server.port, "hana", "hana-secret")
    page = open_chat(browser, server, "gus")
    say(page, "/nick hana")
    expect(page.locator("#password-label")).to_have_text("Password for hana")
    expect(page.locator("#chat")).to_be_hidden()
    page.press("#password", "Enter")  # left empty: not hana after all
    expect(page.locator("#chat")).to_be_visible()
    expect(page.locator("#messages")).to_contain_text(
        "no password given: you are still gus"
    )
    tcp = guest(server.port, "ida")
    say(page, "still gus here")
    assert tcp.until("<gus> still gus here")


def test_a_kicked_browser_user_sees_why_and_where_they_are(
    browser: Browser, server: Server
) -> None:
    op = registered(server.port, "olga", "olga-secret")
    op.send("/join den")
    assert op.until("*** olga founded #den and is its operator")
    page = open_chat(browser, server, "pat")
    say(page, "/join den")
    expect(page.locator("#room-name")).to_have_text("#den")
    assert op.until("*** pat joined from #lobby (2 here)")
    op.send("/kick pat calm down")
    kick = page.locator("#messages li.moderation.kick")
    expect(kick).to_contain_text("pat was kicked by olga: calm down")
    expect(page.locator("#messages li.sent-out")).to_contain_text(
        "you were kicked from #den by olga: calm down"
    )
    # Back in the default room, and the page knows it.
    expect(page.locator("#room-name")).to_have_text("#lobby")
    op.send("/ban account:nobody 1h")
    say(page, "/join den")
    expect(page.locator("#room-name")).to_have_text("#den")
    op.send("/mute pat 10m")
    expect(page.locator("#messages li.moderation.mute")).to_contain_text(
        "olga muted pat in #den for 10m"
    )
    say(page, "can I talk?")
    expect(page.locator("#messages li.error").last).to_contain_text(
        "you are muted in #den for"
    )
    page.screenshot(path=str(ARTIFACTS / "moderation.png"))


def test_operators_are_marked_and_act_on_people_from_the_list(
    browser: Browser, server: Server
) -> None:
    setup = registered(server.port, "olga", "olga-secret")
    setup.send("/quit")
    page = browser.new_page(viewport={"width": 900, "height": 600})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.fill("#nick", "olga")
    page.press("#nick", "Enter")
    page.fill("#password", "olga-secret")
    page.press("#password", "Enter")
    expect(page.locator("#chat")).to_be_visible()
    say(page, "/join den")
    expect(page.locator("#messages")).to_contain_text(
        "olga founded #den and is its operator"
    )
    expect(page.locator("#users li.operator")).to_have_text("@olga")
    pat = guest(server.port, "pat")
    pat.send("/join den")
    pat.until("*** #den has 2 users: olga, pat")
    person = page.locator("#users li", has_text="pat")
    expect(person.locator("button.person-action")).to_have_count(3)
    # A guest sees no buttons: only operators get them.
    assert page.locator("#users li.operator button").count() == 0
    page.screenshot(path=str(ARTIFACTS / "operator.png"))
    person.locator("button.mute").click()
    assert pat.until("*** olga muted pat in #den for 10m")
    # A ban is only written out, to be completed: nothing is sent yet.
    person.locator("button.ban").click()
    expect(page.locator("#line")).to_have_value("/ban pat ")
    expect(page.locator("#line")).to_be_focused()
    person.locator("button.kick").click()
    seen = pat.until("! you were kicked from #den by olga")
    assert not [line for line in seen if "ban" in line], seen
    expect(page.locator("#users li", has_text="pat")).to_have_count(0)
    page.press("#line", "End")  # the kick button took the focus
    page.locator("#line").press_sequentially("1h spamming")
    page.press("#line", "Enter")
    expect(page.locator("#messages li.moderation.ban")).to_contain_text("1h: spamming")


def test_the_login_screen_shows_only_the_login_form(
    browser: Browser, server: Server
) -> None:
    page = browser.new_page(viewport={"width": 900, "height": 600})
    page.set_default_timeout(TIMEOUT_MS)
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status >= 400 else None)
    page.goto(server.url)
    expect(page.locator("#login")).to_be_visible()
    for hidden in ("#chat", "#line", "#messages", "#sidebar", "#drawer-toggle"):
        expect(page.locator(hidden)).to_be_hidden()
    page.fill("#nick", "quinn")
    page.press("#nick", "Enter")
    expect(page.locator("#line")).to_be_visible()
    expect(page.locator("#login")).to_be_hidden()
    assert not any("<> " in m for m in messages(page))  # no phantom line
    # The page's icon is there: nothing it asked for was missing.
    assert page.locator("link[rel=icon]").get_attribute("href") == "/static/favicon.svg"
    icon = page.request.get(server.url + "static/favicon.svg")
    assert icon.status == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert missing == []


def test_each_room_has_its_own_view(browser: Browser, server: Server) -> None:
    rae = open_chat(browser, server, "rae")
    say(rae, "a lobby line")
    say(rae, "/join games")
    expect(rae.locator("#room-name")).to_have_text("#games")
    say(rae, "a games line")
    expect(rae.locator("#messages")).to_contain_text("<rae> a games line")
    assert not any("a lobby line" in m for m in messages(rae))
    rae.locator("#rooms li", has_text="#lobby").click()
    expect(rae.locator("#room-name")).to_have_text("#lobby")
    expect(rae.locator("#messages")).to_contain_text("<rae> a lobby line")
    assert not any("a games line" in m for m in messages(rae))
    rae.fill("#new-room-name", "games")  # empty, it is no longer listed
    rae.press("#new-room-name", "Enter")
    expect(rae.locator("#room-name")).to_have_text("#games")
    # Its lines were kept, and the server's replay does not double them.
    expect(rae.locator("#messages li.history")).to_have_count(0)
    assert sum("a games line" in m for m in messages(rae)) == 1


def test_private_conversations_are_apart_with_an_unread_mark(
    browser: Browser, server: Server
) -> None:
    sam = open_chat(browser, server, "sam")
    tcp = guest(server.port, "tom")
    tcp.send("/msg sam psst, a secret")
    conversation = sam.locator("#conversations li", has_text="tom")
    expect(conversation.locator(".badge")).to_have_text("1")
    assert not any("psst" in m for m in messages(sam))  # not in the room
    conversation.click()
    expect(sam.locator("#room-name")).to_have_text("private: tom")
    expect(sam.locator("#messages")).to_contain_text("*tom* psst, a secret")
    expect(conversation.locator(".badge")).to_have_count(0)
    say(sam, "only for you")
    assert tcp.until("*sam* only for you")
    expect(sam.locator("#messages")).to_contain_text("-> *tom* only for you")
    sam.locator("#room-name").click()  # back to the room
    expect(sam.locator("#room-name")).to_have_text("#lobby")
    assert not any("only for you" in m for m in messages(sam))


def test_a_private_conversation_follows_a_new_nickname(
    browser: Browser, server: Server
) -> None:
    vic = open_chat(browser, server, "vic")
    tcp = guest(server.port, "wes")
    tcp.send("/msg vic are you there?")
    vic.locator("#conversations li", has_text="wes").click()
    expect(vic.locator("#messages")).to_contain_text("*wes* are you there?")
    tcp.send("/nick wesley")
    expect(vic.locator("#room-name")).to_have_text("private: wesley")
    expect(vic.locator("#messages")).to_contain_text("wes is now known as wesley")
    expect(vic.locator("#conversations li")).to_have_text(["wesley"])
    say(vic, "still here")
    assert tcp.until("*vic* still here")
    expect(vic.locator("#messages")).to_contain_text("-> *wesley* still here")
    tcp.send("/msg vic good")  # the same view, not a new one
    expect(vic.locator("#messages")).to_contain_text("*wesley* good")
    expect(vic.locator("#conversations li")).to_have_count(1)


def test_a_line_the_server_refuses_comes_back_to_be_edited(
    browser: Browser, server: Server
) -> None:
    yul = open_chat(browser, server, "yul")
    tcp = guest(server.port, "zed")
    long = "word " * 120  # over --max-line's 512 bytes
    say(yul, long)
    expect(yul.locator("#messages li.error")).to_contain_text("line too long")
    expect(yul.locator("#messages li.own.unsent")).to_contain_text("(not sent)")
    expect(yul.locator("#line")).to_have_value(long)
    say(yul, "short now")
    assert tcp.until("<yul> short now")
    expect(yul.locator("#messages li.own").last).not_to_have_class("own unsent")
    # In a private conversation, to someone who has gone: back in the box.
    tcp.send("/msg yul bye")
    yul.locator("#conversations li", has_text="zed").click()
    tcp.send("/quit")
    expect(yul.locator("#users")).not_to_contain_text("zed")
    say(yul, "wait, one more thing")
    expect(yul.locator("#messages")).to_contain_text("! no such user: zed")
    expect(yul.locator("#line")).to_have_value("wait, one more thing")
    # Other errors leave the box alone.
    yul.fill("#line", "")
    say(yul, "/nosuch")
    expect(yul.locator("#messages")).to_contain_text("unknown command /nosuch")
    expect(yul.locator("#line")).to_have_value("")


def test_a_hidden_tab_counts_what_others_said_in_its_title(
    browser: Browser, server: Server
) -> None:
    ada = open_chat(browser, server, "ada")
    tcp = guest(server.port, "bea")
    expect(ada).to_have_title("#lobby — twchat")
    _hidden(ada, True)
    tcp.send("one")
    tcp.send("/me two")
    expect(ada).to_have_title("(2) #lobby — twchat")
    tcp.send("ada, three")  # names her
    expect(ada).to_have_title("(3!) #lobby — twchat")
    _hidden(ada, False)
    expect(ada).to_have_title("#lobby — twchat")
    _hidden(ada, True)
    tcp.send("/msg ada psst")
    expect(ada).to_have_title("(1!) #lobby — twchat")
    say(ada, "my own line")  # what she says herself is not news
    tcp.send("/join elsewhere")  # nor are comings and goings
    assert tcp.until("*** #elsewhere has 1 user: bea")
    tcp.send("/msg ada four")
    expect(ada).to_have_title("(2!) #lobby — twchat")


def _hidden(page: Page, hidden: bool) -> None:
    """The tab hidden or shown again, as the browser tells the page."""
    page.evaluate(
        """(hidden) => {
            const property = {value: hidden, configurable: true};
            Object.defineProperty(document, "hidden", property);
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        hidden,
    )


def test_links_and_nickname_colours(browser: Browser, server: Server) -> None:
    uma = open_chat(browser, server, "uma")
    vic = open_chat(browser, server, "vic")
    say(uma, "see https://example.com/a?b=1, not javascript:alert(1)")
    line = vic.locator("#messages li", has_text="see https://example.com")
    link = line.locator("a")
    expect(link).to_have_count(1)
    assert link.get_attribute("href") == "https://example.com/a?b=1"
    assert link.get_attribute("rel") == "noopener noreferrer"
    assert link.get_attribute("target") == "_blank"
    expect(line).to_contain_text("not javascript:alert(1)")
    say(vic, "hello uma")
    colour = "el => getComputedStyle(el).color"
    mine = vic.locator("#messages li .nick", has_text="<vic>").first.evaluate(colour)
    theirs = vic.locator("#messages li .nick", has_text="<uma>").first.evaluate(colour)
    assert mine != theirs
    # The same name has the same colour in the people list.
    person = vic.locator("#users .person", has_text="uma").evaluate(colour)
    assert person == theirs


def test_a_dark_theme_follows_the_system(browser: Browser, server: Server) -> None:
    context = browser.new_context(color_scheme="dark")
    page = open_chat(context, server, "wes")
    say(page, "in the dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    red, green, blue = (int(x) for x in background[4:-1].split(",")[:3])
    assert red + green + blue < 3 * 60, background
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-page-dark.png"))
    context.close()


def test_on_a_phone_rooms_and_people_are_one_tap_away(
    browser: Browser, server: Server
) -> None:
    page = open_chat(browser, server, "xia", width=390, height=760)
    say(page, "on the go")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    box = page.locator("#sidebar").bounding_box()
    assert box is not None
    assert box["x"] >= 390  # off screen until asked
    page.locator("#drawer-toggle").click()
    _until_box(page, "#sidebar", lambda box: box["x"] + box["width"] <= 391)
    expect(page.locator("#rooms")).to_contain_text("#lobby")
    expect(page.locator("#users")).to_contain_text("xia")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat-page-phone-drawer.png"))
    page.locator("#new-room-name").fill("trains")
    page.press("#new-room-name", "Enter")
    expect(page.locator("#room-name")).to_have_text("#trains")
    _until_box(page, "#sidebar", lambda box: box["x"] >= 389)  # closed again


def test_a_typed_who_or_rooms_is_answered_in_the_conversation(
    browser: Browser, server: Server
) -> None:
    # On a phone the lists these fill are behind the drawer.
    page = open_chat(browser, server, "yan", width=390, height=760)
    zoe = guest(server.port, "zoe")
    expect(page.locator("#messages")).to_contain_text("zoe joined")
    say(page, "/who")
    expect(page.locator("#messages")).to_contain_text("#lobby has 2 users: yan, zoe")
    say(page, "/rooms")
    expect(page.locator("#messages")).to_contain_text("1 room:")
    expect(page.locator("#messages")).to_contain_text("#lobby (2)")
    # Once each: the page's own /who and /rooms (on arriving) add no lines.
    said = messages(page)
    assert len([m for m in said if "#lobby has" in m]) == 1, said
    assert len([m for m in said if "room:" in m]) == 1, said
    zoe.send("/join quiet")
    expect(page.locator("#messages")).to_contain_text("zoe left for #quiet")
    say(page, "/who quiet")
    expect(page.locator("#messages")).to_contain_text("#quiet has 1 user: zoe")
    say(page, "/join quiet")
    expect(page.locator("#room-name")).to_have_text("#quiet")
    say(page, "/who lobby")
    expect(page.locator("#messages")).to_contain_text("Nobody is in #lobby")
    said = messages(page)  # entering #quiet told its list, not in words
    assert not [m for m in said if "#quiet has" in m], said


def _until_box(page: Page, selector: str, check: Callable[[Any], bool]) -> None:
    """Wait until the element's box passes ``check`` (a transition runs)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        box = page.locator(selector).bounding_box()
        if box is not None and check(box):
            return
        assert time.monotonic() < deadline, box
        page.wait_for_timeout(50)


def test_the_page_resumes_in_its_room_without_duplicates(
    browser: Browser, server: Server
) -> None:
    kay = open_chat(browser, server, "kay")
    say(kay, "/join games")
    expect(kay.locator("#room-name")).to_have_text("#games")
    tcp = guest(server.port, "len")
    tcp.send("/join games")
    tcp.until("*** #games has 2 users: kay, len")
    tcp.send("before the restart")
    expect(kay.locator("#messages")).to_contain_text("<len> before the restart")
    server.stop()
    expect(kay.locator("#status")).to_contain_text("reconnecting")
    server.start()
    tcp = guest(server.port, "len")
    tcp.send("/join games")
    tcp.line()
    tcp.send("while kay was away")
    expect(kay.locator("#status")).to_have_text("connected", timeout=20_000)
    expect(kay.locator("#room-name")).to_have_text("#games")
    expect(kay.locator("#messages")).to_contain_text("while kay was away")
    tcp.send("after kay came back")
    expect(kay.locator("#messages")).to_contain_text("<len> after kay came back")
    shown = messages(kay)
    for text in ("before the restart", "while kay was away", "after kay came back"):
        assert sum(text in m for m in shown) == 1, shown


def test_a_reloaded_page_is_back_in_its_room(browser: Browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 600})
    kim = open_chat(context, server, "kim")
    say(kim, "/join games")
    expect(kim.locator("#room-name")).to_have_text("#games")
    tcp = guest(server.port, "lou")
    tcp.send("/join games")
    assert tcp.until("*** #games has 2 users: kim, lou")
    tcp.send("said before the reload")
    expect(kim.locator("#messages")).to_contain_text("<lou> said before the reload")
    kim.reload()
    # Nothing to type: the tab's name and room are taken up again.
    expect(kim.locator("#room-name")).to_have_text("#games")
    expect(kim.locator("#status")).to_have_text("connected")
    assert tcp.until("*** kim joined from #lobby (2 here)")
    expect(kim.locator("#messages li.history")).to_contain_text(
        "<lou> said before the reload"
    )
    tcp.send("after the reload")
    expect(kim.locator("#messages")).to_contain_text("<lou> after the reload")
    # Another tab of the same browser starts at the form: it is not kim.
    other = context.new_page()
    other.goto(server.url)
    expect(other.locator("#login")).to_be_visible()
    expect(other.locator("#nick")).to_have_value("kim")  # offered, not used
    # Left on purpose, a reload stays out.
    say(kim, "/quit")
    assert tcp.until("*** kim left (1 here)")
    kim.reload()
    expect(kim.locator("#login")).to_be_visible()  # the prompt, not answered
    tcp.send("/who")
    assert tcp.line() == "*** #games has 1 user: lou"
    context.close()


def test_a_page_back_waits_for_its_name_still_held(
    browser: Browser, server: Server
) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 600})
    mia = context.new_page()
    mia.set_default_timeout(TIMEOUT_MS)
    mia.clock.install()
    mia.goto(server.url)
    mia.fill("#nick", "mia")
    mia.press("#nick", "Enter")
    expect(mia.locator("#chat")).to_be_visible()
    # From here the page's timers run only when the test says.
    mia.clock.pause_at(mia.evaluate("Date.now()") + 1_000)

    def back_to_find_the_name_held() -> User:
        server.stop()
        server.start()
        holder = guest(server.port, "mia")
        mia.clock.run_for(1_000)  # the first attempt to reconnect
        expect(mia.locator("#status")).to_have_text(
            "mia is still held by the lost connection — trying again in 2 s"
        )
        return holder

    holder = back_to_find_the_name_held()
    expect(mia.locator("#chat")).to_be_visible()  # not the form
    watcher = guest(server.port, "ned")
    holder.send("/quit")
    assert watcher.until("*** mia left (1 here)")
    mia.clock.run_for(2_000)
    assert watcher.until("*** mia joined (2 here)")
    expect(mia.locator("#status")).to_have_text("connected")
    # Held for good: given up after 30 s, at the form, saying why.
    holder = back_to_find_the_name_held()
    mia.clock.fast_forward(30_000)
    expect(mia.locator("#login")).to_be_visible()
    expect(mia.locator("#login-error")).to_have_text("nickname mia is already taken")
    context.close()


def test_tab_completes_the_names_in_the_room(browser: Browser, server: Server) -> None:
    ada = open_chat(browser, server, "ada")
    bob = guest(server.port, "bobby")
    bella = guest(server.port, "bella")
    bella.send("anyone?")
    bob.send("hi")
    expect(ada.locator("#messages")).to_contain_text("<bobby> hi")
    line = ada.locator("#line")
    line.fill("b")
    line.press("Tab")
    expect(line).to_have_value("bobby: ")  # who spoke last, first
    line.press("Tab")
    expect(line).to_have_value("bella: ")
    line.press_sequentially("how are you?")
    line.press("Enter")
    assert bella.until("<ada> bella: how are you?")
    line.fill("/msg BE")
    line.press("Tab")
    expect(line).to_have_value("/msg bella ")
    # Nothing to complete: Tab leaves the box, as anywhere else.
    line.fill("zz")
    line.press("Tab")
    expect(line).to_have_value("zz")
    expect(line).not_to_be_focused()


def test_the_message_of_the_day_follows_the_welcome(
    browser: Browser, unstarted: Server
) -> None:
    motd = unstarted.tmp_path / "motd.txt"
    motd.write_text("Be kind.\nRules: https://chat.example/rules\n")
    unstarted.extra = ["--motd", str(motd)]
    unstarted.start()
    page = open_chat(browser, unstarted, "mo")
    shown = page.locator("#messages li.motd")
    expect(shown).to_have_text(
        re.compile(r"Message of the day:\nBe kind.\nRules: https://chat.example/rules$")
    )
    expect(shown.locator("a")).to_have_attribute("href", "https://chat.example/rules")
    # Right after the welcome, before the room's own lines.
    assert "Welcome, mo!" in messages(page)[0]
    assert "Message of the day:" in messages(page)[1]
