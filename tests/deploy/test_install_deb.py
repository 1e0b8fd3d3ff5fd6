"""The Debian package: cpack builds the .deb from the build directory ctest passes in, dpkg-deb
extracts it into a throwaway root, and the installed tree is checked and run: the layout,
the Depends field against the libraries the binary links, `autoglm --version`, autoglm-start's
errors on a bad config and a missing model, and autoglm-start serving the tiny model's /health.
Owned by the deploy thread."""

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time

import httpx
import pytest

from deploy_common import BUILD_DIR, TINY_MODEL

PREFIX = "opt/autoglm"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpack")
    subprocess.run(["cpack", "-G", "DEB", "--config", str(BUILD_DIR / "CPackConfig.cmake"),
                    "-B", str(out)], check=True, capture_output=True, cwd=BUILD_DIR)
    debs = list(out.glob("autoglm_*.deb"))
    assert len(debs) == 1, list(out.iterdir())
    root = tmp_path_factory.mktemp("root")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    info = subprocess.run(["dpkg-deb", "-f", str(debs[0])], check=True, capture_output=True,
                          text=True).stdout
    return {"root": root, "prefix": root / PREFIX, "control": info}


def test_layout(installed):
    prefix = installed["prefix"]
    assert os.access(prefix / "bin" / "autoglm", os.X_OK)
    assert os.access(prefix / "bin" / "autoglm-start", os.X_OK)
    assert (prefix / "config" / "autoglm.yaml").is_file()
    assert (prefix / "logs").is_dir() and (prefix / "lib").is_dir()
    assert "Package: autoglm" in installed["control"]


def test_depends_covers_every_linked_library_outside_cuda(installed):
    depends = re.search(r"^Depends: (.*)$", installed["control"], re.M).group(1)
    packages = {p.strip().split()[0] for p in depends.split(",")}
    ldd = subprocess.run(["ldd", str(installed["prefix"] / "bin" / "autoglm")], check=True,
                         capture_output=True, text=True).stdout
    libraries = {}  # as ldd names it -> its real path
    for path in re.findall(r"=> (/\S+)", ldd):
        real = os.path.realpath(path)
        if real.startswith("/usr/local/cuda"):  # the NVIDIA toolkit's: the CUDA image has it
            continue
        if re.match(r"lib(a|ub|t|l)san\.", os.path.basename(path)):  # a sanitizer build's
            continue
        libraries[path] = real
    # One dpkg query for all (each costs a read of the package database). Merged /usr: dpkg
    # may know a library by its /lib or its /usr/lib path, so ask for both.
    owners = {}
    query = subprocess.run(["dpkg", "-S", *libraries, *libraries.values()], capture_output=True,
                           text=True)
    for line in query.stdout.splitlines():
        owner_list, _, owned = line.rpartition(": ")
        owners[owned] = owner_list.split(",")[0].split(":")[0].strip()
    for path, real in libraries.items():
        package = owners.get(real) or owners.get(path)
        assert package, f"no package owns {path}"
        assert package in packages, f"{path} comes from {package}, missing from Depends"


def test_installed_binary_runs(installed):
    result = subprocess.run([str(installed["prefix"] / "bin" / "autoglm"), "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "autoglm 0.1.0"


def start(installed, *args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOGLM_")}
    full_env.update(env or {})
    return [str(installed["prefix"] / "bin" / "autoglm-start"), *args], full_env


def test_start_refuses_a_bad_config_with_a_clear_error(installed, tmp_path):
    bad = tmp_path / "autoglm.yaml"
    bad.write_text("model: /models/autoglm\nmax_num_seqs: many\n")
    cmd, env = start(installed, "--config", str(bad))
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith("autoglm-start: configuration check failed for " + str(bad))
    assert "max_num_seqs must be an integer" in result.stderr

    cmd, env = start(installed, "--config", str(tmp_path / "missing.yaml"))
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "missing.yaml does not exist" in result.stderr


def test_start_refuses_the_default_config_without_a_model(installed):
    # The packaged config points at /models/autoglm, which this machine does not have.
    cmd, env = start(installed)
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "model directory '/models/autoglm' does not exist" in result.stderr


def test_start_serves_the_tiny_model(installed):
    cmd, env = start(installed, "--model", str(TINY_MODEL), "--host", "127.0.0.1", "--port", "0",
                     "--warmup", "false")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(raw) for raw in proc.stdout], daemon=True).start()
    try:
        port = None
        deadline = time.monotonic() + 60
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = json.loads(lines.get(timeout=1))
            except (queue.Empty, json.JSONDecodeError):
                continue
            if line.get("msg") == "listening":
                port = line["port"]
        assert port, proc.stderr.read().decode() if proc.poll() is not None else "no port"
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert health.status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
