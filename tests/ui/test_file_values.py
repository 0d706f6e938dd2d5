"""ui.file_values: gradio's private upload folder belongs to one portal process and ends with it
(the checks of file values from clients are in tests/security/test_attack_file_values.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MAKE_FOLDER = ("from ui.file_values import ensure_private_gradio_folder as make; f = make(); "
               "(f / 'antrag.txt').write_text('Max Mustermann'); print(f)")


def _env(temp: Path, **extra: str) -> dict[str, str]:
    """This environment with ``temp`` as the temp dir and no upload folder chosen by an operator."""
    clean = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    return {**clean, "TMPDIR": str(temp), "PYTHONPATH": str(REPO), **extra}


def _run(tmp_path: Path, **env: str) -> Path:
    out = subprocess.run([sys.executable, "-c", MAKE_FOLDER], cwd=REPO, check=True, capture_output=True, text=True,
                         env=_env(tmp_path, **env))
    return Path(out.stdout.strip().splitlines()[-1])


def test_the_folder_a_process_made_is_gone_with_the_process(tmp_path):
    folder = _run(tmp_path)
    assert folder.parent == tmp_path.resolve() and folder.name.startswith("kiportal-gradio-")
    assert not folder.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_operators_own_folder_stays(tmp_path):
    chosen = tmp_path / "uploads"
    folder = _run(tmp_path, GRADIO_TEMP_DIR=str(chosen))
    assert folder == chosen.resolve()
    assert (chosen / "antrag.txt").read_text() == "Max Mustermann"
    assert oct(chosen.stat().st_mode & 0o777) == "0o700"


def test_kiportal_serve_removes_its_folder_when_stopped(tmp_path):
    """The way an operator stops the service (systemd sends SIGTERM): uvicorn shuts down, the process
    ends normally, and the uploads folder goes with it."""
    from servers import free_port, stop_process, wait_port

    from evals.bench import kiportal_command

    port, temp, log = free_port(), tmp_path / "tmp", tmp_path / "serve.log"
    temp.mkdir()
    env = _env(temp, KIPORTAL_HOME=str(tmp_path / "data"), KIPORTAL_EMBEDDING__MODE="hash",
               KIPORTAL_VECTOR__MODE="memory", KIPORTAL_LLM__DEFAULT="extraktiv")
    with open(log, "wb") as out:
        proc = subprocess.Popen(kiportal_command() + ["serve", "--host", "127.0.0.1", "--port", str(port)],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_port(port, 120, proc, "kiportal serve", log)
        made = [p.name for p in temp.iterdir()]
        assert any(name.startswith("kiportal-gradio-") for name in made), made
    finally:
        stop_process(proc, timeout=60)  # SIGTERM, as systemd stops it
    assert proc.returncode == 0, log.read_text(errors="replace")[-2000:]
    assert not [p for p in temp.iterdir() if p.name.startswith("kiportal-gradio-")]
