"""Shared helpers of the deployment tests (tests/deploy): paths, the settings `autoglm serve`
accepts, the metric names the server exports, free loopback ports. Owned by the deploy thread."""

import os
import pathlib
import re
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("AUTOGLM_BIN", str(ROOT / "build" / "tools" / "autoglm" / "autoglm"))
BUILD_DIR = pathlib.Path(os.environ.get("AUTOGLM_BUILD_DIR", str(ROOT / "build")))
TINY_MODEL = ROOT / "models" / "autoglm-tiny"
VENV_BIN = pathlib.Path(sys.executable).parent  # hadolint, kubernetes-validate live beside python

sys.path.insert(0, str(ROOT / "tests" / "python"))  # server_process.ServerProcess


def serve_settings():
    """Every setting key of `autoglm serve`, read from its --help (one `(env AUTOGLM_KEY)` each)."""
    text = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True,
                          check=True).stdout
    keys = {m.lower() for m in re.findall(r"\(env AUTOGLM_([A-Z0-9_]+)\)", text)}
    keys.discard("config")
    assert "model" in keys and "drain_timeout" in keys, text
    return keys


# Metrics the rules and the dashboard may name before the sources export them (empty: every
# exported metric is drawn).
PENDING_METRICS: set = set()


def exported_metric_names():
    """Metric names written by the server's sources: every "autoglm:..." and "process_..."
    string literal under src/ (counters rendered through MetricWriter::counter get `_total`
    appended at run time; histograms get _bucket/_sum/_count)."""
    names = set()
    for path in (ROOT / "src").rglob("*.cpp"):
        for name in re.findall(r'"((?:autoglm:|process_)[a-z0-9_]+)["{]', path.read_text()):
            names.add(name)
    assert "autoglm:num_requests_waiting" in names, names
    return names


def base_metric_name(series_name, known):
    """The exported name a series belongs to, or None: strips _bucket/_sum/_count/_total."""
    if series_name in known:
        return series_name
    for suffix in ("_bucket", "_sum", "_count", "_total"):
        if series_name.endswith(suffix) and series_name[: -len(suffix)] in known:
            return series_name[: -len(suffix)]
    return None


def promql_metric_names(expr):
    """The metric names a PromQL expression reads (autoglm:* and process_* series)."""
    return set(re.findall(r"\b((?:autoglm:|process_)[a-z0-9_]+)", expr))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
