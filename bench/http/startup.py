#!/usr/bin/env python3
"""Time from spawning `concord serve` to the first 200 from /readyz (embedded engine, fresh data dir), N runs.
Usage: bench/http/startup.py [RUNS] [BACKEND]   (Release build of src/Concord.Cli; loopback port 7412)"""
import os, subprocess, sys, tempfile, time, urllib.request, shutil, statistics, signal

runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
backend = sys.argv[2] if len(sys.argv) > 2 else "embedded"
root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
cli = os.path.join(root, "src/Concord.Cli/bin/Release/net10.0/Concord.Cli.dll")
url = "http://127.0.0.1:7412"
times = []
for i in range(runs + 1):  # the first run warms the OS file cache and is not counted
    data = tempfile.mkdtemp(prefix="concord-startup-")
    t0 = time.perf_counter()
    p = subprocess.Popen(["dotnet", cli, "serve", "--backend", backend, "--data", data, "--urls", url],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.005)
    elapsed = time.perf_counter() - t0
    if i > 0:
        times.append(elapsed * 1000)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    shutil.rmtree(data, ignore_errors=True)
times.sort()
print(f"backend={backend} runs={runs} spawn-to-ready ms: min {times[0]:.0f}, median {statistics.median(times):.0f}, max {times[-1]:.0f}")
