"""bench/http_server.py stays runnable: a one-second run of the real server with its instant engine
answers every request with 200 and writes its figures (the speed itself is the benchmark's business)."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_http_benchmark_runs_and_reports(tmp_path):
    out = tmp_path / "http_server.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "http_server.py"), "--seconds", "1", "--warmup", "0.5",
                        "--images", "2", "--concurrency", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    report = json.loads(out.read_text())
    assert report["requests"] > 0 and set(report["statuses"]) == {"200"}
    assert report["requests_per_server_cpu_s"] > 0 and report["mean_jpeg_bytes"] > 100_000
