"""The benchmark suite's quick mode, run for real so it cannot rot."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from .support.proc import run

ROOT = Path(__file__).resolve().parent.parent


def _bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """``bench/run.py --quick ARGS``, which must succeed."""
    done = run(
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--quick",
        *args,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.timeout(300)
def test_quick_benchmark_against_real_servers(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    charts = tmp_path / "charts"
    done = _bench(
        "--servers",
        "twchat,textbook,threaded,climit,pylimit",
        "--out",
        str(out),
        "--charts",
        str(charts),
        timeout=280,
    )
    report = json.loads(out.read_text())
    assert report["mode"] == "quick"
    for scenario in ("throughput", "latency", "crowd", "scale"):
        ours = report["results"][scenario]["twchat"]
        assert "error" not in ours, ours
        # Every line reached every other client, in each sender's order.
        assert ours["delivered"] == ours["expected"] > 0
        assert ours["gaps"] == ours["reordered"] == ours["closed_early"] == 0
        assert ours["server_alive"]
        assert ours["latency_ms"]["p50"] <= ours["latency_ms"]["p99"]
        assert ours["rss_peak_kib"] > 0
        # The server's CPU, and the part of it in user space (the interpreter).
        assert 0 <= ours["server_user_pct"] <= ours["server_cpu_pct"]
        for peer in ("textbook", "climit", "pylimit"):
            theirs = report["results"][scenario][peer]
            assert theirs.get("delivered") == theirs.get("expected"), theirs
    history = report["results"]["history"]["twchat"]
    assert history["delivered"] == history["expected"] > 0
    rooms = report["results"]["rooms"]
    assert list(rooms) == ["twchat"]  # the peers have no rooms
    assert rooms["twchat"]["delivered"] == rooms["twchat"]["expected"] > 0
    assert rooms["twchat"]["gaps"] == rooms["twchat"]["reordered"] == 0
    for scenario in ("websocket", "websocket-latency"):
        web = report["results"][scenario]
        assert list(web) == ["twchat"]  # browsers speak to twchat only
        assert web["twchat"]["delivered"] == web["twchat"]["expected"] > 0
        assert web["twchat"]["gaps"] == web["twchat"]["reordered"] == 0
        assert web["twchat"]["closed_early"] == 0
    for scenario in ("tls", "tls-latency", "accounts", "priced"):
        ours = report["results"][scenario]
        assert list(ours) == ["twchat"]  # TLS to twchat's ssl: port, its accounts
        got = ours["twchat"]
        assert got["delivered"] == got["expected"] > 0, got
        assert got["gaps"] == got["reordered"] == got["closed_early"] == 0
    assert report["results"]["priced"]["twchat"]["scrapes"] >= 1
    for scenario in ("cluster", "cluster-latency", "cluster-history", "cluster-scale"):
        two = report["results"][scenario]
        assert list(two) == ["twchat"]  # Redis mode is twchat's
        got = two["twchat"]
        # The runner's error (no redis-server, say), not a KeyError.
        assert "error" not in got, got
        assert got["delivered"] == got["expected"] > 0
        assert got["gaps"] == got["reordered"] == 0
    assert report["cluster_vs_one_node"] > 0
    for scenario in ("logins", "logins-throughput"):
        attacked = report["results"][scenario]
        assert list(attacked) == ["twchat"]  # accounts are twchat's
        ours = attacked["twchat"]
        assert ours["delivered"] == ours["expected"] > 0
        assert ours["gaps"] == ours["reordered"] == 0
        logins = ours["failed_logins"]
        assert logins["attempts"] >= 20  # 20 a second for at least a second
        # Every attempt was refused, and some reached the password hasher.
        assert set(logins["outcomes"]) <= {"wrong password", "busy", "locked"}
        assert logins["outcomes"].get("wrong password", 0) > 0
    assert report["failed_logins_vs_none"] > 0
    for scenario in ("moderated", "moderated-crowd"):
        priced = report["results"][scenario]
        assert list(priced) == ["twchat"]  # moderation is twchat's
        ours = priced["twchat"]
        # Every receiver ignoring someone, 1000 bans: still every line.
        assert ours["delivered"] == ours["expected"] > 0
        assert ours["gaps"] == ours["reordered"] == 0
    assert "- moderated (ignores, 1000 bans) / throughput" in done.stdout
    assert "deliveries_per_s twchat/textbook" in report["ratios"]["throughput"]
    # Every figure is also a ratio to the C limit (bench/peers/climit.c).
    assert report["ratios"]["throughput"]["deliveries_per_s twchat/climit"] > 0
    assert "| throughput | twchat" in done.stdout
    assert "nothing lost" in done.stdout
    # A quick run judges only what it can: every line delivered.
    for what, target in report["targets"].items():
        assert target["pass"] is (True if what.endswith("nothing lost") else None)
    assert "- INFO throughput >= 1.0x textbook:" in done.stdout
    assert "- INFO throughput >= 0.8x the C limit:" in done.stdout
    # The pictures: SVG files that parse, naming what they show.
    for name, shows in (
        ("throughput.svg", "tls"),
        ("latency.svg", "crowd"),
        ("vs-climit.svg", "scale"),
    ):
        svg = ElementTree.parse(charts / name).getroot()
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        text = " ".join(svg.itertext())
        assert "twchat" in text
        assert shows in text
        assert f"chart: {charts / name}" in done.stderr


@pytest.mark.timeout(120)
def test_paired_runs_give_each_pair_and_the_median(tmp_path: Path) -> None:
    out = tmp_path / "pairs.json"
    done = _bench(
        "--paired", "throughput:metrics", "--runs", "2", "--out", str(out), timeout=110
    )
    found = json.loads(out.read_text())["paired"]["metrics/throughput"]
    assert len(found["deliveries_per_s"]) == len(found["p99"]) == 2
    assert all(ratio > 0 for ratio in found["deliveries_per_s"])
    low, high = sorted(found["deliveries_per_s"])
    assert found["deliveries_per_s_median"] == round((low + high) / 2, 3)
    assert found["lost"] == 0
    assert "- metrics/throughput: deliveries/s median" in done.stdout


@pytest.mark.timeout(120)
def test_a_paired_side_may_be_another_server(tmp_path: Path) -> None:
    out = tmp_path / "pairs.json"
    done = _bench(
        "--paired",
        "latency@climit:latency",
        "--runs",
        "2",
        "--out",
        str(out),
        timeout=110,
    )
    found = json.loads(out.read_text())["paired"]["latency/latency@climit"]
    assert len(found["p99"]) == 2
    assert all(ratio > 0 for ratio in found["p99"])
    assert found["lost"] == 0
    assert "# pair 2/2: latency@climit ..." in done.stderr
    assert "- latency/latency@climit: deliveries/s median" in done.stdout


def test_a_paired_side_names_a_known_server(tmp_path: Path) -> None:
    done = run(
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--paired",
        "latency@nosuch:latency",
        timeout=60,
    )
    assert done.returncode == 2
    assert "SCENARIO@SERVER" in done.stderr


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ([], "for 2000 lines x 99 receivers (best of 1)"),
        (["--moderated"], "for 2000 lines x 99 receivers (best of 1)"),
        (["--alone"], "20 lines alone x 999 receivers on sockets (best of 1)"),
    ],
    ids=["plain", "moderated", "alone"],
)
def test_micro_benchmark_delivers_everything(extra: list[str], says: str) -> None:
    # --moderated also checks its bans were loaded and its ignores confirmed;
    # --alone reads every receiver's socket and counts the lines.
    micro = str(ROOT / "bench" / "micro.py")
    done = run(sys.executable, micro, "--reps", "1", *extra, timeout=60)
    assert done.returncode == 0, done.stderr
    assert says in done.stdout


def _run_module(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``bench/run.py`` as a module, for its pure functions."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))  # its sibling modules
    monkeypatch.delitem(sys.modules, "twchat_bench_run", raising=False)
    spec = importlib.util.spec_from_file_location(
        "twchat_bench_run", ROOT / "bench" / "run.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # for its dataclasses
    spec.loader.exec_module(module)
    return module


def _result(rate: float, p99: float) -> dict[str, Any]:
    return {"deliveries_per_s": rate, "latency_ms": {"p99": p99}, "lost": 0}


def test_a_two_run_target_is_judged_on_the_pairs_median(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = _run_module(monkeypatch)
    results = {
        "throughput": {"twchat": _result(100.0, 5.0)},
        "history": {"twchat": _result(80.0, 5.0)},
        "latency": {
            "twchat": _result(1.0, 3.0),
            "climit": _result(1.0, 2.0),
            "pylimit": _result(1.0, 2.5),
        },
    }
    alone = bench.check_targets(results)
    assert alone["history costs < 5% of throughput (one run)"] == (0.2, False)
    assert alone["latency p99 <= the C limit's (p99 ratio, one run)"] == (1.5, False)
    floor = "latency p99 <= 1.25x the CPython limit's (p99 ratio, {})"
    assert alone[floor.format("one run")] == (1.2, True)
    pairs = {
        "history/throughput": {
            "deliveries_per_s": [0.9, 0.97, 0.99],
            "deliveries_per_s_median": 0.97,
        },
        "latency/latency@climit": {"p99": [0.8, 0.9, 1.4], "p99_median": 0.9},
        "latency/latency@pylimit": {"p99": [1.2, 1.3, 1.4], "p99_median": 1.3},
    }
    judged = bench.check_targets(results, pairs=pairs)
    assert judged["history costs < 5% of throughput (median of 3 pairs)"] == (
        0.03,
        True,
    )
    assert judged["latency p99 <= the C limit's (p99 ratio, median of 3 pairs)"] == (
        0.9,
        True,
    )
    assert judged[floor.format("median of 3 pairs")] == (1.3, False)
    assert not any("one run" in what for what in judged if "history" in what)
