"""Shared plumbing for the benchmarks: sandboxes in their own processes, phases measured apart.

Each measured phase runs in a fresh child process, so its peak RSS is its own and the sandbox
(a separate process too) does not count against it. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def machine() -> str:
    cpus = os.cpu_count()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{platform.machine()} {cpus} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def start_process(args: list[str], port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        wait_for_port(port, timeout=120)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"{args} did not start: {proc.stderr.read().decode()[-2000:]}") from None
    return proc


def _child(fn: Callable[..., dict], kwargs: dict, queue: mp.Queue) -> None:
    began = time.perf_counter()
    result = fn(**kwargs)
    result["seconds"] = time.perf_counter() - began
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(result)


def measure(fn: Callable[..., dict], **kwargs) -> dict:
    """Run ``fn(**kwargs)`` in a fresh process; returns its dict + seconds + peak RSS (MB)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(fn, kwargs, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode:
        raise RuntimeError(f"{fn.__name__} failed with exit code {proc.exitcode}")
    return result


def save(name: str, figures: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **figures}, indent=2, default=str))
    return path
