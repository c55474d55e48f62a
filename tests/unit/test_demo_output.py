"""Quiet output: `make demo` prints its summary (the rest goes to its log); GX stays out of task logs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_library_output_goes_to_the_log_and_only_the_summary_to_the_terminal(tmp_path):
    log = tmp_path / "demo.log"
    script = textwrap.dedent(
        f"""
        import logging, os, subprocess, sys
        from include.sandbox import demo
        logging.basicConfig(level=logging.INFO)
        with demo._output_to_log(__import__("pathlib").Path({str(log)!r})):
            logging.getLogger("airflow.task").info("task log line")
            print("a library print")
            os.write(2, b"raw stderr from C code\\n")
            subprocess.run([sys.executable, "-c", "print('a child process')"], check=True)
            demo.say("Summary: 3 receipts posted")
        print("after: back on the terminal")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    terminal = (out.stdout + out.stderr).splitlines()
    assert terminal == ["Summary: 3 receipts posted", "after: back on the terminal"], terminal
    text = log.read_text()
    for line in (
        "task log line",
        "a library print",
        "raw stderr from C code",
        "a child process",
        "Summary: 3",
    ):
        assert line in text, (line, text)


def test_importing_gx_through_the_gate_logs_nothing_below_warning():
    """GX logs hundreds of DEBUG lines while it is imported ("Skipping registering function …"): the
    gate quiets GX before the first import, so a task logging at DEBUG does not carry them."""
    script = textwrap.dedent(
        """
        import logging
        records = []
        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)
        logging.basicConfig(level=logging.DEBUG, handlers=[Keep()])
        import include.sitoo_erp.quality.gate  # what every GX gate imports first
        import great_expectations  # noqa: F401
        noisy = [r.getMessage()[:60] for r in records
                 if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]
        print(len(noisy), noisy[:3])
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.startswith("0 "), out.stdout
