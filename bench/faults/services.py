"""The two services as separate processes, for the fault-injection scripts: the inference server on
the tiny random model and `vlm-batch serve` with its own data folder (embedded PostgreSQL), both on
free loopback ports, plus what the scripts measure about a process (RSS, JVM heap after a GC)."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"


def job_folder(prefix: str) -> tuple[Path, Path]:
    """A fresh work folder and the jobs folder in it, with an empty images/ for the job's source."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    jobs = work / "jobs"
    (jobs / "images").mkdir(parents=True)
    return work, jobs


def write_job(jobs: Path, name: str, base_url: str, tasks: list[str], *, concurrency: int | None = None,
              more: str = "") -> None:
    """The job file of a fault script: jobs/images as its source, a yearly schedule with catch-up off (the
    scripts start runs through the API), `tasks` as YAML flow maps, `more` as further top-level YAML lines."""
    task_lines = "".join(f"  - {t}\n" for t in tasks)
    limit = f", concurrency: {concurrency}" if concurrency is not None else ""
    (jobs / f"{name}.yaml").write_text(
        f"name: {name}\n"
        f'schedule: "0 0 1 1 *"\n'
        f"scheduling: {{ start_date: 2020-01-01, catchup: false }}\n"
        f"source: {{ folder: images }}\n"
        f"tasks:\n{task_lines}"
        f'inference: {{ base_url: "{base_url}"{limit} }}\n{more}')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _wait(url: str, proc: subprocess.Popen, log: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if get(url, 2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer in {seconds:.0f} s:\n{log.read_text()[-4000:]}")


class Service:
    def __init__(self, name: str, proc: subprocess.Popen, base: str, log: Path):
        self.name, self.proc, self.base, self.log = name, proc, base, log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_vlmserve(work: Path, nice: int = 0) -> Service:
    port = free_port()
    log = work / f"vlmserve-{port}.log"
    cmd = [str(PYTHON), "-m", "vlmserve", "serve", "--model", "tiny-random", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(_niced(cmd, nice), cwd=ROOT / "inference", stdout=log.open("ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(base + "/health", proc, log, 180)
    return Service("vlmserve", proc, base, log)


def start_app_serve(work: Path, jobs: Path, playground_url: str, build_dir: Path | None = None, nice: int = 0,
                    heap: str = "512m") -> Service:
    """`./vlm-batch serve` as a user runs it (the launcher exec's java, so the pid is the JVM's)."""
    port = free_port()
    log = work / f"app-serve-{port}.log"
    env = dict(os.environ)
    env["VLM_DATA_DIR"] = str(work / "data")
    env["VLM_NO_BUILD"] = "1"
    if build_dir:
        env["VLM_BUILD_DIR"] = str(build_dir)
    env.pop("SPRING_DATASOURCE_URL", None)
    env["VLM_JAVA_OPTS"] = f"-Xmx{heap}"
    cmd = [str(ROOT / "vlm-batch"), "serve", "--port", str(port), "--jobs", str(jobs), "--inference-url", playground_url]
    proc = subprocess.Popen(_niced(cmd, nice), cwd=work, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(base + "/api/jobs", proc, log, 300)
    return Service("app", proc, base, log)


def _niced(cmd: list[str], nice: int) -> list[str]:
    return (["nice", "-n", str(nice)] + cmd) if nice else cmd


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def jcmd() -> str:
    java_home = subprocess.run([str(ROOT / "scripts" / "find-java")], capture_output=True, text=True).stdout.strip()
    path = Path(java_home) / "bin" / "jcmd"
    return str(path) if path.exists() else (shutil.which("jcmd") or "jcmd")


def heap_after_gc(pid: int, jcmd_path: str) -> int | None:
    """Runs a full GC in the JVM, then reads the heap in use (bytes) from GC.heap_info."""
    try:
        subprocess.run([jcmd_path, str(pid), "GC.run"], capture_output=True, timeout=60, check=True)
        out = subprocess.run([jcmd_path, str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=60).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    # ParallelGC prints one "used NK" per generation; G1 one for the whole heap
    used = [int(k) for k in re.findall(r"used (\d+)K", out)]
    if "PSYoungGen" in out:
        young = re.search(r"PSYoungGen\s+total \d+K, used (\d+)K", out)
        old = re.search(r"ParOldGen\s+total \d+K, used (\d+)K", out)
        if young and old:
            return (int(young.group(1)) + int(old.group(1))) * 1024
    return used[0] * 1024 if used else None


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    i = min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))
    return s[i]


def write_result(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)


def machine() -> str:
    return (f"{os.cpu_count()}-core dev machine shared with other engineers' builds and tests "
            f"(load average at the end {os.getloadavg()[0]:.1f})")
