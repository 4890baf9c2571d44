"""The benchmark tooling itself: report rendering from recorded results and
the native echo client against a known server. Behaviour, not timings."""

import contextlib
import json
import pathlib
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

BENCH = pathlib.Path(__file__).parent.parent / "bench"
sys.path.insert(0, str(BENCH))
import report


def summary(median, low, high, cv=0.01):
    return {"median": median, "min": low, "max": high, "cv": cv}


def test_loop_core_report_ratios_and_flags():
    run = {
        "missing": {"rloop": "not available (rloop)"},
        "descriptions": {"call_soon": "1M callbacks."},
        "summary": {
            "call_soon": {
                "asyncio": summary(1.0, 0.9, 1.2),
                "uvloop": summary(0.4, 0.4, 0.5, cv=0.2),
                "pyloop": summary(0.2, 0.2, 0.3),
            }
        },
    }
    text = report.render([("3.13", run)])
    assert "== call_soon: 1M callbacks." in text
    assert "2.00x" in text  # uvloop / pyloop
    assert "5.00x" in text  # asyncio / pyloop
    assert "!" in text  # uvloop's 20% variation is flagged
    assert "3.13: rloop not available (rloop)" in text


def test_gil_ratio_section():
    def run(pyloop_median):
        return {"missing": {}, "summary": {"w": {"pyloop": summary(pyloop_median, 0, 0)}}}

    text = report.render([("3.13t GIL off", run(0.5)), ("3.13t GIL on", run(1.0))])
    assert "w: pyloop 2.00" in text


def test_gil_ratio_section_per_free_threaded_build():
    def run(pyloop_median):
        return {"missing": {}, "summary": {"w": {"pyloop": summary(pyloop_median, 0, 0)}}}

    text = report.render([("3.13t GIL off", run(0.5)), ("3.13t GIL on", run(1.0)),
                          ("3.14t GIL off", run(0.25)), ("3.14t GIL on", run(1.0)), ("3.14", run(0.9))])
    section_13 = text.split("Free-threaded 3.13t:")[1].split("Free-threaded")[0]
    section_14 = text.split("Free-threaded 3.14t:")[1]
    assert "w: pyloop 2.00" in section_13 and "w: pyloop 4.00" in section_14


def test_echo_report():
    cell = {"rps": 1000.0, "rps_min": 900.0, "rps_max": 1100.0, "rps_cv": 0.05, "mean_us": 10.0,
            "p99_us": 50.0, "cpu_us": 20.0}
    result = {
        "missing": {"pyloop stream": "unsupported"},
        "summary": {"proto/1024/1": {"uvloop": cell, "pyloop": dict(cell, rps=1500.0)}},
        "samples": {"proto/1024/1": {"uvloop": [{"rps": r} for r in (10, 20, 30)],
                                     "pyloop": [{"rps": r} for r in (11, 19, 31)]}},
    }
    text = report.render_echo("3.13", result)
    assert "== proto" in text
    assert "1KiB/1" in text
    assert "1.50x" in text
    assert "2/3" in text  # pyloop ahead in rounds 1 and 3
    assert "3.13: pyloop stream: unsupported" in text


def test_rounds_ahead_needs_a_pair_for_every_round():
    samples = {"uvloop": [{"rps": 10}, {"rps": 10}], "pyloop": [{"rps": 11}]}
    assert report.rounds_ahead({"samples": {"k": samples}}, "k") == "n/a"
    assert report.rounds_ahead({"summary": {}}, "k") == "n/a"


@pytest.fixture(scope="module")
def echo_client(tmp_path_factory):
    compiler = shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    binary = tmp_path_factory.mktemp("bench") / "echo_client"
    subprocess.run([compiler, "-O1", "-std=c++20", str(BENCH / "echo_client.cpp"), "-o", str(binary),
                    "-lssl", "-lcrypto"], check=True, timeout=120)
    return binary


def run_client(echo_client, port, *extra):
    return subprocess.run([str(echo_client), "--port", str(port), "--conns", "3", "--size", "3000",
                           "--duration", "0.3", "--warmup", "0.1", *extra],
                          capture_output=True, text=True, timeout=30)


def check_result(out):
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["requests"] > 0
    assert result["all_requests"] >= result["requests"]
    lat = result["lat_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert result["rps"] == pytest.approx(result["requests"] / result["seconds"], rel=1e-3)


@contextlib.contextmanager
def threaded_tcp_server(wrap=lambda conn: conn):
    """A thread-per-connection echo server; wrap(conn) may make it TLS."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn):
        try:
            with wrap(conn) as channel:
                while data := channel.recv(65536):
                    channel.sendall(data)
        except (ConnectionResetError, ssl.SSLError):
            pass  # the client resets its connections when it stops

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


@contextlib.contextmanager
def threaded_udp_server(drop_after=None):
    """Echoes datagrams; with drop_after=N, ignores every datagram after the Nth."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()

    def serve():
        seen = 0
        while not stop.is_set():
            try:
                data, addr = sock.recvfrom(65536)
            except TimeoutError:
                continue
            seen += 1
            if drop_after is None or seen <= drop_after:
                sock.sendto(data, addr)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def test_echo_client_against_a_threaded_echo_server(echo_client):
    with threaded_tcp_server() as port:
        check_result(run_client(echo_client, port))


def test_echo_client_over_tls(echo_client):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pathlib.Path(ssl.__file__).parent / "test" / "certdata" / "keycert.pem")
    with threaded_tcp_server(lambda conn: context.wrap_socket(conn, server_side=True)) as port:
        check_result(run_client(echo_client, port, "--transport", "tls"))


def test_echo_client_over_udp(echo_client):
    with threaded_udp_server() as port:
        check_result(run_client(echo_client, port, "--transport", "udp"))


def test_echo_client_reports_a_lost_datagram(echo_client):
    with threaded_udp_server(drop_after=5) as port:
        out = subprocess.run([str(echo_client), "--port", str(port), "--size", "100", "--duration", "1.2",
                              "--warmup", "0", "--transport", "udp"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "no echo for over a second" in out.stderr


def test_echo_client_fails_when_nothing_is_echoed(echo_client):
    with threaded_udp_server(drop_after=0) as port:
        out = subprocess.run([str(echo_client), "--port", str(port), "--duration", "0.2", "--warmup", "0",
                              "--transport", "udp"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "echoed nothing" in out.stderr


def test_echo_client_latency_math_on_a_known_input(echo_client):
    values = "\n".join(str(v) for v in [*range(100, 49, -1), *range(50)])  # 0..100, shuffled
    out = subprocess.run([str(echo_client), "--stats"], input=values, capture_output=True, text=True,
                         timeout=30, check=True)
    assert json.loads(out.stdout) == {"count": 101, "lat_us": {"mean": 50.0, "p50": 50.0, "p90": 90.0,
                                                                "p99": 99.0, "max": 100.0}}
    out = subprocess.run([str(echo_client), "--stats"], input="7.5\n2.5\n", capture_output=True, text=True,
                         timeout=30, check=True)
    assert json.loads(out.stdout)["lat_us"] == {"mean": 5.0, "p50": 7.5, "p90": 7.5, "p99": 7.5, "max": 7.5}


def test_echo_client_rejects_bad_options(echo_client):
    for args, why in ((["--port", "0"], "must be positive"),
                      (["--port", "1", "--transport", "quic"], "unknown option --transport quic"),
                      (["--port", "1", "--transport", "udp", "--size", "70000"], "over a datagram"),
                      (["--stats"], None)):
        out = subprocess.run([str(echo_client), *args], input="x", capture_output=True, text=True, timeout=30)
        assert out.returncode == 2
        assert why is None or why in out.stderr


def test_tls_and_udp_run_on_their_smaller_grids():
    import echo

    measured = echo.cells(["proto", "tls", "udp"], [1024, 10240, 102400], [1, 6, 11])
    assert len([c for c in measured if c[0] == "proto"]) == 9
    assert [c for c in measured if c[0] != "proto"] == [
        ("tls", 1024, 1), ("tls", 1024, 11), ("tls", 102400, 1), ("tls", 102400, 11),
        ("udp", 1024, 1), ("udp", 1024, 11)]


def write_run(folder, loop_core, echo):
    folder.mkdir()
    (folder / "loop_core-3.13.json").write_text(json.dumps({"samples": loop_core}))
    (folder / "echo-3.13.json").write_text(json.dumps({"samples": echo}))


def rps(*values):
    return [{"rps": v} for v in values]


def test_compare_reports_only_changes_beyond_the_noise(tmp_path):
    import compare

    write_run(tmp_path / "old",
              {"timers": {"pyloop": [1.0, 1.1, 1.2], "uvloop": [2.0, 2.1, 2.2]},
               "gather": {"pyloop": [1.0, 1.5, 2.0]}},
              {"proto/1024/1": {"pyloop": rps(100, 110, 120), "uvloop": rps(100, 101, 102)}})
    write_run(tmp_path / "new",
              {"timers": {"pyloop": [0.5, 0.6, 0.7], "uvloop": [2.5, 2.6, 2.7]},
               "gather": {"pyloop": [1.2, 1.4, 1.9]}},
              {"proto/1024/1": {"pyloop": rps(90, 130, 140), "uvloop": rps(50, 51, 52)}})
    rows = {(cell, loop): (verdict, ratio) for verdict, ratio, (_, cell, loop) in
            compare.compare(tmp_path / "old", tmp_path / "new")}
    assert rows[("timers", "pyloop")][0] == "faster"  # lower seconds, ranges apart
    assert rows[("timers", "pyloop")][1] == pytest.approx(1.1 / 0.6)
    assert rows[("timers", "uvloop")][0] == "slower"
    assert rows[("gather", "pyloop")][0] == "noise"  # the ranges overlap
    assert rows[("proto/1024/1", "pyloop")][0] == "noise"
    assert rows[("proto/1024/1", "uvloop")] == ("slower", pytest.approx(51 / 101))
    text = compare.render(compare.compare(tmp_path / "old", tmp_path / "new"))
    assert "faster (1):" in text and "slower (2):" in text
    assert "within the noise: 2 of 5 cells" in text


def test_compare_reads_http_and_memory_and_leaves_single_samples_unjudged(tmp_path):
    import compare

    for name, http_rps, memory in (("old", (100, 101), (2000, 2100)), ("new", (120, 125), (1500, 1550))):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "http-3.13.json").write_text(json.dumps({"samples": {"proto/10": {"pyloop": rps(*http_rps)}}}))
        (folder / "memory-3.13.json").write_text(json.dumps(
            {"samples": {"pyloop": [{"bytes_per_conn": b} for b in memory]}}))
        (folder / "echo-3.13.json").write_text(json.dumps(
            {"samples": {"udp/1024/1": {"pyloop": rps(100 if name == "old" else 200)}}}))
    rows = {(cell, loop): verdict for verdict, _, (_, cell, loop) in
            compare.compare(tmp_path / "old", tmp_path / "new")}
    assert rows == {("proto/10", "pyloop"): "faster", ("idle", "pyloop"): "faster",
                    ("udp/1024/1", "pyloop"): "unjudged"}
    assert "not judged (a single sample in a run): 1 cells" in compare.render(
        compare.compare(tmp_path / "old", tmp_path / "new"))
    # A published folder holds data.json alone: the same runs, read from it.
    runs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "new").glob("*-*.json")}
    (tmp_path / "published").mkdir()
    (tmp_path / "published" / "data.json").write_text(json.dumps({"runs": runs}))
    assert {key[1:] for *_, key in compare.compare(tmp_path / "old", tmp_path / "published")} == set(rows)


@pytest.mark.parametrize("program", ["echo_native_server", "echo_uring_server"])
def test_native_echo_server_echoes_every_byte(tmp_path, program):
    compiler = shutil.which("g++")
    assert compiler, "tools/bootstrap installs g++"
    binary = tmp_path / program
    subprocess.run([compiler, "-O1", "-std=c++20", "-Wall", "-Wextra", "-Werror", str(BENCH / f"{program}.cpp"),
                    "-o", str(binary)], check=True, timeout=120)
    server = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline().split()
        if not line and "io_uring_setup" in server.communicate(timeout=10)[1]:
            pytest.skip("this kernel refuses io_uring (Linux 6.1 or later, io_uring not disabled)")
        ready, port = line
        assert ready == "ready"
        payload = bytes(range(256)) * 8192  # 2 MiB: more than the socket buffers hold
        with socket.create_connection(("127.0.0.1", int(port))) as conn:
            sender = threading.Thread(target=conn.sendall, args=(payload,))
            sender.start()
            got = bytearray()
            while len(got) < len(payload):
                chunk = conn.recv(1 << 16)
                assert chunk, "the server closed early"
                got += chunk
            sender.join()
        assert bytes(got) == payload
    finally:
        server.kill()
        server.wait()


def test_memory_report_per_connection_cost():
    result = {
        "conns": 100,
        "missing": {"rloop": "not available (rloop)"},
        "summary": {"uvloop": {"after_kib": 2048, "bytes_per_conn": 1500.0},
                    "pyloop": {"after_kib": 3072, "bytes_per_conn": 3000.0}},
    }
    text = report.render_memory("3.13", result)
    assert "server RSS with 100 idle connections" in text
    uvloop_row = next(line for line in text.splitlines() if line.startswith("uvloop"))
    assert uvloop_row.split() == ["uvloop", "2.0", "1500", "0.50x"]
    assert "3.13: rloop: not available (rloop)" in text


WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:33133/
  1 threads and 10 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    75.29us   41.24us   1.37ms   88.85%
    Req/Sec   133.58k     9.75k  141.51k    81.82%
  Latency Distribution
     50%   65.00us
     75%   76.00us
     90%    1.20ms
     99%    2.50s
  145603 requests in 1.10s, 10.83MB read
Requests/sec: 132449.33
Transfer/sec:      9.85MB
"""


def test_wrk_output_is_parsed_with_its_units():
    import http_bench

    result = http_bench.parse_wrk(WRK_OUTPUT)
    assert result["rps"] == pytest.approx(132449.33)
    assert result["requests"] == 145603
    assert result["lat_us"] == {"p50": 65.0, "p75": 76.0, "p90": 1200.0, "p99": 2.5e6}


@pytest.mark.parametrize("status", [200, 404])
def test_http_warm_up_uses_one_keep_alive_connection(status):
    import http.server

    import http_bench

    seen = {"requests": 0, "connections": set()}

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen["requests"] += 1
            seen["connections"].add(self.client_address)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        if status == 200:
            http_bench.warm_up(server.server_address[1], requests=50)
            assert seen["requests"] == 50 and len(seen["connections"]) == 1
        else:
            with pytest.raises(RuntimeError, match="HTTP 404"):
                http_bench.warm_up(server.server_address[1], requests=50)
    finally:
        server.shutdown()
        server.server_close()


def test_http_report_ratio():
    cell = {"rps": 100.0, "rps_cv": 0.0, "p99_us": 10.0, "cpu_us": 5.0}
    result = {"missing": {}, "summary": {"proto/10": {"uvloop": cell, "pyloop": dict(cell, rps=150.0)}}}
    text = report.render_http("3.13", result)
    assert "proto/10" in text and text.rstrip().endswith("1.50x")


def test_publish_writes_data_report_and_plots(tmp_path):
    import publish

    cell = {"rps": 100.0, "rps_min": 90.0, "rps_max": 110.0, "rps_cv": 0.05, "mean_us": 10.0, "p50_us": 9.0,
            "p90_us": 15.0, "p99_us": 20.0, "cpu_us": 5.0}
    echo = {"missing": {}, "samples": {"proto/1024/1": {"pyloop": [{"rps": 100.0}]}},
            "summary": {"proto/1024/1": {"pyloop": cell, "uvloop": dict(cell, rps=50.0)},
                        "proto/1024/6": {"pyloop": cell}}}
    core = {"missing": {}, "descriptions": {"timers": "Timers."},
            "summary": {"timers": {"pyloop": summary(0.1, 0.1, 0.1)}}, "samples": {"timers": {"pyloop": [0.1]}}}
    (tmp_path / "echo-3.13.json").write_text(json.dumps(echo))
    (tmp_path / "loop_core-3.13t-nogil.json").write_text(json.dumps(core))
    (tmp_path / "loop_core-3.13t-gil.json").write_text(json.dumps(core))
    _, images = publish.publish(tmp_path)
    saved = json.loads((tmp_path / "data.json").read_text())
    assert saved["runs"]["echo-3.13"]["samples"] == echo["samples"]
    assert saved["machine"]["cores"] >= 1
    text = (tmp_path / "report.md").read_text()
    assert "Echo benchmark, 3.13:" in text and "2.00x" in text
    assert "3.13t GIL off" in text
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert images == [] and "No plots" in text
    else:
        assert set(images) == {"echo-3.13.png", "latency-3.13.png", "gil-3.13t.png"}  # no native server here
        for name in images:
            assert (tmp_path / name).stat().st_size > 1000
            assert f"![{name}]({name})" in text


def listeners_on(port):
    """How many sockets listen on 127.0.0.1:port (from /proc/net/tcp)."""
    rows = pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]
    local = f"0100007F:{port:04X}"
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


@pytest.mark.parametrize("loop", ["asyncio", "pyloop"])
@pytest.mark.parametrize("mode", ["proto", "stream"])
def test_threaded_echo_server_listens_once_per_thread_and_echoes(loop, mode):
    server = subprocess.Popen([sys.executable, "-P", str(BENCH / "echo_server.py"), loop, mode, "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        ready, port = server.stdout.readline().split()
        assert ready == "ready"
        assert listeners_on(int(port)) == 3
        conns = [socket.create_connection(("127.0.0.1", int(port))) for _ in range(8)]
        for i, conn in enumerate(conns):
            conn.sendall(bytes([i]) * 5000)
        for i, conn in enumerate(conns):
            got = b""
            while len(got) < 5000:
                chunk = conn.recv(65536)
                assert chunk, "the server closed early"
                got += chunk
            assert got == bytes([i]) * 5000
            conn.close()
    finally:
        server.kill()
        server.wait()


def test_scaling_spreads_connections_and_reads_core_lists():
    import scaling

    assert scaling.cpu_list("0,2-4") == [0, 2, 3, 4]
    assert scaling.split(32, 3) == [11, 11, 10]
    assert scaling.split(2, 4) == [1, 1]  # no client without a connection


def test_scaling_summary_speedup_is_over_the_same_loops_one_thread():
    import scaling

    def runs(*rps):
        return [{"rps": r, "server_cpu_us_per_request": 10.0, "lat_us": {"p99": 1.0}} for r in rps]

    summary = scaling.summarize({
        "proto/1024/1": {"asyncio": runs(10, 20, 30), "pyloop": runs(40, 50, 60)},
        "proto/1024/2": {"asyncio": runs(20, 20, 20), "pyloop": runs(90, 100, 110)},
    })
    assert summary["proto/1024/1"]["pyloop"]["speedup"] == 1.0
    assert summary["proto/1024/2"]["asyncio"]["speedup"] == 1.0
    assert summary["proto/1024/2"]["pyloop"]["speedup"] == 2.0
    assert summary["proto/1024/2"]["pyloop"]["rps_min"] == 90
    assert "2.00" in scaling.table(summary)


def test_peers_judges_each_round_and_counts_rounds_ahead(tmp_path, capsys, monkeypatch):
    import peers

    core = {"samples": {"call_soon": {"pyloop": [1.0, 2.0, 1.0], "uvloop": [2.0, 1.0, 3.0]}},
            "missing": {"rloop": "no build"}}
    echo = {"samples": {"proto/1024/1": {"pyloop": [{"rps": 110}, {"rps": 90}],
                                         "uvloop": [{"rps": 100}, {"rps": 100}],
                                         "rloop": [{"rps": 55}, {"rps": 45}]}},
            "missing": {}}
    (tmp_path / "loop_core-3.14t-nogil.json").write_text(json.dumps(core))
    (tmp_path / "echo-3.14t-nogil.json").write_text(json.dumps(echo))
    monkeypatch.setattr(sys, "argv", ["peers.py", str(tmp_path)])
    peers.main()
    out = capsys.readouterr().out
    assert "### 3.14t-nogil" in out
    # Per-round ratios 2.0, 0.5, 3.0: median 2.0, two rounds of three ahead.
    assert "| loop core: call_soon | 2.00 (0.50-3.00, 2/3) | n/a |" in out
    # 1.1 and 0.9 over uvloop: median 1.00, one round ahead; 2.0 over rloop twice.
    assert "| echo proto/1024/1 | 1.00 (0.90-1.10, 1/2) | 2.00 (2.00-2.00, 2/2) |" in out
    assert "rloop: no build" in out
