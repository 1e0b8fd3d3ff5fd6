"""config/autoglm.yaml, the annotated default config: every key (set or commented out) is a
real setting of `autoglm serve`, every setting is documented there, and the values pass the
server's own checks (--check-config). Owned by the deploy thread."""

import re
import subprocess

from deploy_common import BIN, ROOT, TINY_MODEL, serve_settings

CONFIG = ROOT / "config" / "autoglm.yaml"


def documented_keys():
    keys = set()
    for line in CONFIG.read_text().splitlines():
        m = re.match(r"^#?\s?([a-z0-9_]+):(\s|$)", line)
        if m:
            keys.add(m.group(1))
    return keys


def test_every_key_is_a_setting_and_every_setting_is_documented():
    settings = serve_settings()
    keys = documented_keys()
    assert keys - settings == set(), "keys in config/autoglm.yaml that serve does not know"
    # inject_fault exists only in test builds (AUTOGLM_FAULT_INJECTION) and is never documented.
    assert settings - keys - {"inject_fault"} == set(), "settings missing from config/autoglm.yaml"


def test_default_config_values_pass_the_servers_checks():
    # The file's model path is the container's mount; the flag points at the tiny fixture.
    result = subprocess.run([BIN, "serve", "--config", str(CONFIG), "--model", str(TINY_MODEL),
                             "--check-config"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "config OK" in result.stdout and "0.0.0.0:8080" in result.stdout


def test_check_config_names_an_unknown_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONFIG.read_text() + "max_num_seq: 3\n")
    result = subprocess.run([BIN, "serve", "--config", str(bad), "--model", str(TINY_MODEL),
                             "--check-config"], capture_output=True, text=True)
    assert result.returncode == 1
    assert "unknown config key 'max_num_seq'" in result.stderr


def test_check_config_rejects_a_directory_without_weights(tmp_path):
    (tmp_path / "config.json").write_text((TINY_MODEL / "config.json").read_text())
    result = subprocess.run([BIN, "serve", "--model", str(tmp_path), "--check-config"],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "has no .safetensors weights" in result.stderr
