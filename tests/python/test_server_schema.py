"""schemathesis against the live server's own /openapi.json, with bounded examples and a fixed
seed: no 5xx, every response conforms to the documented schema, status code and content type."""

import os
import pathlib
import subprocess
import sys

from server_process import ServerProcess


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path):
    schemathesis = pathlib.Path(sys.executable).parent / "schemathesis"
    with ServerProcess() as proc:
        proc.wait_ready()
        out = subprocess.run(
            [str(schemathesis), "run", proc.url + "/openapi.json", "--max-examples", "20",
             "--seed", "1", "--request-timeout", "30", "--checks",
             "not_a_server_error,response_schema_conformance,status_code_conformance,"
             "content_type_conformance"],
            capture_output=True, timeout=600, cwd=tmp_path,  # its .schemathesis/ cache goes there
            env=dict(os.environ, NO_COLOR="1"))
        report = out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")
        assert out.returncode == 0, report
        assert proc.terminate() == 0
