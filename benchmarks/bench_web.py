"""Latency and throughput of the web API on this machine (``make bench-web``; not a test).

What it does
------------
1. Starts two uvicorn servers on 127.0.0.1 (free ports), each in its own subprocess, same
   flags (one process, no access log): the qpv-geo app, and a bare ASGI « hello » app (the
   floor: uvicorn + loopback + the load client).
2. Drives load from a *separate* process (this script with ``--drive``): a few keep-alive
   HTTP/1.1 connections, a minimal asyncio client (so that the client's own overhead stays
   small next to the server's), bounded by a request count and a duration per endpoint.
3. Reports, per endpoint: requests, requests/s, p50 / p90 / p99 / max latency, and the p50 and
   p99 ratios to the baselines measured in the same run:

   * ``hello``    bare ASGI app (uvicorn floor);
   * ``donnees``  ``GET /api/v1/donnees`` (FastAPI + a response model, no geometry);
   * ``verdict lat/lon``  ``GET /api/v1/verdict?lat=…&lon=…`` on 500 points spread over SEM
     (inside QPV, near edges, outside);
   * ``verdict adresse``  ``GET /api/v1/verdict?adresse=…`` on addresses of the local
     geocoder's address file (skipped, with the reason, when no geocoder answers).

Each workload runs at every ``--concurrency`` level (default 4 then 32 connections), the
baselines too, so that the ratios compare numbers measured in the same run. ``--workers N``
serves the app with N uvicorn worker processes (the hello baseline stays on one).

Every workload runs ``--runs`` times (default 3), interleaved (a round runs the baselines and
each endpoint once), and the figures are the medians of the rounds, printed with the load
average (1 min) measured before each workload.

Targets: p99 ≤ 50 ms for coordinates (issue 13) and ≤ 100 ms for addresses (issue 24) at 32
connections on one process.

Usage: ``python benchmarks/bench_web.py [--requests 5000] [--seconds 30] [--concurrency 4,32]
[--workers 1] [--runs 3]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# ------------------------------------------------------------------------------ load client

async def _worker(host: str, port: int, paths: list[str], state: dict) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while state["sent"] < state["limit"] and time.perf_counter() < state["deadline"]:
            i = state["sent"]
            state["sent"] += 1
            path = paths[i % len(paths)]
            request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                       "Accept: application/json\r\n\r\n").encode()
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            state["lat"].append(time.perf_counter() - t0)
            status = int(head[9:12])
            state["status"][status] = state["status"].get(status, 0) + 1
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _drive(host: str, port: int, paths: list[str], *, requests: int, seconds: float,
                 concurrency: int, warmup: int) -> dict:
    warm = {"sent": 0, "limit": warmup, "deadline": time.perf_counter() + 10, "lat": [],
            "status": {}}
    await asyncio.gather(*(_worker(host, port, paths, warm) for _ in range(concurrency)))
    state = {"sent": 0, "limit": requests, "deadline": time.perf_counter() + seconds,
             "lat": [], "status": {}}
    t0 = time.perf_counter()
    await asyncio.gather(*(_worker(host, port, paths, state) for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    lat = sorted(state["lat"])

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    return {"n": len(lat), "seconds": elapsed, "rps": len(lat) / elapsed if elapsed else 0,
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": lat[-1] * 1000 if lat else float("nan"),
            "status": {str(k): v for k, v in sorted(state["status"].items())}}


def drive_main(args: argparse.Namespace) -> None:
    paths = json.loads(Path(args.paths).read_text(encoding="utf-8"))
    result = asyncio.run(_drive("127.0.0.1", args.port, paths, requests=args.requests,
                                seconds=args.seconds, concurrency=args.concurrency,
                                warmup=args.warmup))
    sys.stdout.write(json.dumps(result) + "\n")


# ------------------------------------------------------------------------------ servers

HELLO_APP = '''
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", b"15")]})
    await send({"type": "http.response.body", "body": b'{"hello":"ok"}\\n'})
'''


def _rss_mb(pid: int) -> list[float]:
    """Resident memory (MB) of a server and of its worker processes (Linux /proc)."""
    out = []
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(target: str, port: int, *, factory: bool, app_dir: Path | None = None,
                 workers: int = 1, http: str | None = None) -> subprocess.Popen:
    cmd = [PY, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", "--no-access-log"]
    if http:
        cmd += ["--http", http]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    if factory:
        cmd.append("--factory")
    if app_dir:
        cmd += ["--app-dir", str(app_dir)]
    # addresses: the offline demonstration geocoder unless told otherwise (no network)
    env = {**os.environ, "QPV_GEO_GEOCODER": os.environ.get("QPV_GEO_GEOCODER", "demo")}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)


def wait_ready(port: int, path: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on port {port} did not start")


# ------------------------------------------------------------------------------ workloads

def sem_points(n: int = 500) -> list[tuple[float, float]]:
    """Points spread over SEM: half inside QPV (some near edges), half anywhere in SEM's box."""
    import numpy as np
    import shapely

    sys.path.insert(0, str(ROOT))
    from qpv_geo.reference.layers import load_reference
    from qpv_geo.settings import Settings

    ref = load_reference(Settings.from_env())
    rng = np.random.default_rng(6)
    xmin, ymin, xmax, ymax = ref.communes.total_bounds
    pts = [(float(rng.uniform(xmin, xmax)), float(rng.uniform(ymin, ymax)))
           for _ in range(n // 2)]
    qpv = ref.qpv.geometry.values
    while len(pts) < n:
        g = qpv[int(rng.integers(len(qpv)))]
        bx = shapely.bounds(g)
        x, y = rng.uniform(bx[0], bx[2]), rng.uniform(bx[1], bx[3])
        if shapely.contains_xy(g, x, y):
            pts.append((float(x), float(y)))
    rng.shuffle(pts)
    return [(lat, lon) for lon, lat in pts]


def demo_addresses(n: int = 300) -> list[str]:
    """Addresses of the local geocoder's file (installed BAN file, else the demo file)."""
    import csv

    candidates = [ROOT / "data" / "adresses" / "adresses-demo-sem.csv.gz"]
    data_dir = os.environ.get("QPV_GEO_DATA_DIR")
    if data_dir:
        candidates.insert(0, Path(data_dir) / "adresses" / "adresses-42.csv.gz")
    for path in candidates:
        if not path.is_file():
            continue
        out = []
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for row in csv.DictReader(fh, delimiter=";"):
                num = (row.get("numero") or "") + (row.get("rep") or "")
                parts = [num, row.get("nom_voie") or "", row.get("code_postal") or "",
                         row.get("nom_commune") or ""]
                text = " ".join(p for p in parts if p).strip()
                if text:
                    out.append(text)
        step = max(1, len(out) // n)
        return out[::step][:n]
    return []


# ------------------------------------------------------------------------------ main

def run(args: argparse.Namespace) -> dict:
    import httpx

    tmp = ROOT / "out" / "bench-web"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "hello_asgi.py").write_text(HELLO_APP, encoding="utf-8")
    app_port, hello_port = free_port(), free_port()
    # the app as qpv-geo serve runs it: its protocol (slow-client deadline, TCP_NODELAY)
    servers = [start_server("qpv_geo.web.app:create_app", app_port, factory=True,
                            workers=args.workers,
                            http="qpv_geo.web.server:EnvTimedH11Protocol"),
               start_server("hello_asgi:app", hello_port, factory=False, app_dir=tmp)]
    try:
        wait_ready(app_port, "/api/v1/donnees")
        wait_ready(hello_port, "/")
        points = sem_points()
        workloads: list[tuple[str, int, list[str]]] = [
            ("hello (ASGI nu)", hello_port, ["/"]),
            ("donnees", app_port, ["/api/v1/donnees"]),
            ("verdict lat/lon", app_port,
             [f"/api/v1/verdict?lat={lat:.6f}&lon={lon:.6f}" for lat, lon in points]),
        ]
        skipped = {}
        addresses = demo_addresses()
        if not addresses:
            skipped["verdict adresse"] = "aucun fichier d'adresses local trouvé"
        else:
            probe = httpx.get(f"http://127.0.0.1:{app_port}/api/v1/verdict",
                              params={"adresse": addresses[0]}, timeout=30)
            if probe.status_code == 503:
                skipped["verdict adresse"] = probe.json().get("erreur", "503")
            else:
                workloads.append(("verdict adresse", app_port, [
                    "/api/v1/verdict?adresse=" + urllib.parse.quote(a) for a in addresses]))
        rss_mb = _rss_mb(servers[0].pid)
        runs: dict[str, dict[str, list[dict]]] = {}
        # interleaved runs: every workload once per round, the baselines with them
        for rnd in range(1, args.runs + 1):
            for conc in args.levels:
                for name, port, paths in workloads:
                    paths_file = tmp / "paths.json"
                    paths_file.write_text(json.dumps(paths), encoding="utf-8")
                    load = os.getloadavg()[0]
                    out = subprocess.run(
                        [PY, __file__, "--drive", "--port", str(port), "--paths",
                         str(paths_file), "--requests", str(args.requests), "--seconds",
                         str(args.seconds), "--concurrency", str(conc), "--warmup",
                         str(args.warmup)],
                        capture_output=True, text=True, check=True, cwd=ROOT)
                    r = json.loads(out.stdout)
                    r["load"] = load
                    runs.setdefault(str(conc), {}).setdefault(name, []).append(r)
                    print(f"  tour {rnd} {conc:>2} cx {name:<18} {r['n']:>6} req  "
                          f"{r['rps']:>7.0f} req/s  p50 {r['p50_ms']:6.2f} ms  p99 "
                          f"{r['p99_ms']:6.2f} ms  charge {load:.2f}  statuts {r['status']}",
                          flush=True)
        results = {conc: {name: _median_run(rs) for name, rs in by_name.items()}
                   for conc, by_name in runs.items()}
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            try:
                s.wait(10)
            except subprocess.TimeoutExpired:
                s.kill()
    return {"results": results, "runs": runs, "skipped": skipped, "rss_mb": rss_mb}


def _median_run(rs: list[dict]) -> dict:
    """The median of each figure over the interleaved runs of one workload."""
    out: dict = {"runs": len(rs), "status": {}}
    for key in ("n", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "load"):
        out[key] = statistics.median(r[key] for r in rs)
    for r in rs:
        for k, v in r["status"].items():
            out["status"][k] = out["status"].get(k, 0) + v
    return out


def report(outcome: dict, args: argparse.Namespace) -> None:
    print()
    print(f"Machine : {os.cpu_count()} cœurs · {args.workers} processus serveur qpv-geo · "
          f"au plus {args.requests} requêtes ou {args.seconds:.0f} s par point d'accès · "
          "client dans un processus séparé, boucle locale")
    loads = [r["load"] for res in outcome["runs"].values() for rs in res.values() for r in rs]
    print(f"Médianes de {args.runs} tours entrelacés (chaque tour : le pair ASGI nu et chaque "
          f"point d'accès) · charge moyenne (1 min) pendant les mesures : médiane "
          f"{statistics.median(loads):.2f}, maintenant {os.getloadavg()[0]:.2f}")
    head = (f"{'cx':>3} {'point d’accès':<18} {'req':>6} {'req/s':>8} {'p50 ms':>8} "
            f"{'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'p99/hello':>10} {'p99/donnees':>12}")
    print(head)
    print("-" * len(head))
    for conc, res in outcome["results"].items():
        hello = res.get("hello (ASGI nu)")
        base = res.get("donnees")
        for name, r in res.items():
            rh = r["p99_ms"] / hello["p99_ms"] if hello else float("nan")
            rb = r["p99_ms"] / base["p99_ms"] if base else float("nan")
            print(f"{conc:>3} {name:<18} {r['n']:>6} {r['rps']:>8.0f} {r['p50_ms']:>8.2f} "
                  f"{r['p90_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} {rh:>10.1f} "
                  f"{rb:>12.1f}")
    for name, why in outcome["skipped"].items():
        print(f"{name:<18} non mesuré : {why}")
    if outcome.get("rss_mb"):
        print("Mémoire résidente des processus qpv-geo (Mo, superviseur puis processus) : "
              + ", ".join(f"{m:.0f}" for m in outcome["rss_mb"]))
    goals = {"verdict lat/lon": 50.0, "verdict adresse": 100.0}
    for conc, res in outcome["results"].items():
        hello = res.get("hello (ASGI nu)")
        for name, goal in goals.items():
            r = res.get(name)
            if not r:
                continue
            line = (f"\n{name} à {conc} connexions : p50 {r['p50_ms']:.1f} ms, p99 "
                    f"{r['p99_ms']:.1f} ms (ASGI nu dans les mêmes tours : p50 "
                    f"{hello['p50_ms']:.1f} ms, p99 {hello['p99_ms']:.1f} ms)" if hello else "")
            if conc == "32":
                ok = r["p99_ms"] <= goal
                line += f" → objectif p99 ≤ {goal:.0f} ms {'atteint' if ok else 'NON atteint'}"
            print(line)
            bad = {k: v for k, v in r["status"].items() if k != "200"}
            if bad:
                print(f"Réponses non 200 pour {name} : {bad}")
    out = ROOT / "out" / "bench-web" / "bench_web.json"
    out.write_text(json.dumps(outcome, indent=2), encoding="utf-8")
    print(f"Détails : {out.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", default="4,32",
                        help="connexions simultanées, plusieurs niveaux séparés par des virgules")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3,
                        help="tours entrelacés (les chiffres sont leurs médianes)")
    parser.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drive:
        args.concurrency = int(args.concurrency)
        drive_main(args)
        return
    args.levels = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    print("bench-web : démarrage des serveurs…", flush=True)
    report(run(args), args)


if __name__ == "__main__":
    main()
