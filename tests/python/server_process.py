"""Starts `autoglm serve` on an ephemeral loopback port for the server tests and reads its JSON
log lines (stdout) on a background thread. Shared by tests/python/test_server_*.py."""

import json
import os
import pathlib
import queue
import signal
import subprocess
import threading
import time

import httpx

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("AUTOGLM_BIN", str(ROOT / "build" / "tools" / "autoglm" / "autoglm"))
MODEL = ROOT / "models" / "autoglm-tiny"


def wait_for(condition, timeout=10, interval=0.05):
    """Polls condition() until it is true or `timeout` seconds pass; returns its last value.
    For what a server does asynchronously (log lines, metrics), instead of a fixed sleep."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


class ServerProcess:
    def __init__(self, *args, env=None, model=MODEL):
        full_env = dict(os.environ)
        full_env.update(env or {})
        cmd = [BIN, "serve", "--port", "0"]
        if model is not None:
            cmd += ["--model", str(model)]
        self.proc = subprocess.Popen(cmd + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env)
        self.lines = []  # every stdout line, parsed
        self.raw_lines = []
        self._events = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.port = None
        self.scheme = "https" if "--tls-cert" in args else "http"
        deadline = time.monotonic() + 60
        while self.port is None and time.monotonic() < deadline:
            try:
                line = self._events.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited: " + self.proc.stderr.read().decode())
                continue
            if line.get("msg") == "listening":
                self.port = line["port"]
        assert self.port, "server never logged 'listening'"

    def _read_stdout(self):
        for raw in self.proc.stdout:
            text = raw.decode("utf-8")
            self.raw_lines.append(text)
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                parsed = {"unparsed": text}
            self.lines.append(parsed)
            self._events.put(parsed)

    @property
    def url(self):
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=60, **client_args):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=5, **client_args).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError("server never became ready")

    def terminate(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
