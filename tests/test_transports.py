"""pingan.delivery.transports: one message through one Apprise URL, classified.

HTTP channels are pointed at a real server on 127.0.0.1. The chat services (WeCom, DingTalk,
Feishu) post to fixed public hosts, so their tests replace ``requests.post`` underneath our
proxy; a guard refuses to resolve any host but loopback, so nothing can leave the machine.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import apprise
import apprise.url
import pytest
import requests
from apprise.plugins.wecombot import NotifyWeComBot

from pingan.core.settings import get_settings, reset_settings
from pingan.delivery.transports import Outcome, deliver, mask, validate
from pingan.cli.supervisor import free_port

WECOM_KEY = "b7c1f5e2-9d4a-4c3e-8f1a-2e6d0c9b7a55"
WECOM = f"wecombot://{WECOM_KEY}"
DINGTALK_TOKEN = "3f0b9c6e1a2d4b8c9e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
DINGTALK = f"dingtalk://{DINGTALK_TOKEN}/"
FEISHU_TOKEN = "0d6c2b8e-4f1a-47b3-9c5e-8a2f1d3e6b70"
FEISHU = f"feishu://{FEISHU_TOKEN}"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch):
    """Nothing in this file may reach a real host: only loopback names resolve."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        if host not in LOOPBACK and (not isinstance(host, bytes) or host.decode() not in LOOPBACK):
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: {host} is not loopback")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)


def chat_reply(monkeypatch, reply: dict | bytes, status: int = 200) -> list[str]:
    """Make the sending session answer ``reply`` without any network; returns posted URLs."""
    posted: list[str] = []

    def fake_post(self, method, url, **kwargs):
        posted.append(url)
        response = requests.models.Response()
        response.status_code = status
        response._content = reply if isinstance(reply, bytes) else __import__("json").dumps(reply).encode()
        response.headers["Content-Type"] = "application/json"
        response.encoding = "utf-8"
        response.url = url
        return response

    monkeypatch.setattr(requests.Session, "request", fake_post)
    return posted




# --- HTTP status classification against the local server -----------------------------------


def test_it_delivers_to_a_json_sink(sink):
    outcome = deliver(sink.url("ok"), "检查提醒", "请于周五前上传隐患排查记录。", timeout=5)

    assert outcome == Outcome(ok=True)
    [got] = sink.received
    assert got["path"] == "/ok"
    assert got["json"]["title"] == "检查提醒"
    assert got["json"]["message"] == "请于周五前上传隐患排查记录。"


@pytest.mark.parametrize(
    ("status", "permanent", "error"),
    [
        (500, False, "HTTP 500 Internal Server Error"),
        (503, False, "HTTP 503 Service Unavailable"),
        (429, False, "HTTP 429 Too Many Requests"),
        (404, True, "HTTP 404 Not Found"),
        (401, True, "HTTP 401 Unauthorized"),
    ],
)
def test_it_classifies_http_statuses(sink, status, permanent, error):
    outcome = deliver(sink.url(str(status)), "t", "b", timeout=5)

    assert outcome == Outcome(ok=False, permanent=permanent, error=error)


def test_it_reports_a_timeout_as_transient(sink):
    outcome = deliver(sink.url("slow"), "t", "b", timeout=0.2)

    assert outcome == Outcome(ok=False, permanent=False, error="no response within 0.2s")


def test_it_reports_a_refused_connection_as_transient():
    outcome = deliver(f"json://127.0.0.1:{free_port()}/", "t", "b", timeout=2)

    assert outcome == Outcome(ok=False, permanent=False, error="connection refused")


def test_it_keeps_the_url_out_of_exception_errors(monkeypatch):
    url = "json://user:hunter2secret@127.0.0.1:9/hook/tok-4242abcd"

    def boom(self, method, url, **kwargs):
        raise requests.ConnectionError(f"cannot reach {url} with hunter2secret")

    monkeypatch.setattr(requests.Session, "request", boom)
    outcome = deliver(url, "t", "b", timeout=1)

    assert outcome == Outcome(ok=False, permanent=False, error="connection failed")


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("wecombot://", "invalid wecombot:// URL (Apprise cannot parse it)"),
        ("nosuchservice://abcdef123456", "unknown channel type nosuchservice://"),
        ("13800000000", "not an Apprise URL (expected scheme://…)"),
        ("", "empty channel URL"),
    ],
)
def test_it_treats_an_unparseable_url_as_permanent(url, error):
    assert deliver(url, "t", "b", timeout=1) == Outcome(ok=False, permanent=True, error=error)
    assert validate(url) == error


def test_it_keeps_an_invalid_token_out_of_the_error_and_the_logs(caplog):
    url = "wecombot://abc.def%24s3cr3tkey99"

    with caplog.at_level(logging.WARNING):
        outcome = deliver(url, "t", "b", timeout=1)

    assert outcome.permanent and "s3cr3tkey99" not in outcome.error
    assert caplog.records, "Apprise warns about the key; the warning must be masked"
    assert "s3cr3tkey99" not in caplog.text


# --- chat APIs that say "error" in a 200 reply --------------------------------------------


def test_it_fails_a_wecom_error_code_permanently_without_the_token(monkeypatch):
    posted = chat_reply(
        monkeypatch,
        {"errcode": 93000, "errmsg": f"invalid webhook url, hint: [1699_{WECOM_KEY}], more info at https://x"},
    )

    outcome = deliver(WECOM, "t", "b", timeout=1)

    assert posted == [f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"]
    assert outcome == Outcome(ok=False, permanent=True, error="WeCom error 93000: invalid webhook url")
    assert WECOM_KEY not in outcome.error


@pytest.mark.parametrize(
    ("url", "reply", "expected"),
    [
        (WECOM, {"errcode": 0, "errmsg": "ok"}, Outcome(ok=True)),
        (WECOM, {"errcode": 45009, "errmsg": "api freq out of limit"},
         Outcome(False, False, "WeCom error 45009: api freq out of limit")),
        (DINGTALK, {"errcode": 0, "errmsg": "ok"}, Outcome(ok=True)),
        (DINGTALK, {"errcode": 310000, "errmsg": "keywords not in content"},
         Outcome(False, True, "DingTalk error 310000: keywords not in content")),
        (DINGTALK, {"errcode": 300001, "errmsg": f"token is not exist {DINGTALK_TOKEN}"},
         Outcome(False, True, "DingTalk error 300001: token is not exist ***")),
        (DINGTALK, {"errcode": 130101, "errmsg": "send too fast"},
         Outcome(False, False, "DingTalk error 130101: send too fast")),
        (FEISHU, {"code": 0, "msg": "success", "data": {}}, Outcome(ok=True)),
        (FEISHU, {"StatusCode": 0, "StatusMessage": "success"}, Outcome(ok=True)),
        (FEISHU, {"code": 19001, "msg": "param invalid: incoming webhook access token invalid"},
         Outcome(False, True, "Feishu error 19001: param invalid: incoming webhook access token invalid")),
        (FEISHU, {"code": 11232, "msg": "frequency limited"},
         Outcome(False, False, "Feishu error 11232: frequency limited")),
        (WECOM, b"<html>portal</html>", Outcome(False, False, "WeCom: HTTP 200 reply is not JSON")),
    ],
)
def test_it_reads_the_error_code_of_chat_replies(monkeypatch, url, reply, expected):
    chat_reply(monkeypatch, reply)

    assert deliver(url, "t", "b", timeout=1) == expected


def test_it_classifies_chat_http_errors_like_any_other(monkeypatch):
    chat_reply(monkeypatch, {"code": 9499, "msg": "Bad Request"}, status=400)

    assert deliver(FEISHU, "t", "b", timeout=1) == Outcome(False, True, "HTTP 400 Bad Request")


def test_it_keeps_the_requests_api_visible_through_the_proxy():
    module = apprise.plugins.wecombot
    assert getattr(module.requests, "_pingan_proxy", False)
    assert module.requests.codes.ok == 200
    assert module.requests.RequestException is requests.RequestException


# --- Apprise traps ----------------------------------------------------------------------------


def test_it_does_not_throttle_consecutive_sends(monkeypatch, sink):
    assert NotifyWeComBot.request_rate_per_sec >= 1  # Apprise would wait between two sends
    sleeps: list[float] = []
    monkeypatch.setattr(apprise.url.time, "sleep", sleeps.append)

    for _ in range(2):
        assert deliver(sink.url("ok"), "t", "b", timeout=5).ok
    chat_reply(monkeypatch, {"errcode": 0, "errmsg": "ok"})
    for _ in range(2):
        assert deliver(WECOM, "t", "b", timeout=5).ok

    assert [s for s in sleeps if s >= 1] == []


def test_it_quiets_the_apprise_logger():
    assert logging.getLogger("apprise").level == logging.WARNING


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        (WECOM, [WECOM_KEY]),
        (DINGTALK, [DINGTALK_TOKEN]),
        (f"dingtalk://SECsignkey123456@{DINGTALK_TOKEN}/", [DINGTALK_TOKEN, "SECsignkey123456"]),
        (FEISHU, [FEISHU_TOKEN]),
        ("mailto://safety:Pa55w0rd!x@mail.example.edu.cn", ["Pa55w0rd!x"]),
        ("json://127.0.0.1:8080/hook?+X-Token=hdrsecret99", ["hdrsecret99"]),
        ("smsgws://gwtoken12345@sms.example.com/send?to=13800000000", ["gwtoken12345"]),
    ],
)
def test_it_masks_tokens(url, secrets):
    masked = mask(url)

    assert masked.split("://")[0] == url.split("://")[0]
    for secret in secrets:
        assert secret not in masked


def test_it_masks_what_it_cannot_parse():
    assert mask("wecombot://") == "wecombot://***"
    assert mask("garbage") == "unknown://***"


def test_it_validates_good_urls(sink):
    for url in (WECOM, DINGTALK, FEISHU, sink.url(), "pingan://local/P-001", "mailto://a:b@example.com"):
        assert validate(url) is None, url


# --- pingan:// ------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PINGAN_HOME", str(tmp_path / "home"))
    reset_settings()
    yield tmp_path / "home"
    reset_settings()


def test_it_appends_a_line_to_the_pingan_outbox(home):
    outcome = deliver("pingan://local/P-0042", "安全例会提醒", "本季度安全工作会议请于3月31日前召开。", timeout=1)

    assert outcome == Outcome(ok=True)
    [line] = (home / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    record = json.loads(line)
    assert record["to"] == "P-0042"
    assert record["title"] == "安全例会提醒"
    assert record["body"] == "本季度安全工作会议请于3月31日前召开。"
    assert dt.datetime.fromisoformat(record["at"]).utcoffset() == dt.timedelta(hours=8)
    assert get_settings().home == home


def test_it_refuses_a_pingan_url_without_recipient(home):
    assert validate("pingan://") is not None
    assert deliver("pingan://", "t", "b", timeout=1).permanent


def test_it_writes_whole_pingan_lines_from_many_threads(home):
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: deliver(f"pingan://local/P{i % 7}", "t", f"m{i}", timeout=1), range(200)))

    assert all(o.ok for o in outcomes)
    lines = (home / "outbox.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["body"] for line in lines) == sorted(f"m{i}" for i in range(200))


# --- smsgw:// -------------------------------------------------------------------------------


def test_it_posts_to_an_sms_gateway(sink):
    url = f"smsgw://gwtoken12345@127.0.0.1:{sink.port}/sms/send?to=13800000000&sign=平安校园"

    outcome = deliver(url, "值班提醒", "今日零报告未提交。", timeout=5)

    assert outcome == Outcome(ok=True)
    [got] = sink.received
    assert got["path"] == "/sms/send"
    assert got["headers"]["Authorization"] == "Bearer gwtoken12345"
    assert got["json"] == {"to": "13800000000", "sign": "平安校园", "text": "值班提醒\n今日零报告未提交。"}


def test_it_classifies_an_sms_gateway_refusal(sink):
    url = f"smsgw://gwtoken12345@127.0.0.1:{sink.port}/401?to=13800000000"

    assert deliver(url, "t", "b", timeout=5) == Outcome(False, True, "HTTP 401 Unauthorized")


def test_it_rejects_an_sms_url_without_a_valid_number():
    assert validate("smsgw://tok12345@sms.example.com/?to=12") == "invalid smsgw:// URL (Apprise cannot parse it)"
    assert validate("smsgw://tok12345@sms.example.com/") is not None


# --- concurrency ----------------------------------------------------------------------------


def test_it_delivers_200_messages_from_16_threads_exactly_once(sink):
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda i: deliver(sink.url("ok"), "t", f"msg-{i}", timeout=10), range(200)))

    assert all(o.ok for o in outcomes)
    counts = Counter(r["json"]["message"] for r in sink.received)
    assert counts == Counter(f"msg-{i}" for i in range(200))


def test_it_keeps_outcomes_apart_across_threads(sink):
    def send(i: int) -> tuple[int, Outcome]:
        return i, deliver(sink.url("500" if i % 2 else "ok"), "t", "b", timeout=10)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, range(120)))

    for i, outcome in results:
        assert outcome == (Outcome(False, False, "HTTP 500 Internal Server Error") if i % 2 else Outcome(True))
