"""``make learner`` keeps a learner's work: copies in learner/ (not under build/, which
``make clean`` deletes), never overwritten once changed; ``make lab LEARNER=1`` opens them
on 127.0.0.1 with token authentication."""

import json
import os
import re
import shlex
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import make_learner
import pytest

ROOT = Path(__file__).resolve().parent.parent
COURSE = """# %% [markdown]
# # 01 · A tiny chapter

# %%
from tripletlab.exercises import check

# %% [markdown]
# **Exercise 1.** What margin?

# %% tags=["solution"]
cosine_margin = 0.15

# %%
check("01.margin", cosine_margin)
"""


@pytest.fixture
def course(tmp_path):
    source = tmp_path / "01_tiny.py"
    source.write_text(COURSE)
    return source, tmp_path / "learner"


@pytest.fixture
def run(capsys):
    """``make_learner.main`` on one source; the lines it printed."""

    def run(source: Path, out: Path) -> list[str]:
        assert make_learner.main(["--out", str(out), str(source)]) == 0
        return capsys.readouterr().out.splitlines()

    return run


def test_a_second_run_changes_nothing(course, run):
    source, out = course
    (first,) = run(source, out)
    copy = (out / "01_tiny.ipynb").read_bytes()
    assert "written" in first and "cosine_margin = ...  # your code here" in copy.decode()
    (second,) = run(source, out)
    assert "up to date" in second and (out / "01_tiny.ipynb").read_bytes() == copy
    assert json.loads((out / ".generated.json").read_text()).keys() == {"01_tiny.ipynb"}


def test_a_copy_the_learner_changed_is_kept(course, run):
    source, out = course
    run(source, out)
    mine = (out / "01_tiny.ipynb").read_text().replace("= ...  # your code here", "= 0.15")
    (out / "01_tiny.ipynb").write_text(mine)
    (line,) = run(source, out)
    assert "yours" in line and "kept" in line
    assert (out / "01_tiny.ipynb").read_text() == mine
    assert not (out / "01_tiny.new.ipynb").exists()  # the course did not change


def test_when_the_course_changes_the_new_copy_goes_beside_the_learners(course, run):
    source, out = course
    run(source, out)
    mine = (out / "01_tiny.ipynb").read_text().replace("= ...  # your code here", "= 0.15")
    (out / "01_tiny.ipynb").write_text(mine)
    source.write_text(COURSE.replace("What margin?", "Which margin on cosine distance?"))
    (line,) = run(source, out)
    beside = out / "01_tiny.new.ipynb"
    assert f"the updated copy is {beside}" in line
    assert (out / "01_tiny.ipynb").read_text() == mine
    assert "Which margin on cosine distance?" in beside.read_text()
    beside.write_text(beside.read_text().replace("= ...  # your code here", "= 0.2"))
    source.write_text(COURSE.replace("What margin?", "A third wording?"))
    (line,) = run(source, out)
    assert "nothing written" in line and "= 0.2" in beside.read_text()


def test_a_copy_the_tool_did_not_write_is_never_overwritten(course, run):
    source, out = course
    out.mkdir()
    (out / "01_tiny.ipynb").write_text("{}")  # no record of it in .generated.json
    (line,) = run(source, out)
    assert (out / "01_tiny.ipynb").read_text() == "{}" and "yours" in line
    assert (out / "01_tiny.new.ipynb").exists()


def make_dry_run(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    return subprocess.run(
        ["make", "-C", str(ROOT), "--no-print-directory", "-n", "-B", *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout.replace("\\\n", " ")


def test_make_learner_writes_to_learner_which_clean_keeps_and_git_ignores():
    assert "tools/make_learner.py --out learner " in make_dry_run("learner")
    clean = make_dry_run("clean")
    assert "rm -rf build" in clean and "learner" not in clean
    assert "learner/" in (ROOT / ".gitignore").read_text().splitlines()


def test_make_lab_learner_opens_the_learner_copies_on_localhost_with_a_token():
    default = [line for line in make_dry_run("lab").splitlines() if "jupyter lab" in line]
    learner = make_dry_run("lab", "LEARNER=1").splitlines()
    (lab,) = [line for line in learner if "jupyter lab" in line]
    assert "--notebook-dir=notebooks" in default[0] and "--notebook-dir=learner" in lab
    assert any("tools/make_learner.py --out learner" in line for line in learner)
    for line in (default[0], lab):
        assert "--ip=127.0.0.1" in line and "token" not in line.lower()


def test_the_lab_serves_the_learner_copies_only_with_its_token(course, run, tmp_path):
    source, out = course
    run(source, out)  # tmp_path/learner/01_tiny.ipynb, where `make lab LEARNER=1` looks
    (lab,) = [line for line in make_dry_run("lab", "LEARNER=1").splitlines() if "jupyter" in line]
    command = shlex.split(lab)
    command[0] = str(ROOT / command[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command += [f"--port={port}", "--ServerApp.port_retries=0"]
    if os.geteuid() == 0:  # CI runs as root, which JupyterLab refuses without this
        command.append("--allow-root")
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        token, deadline = None, time.time() + 120
        while token is None and time.time() < deadline:
            line = server.stderr.readline().decode()
            if not line and server.poll() is not None:
                break
            match = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=(\w+)", line)
            token = match.group(1) if match else None
        assert token, "JupyterLab printed no URL with a token"
        contents = f"http://127.0.0.1:{port}/api/contents"
        for _ in range(300):  # the URL is printed just before the server listens
            try:
                urllib.request.urlopen(contents, timeout=30)
                pytest.fail("the server answered without its token")
            except urllib.error.HTTPError as refused:
                assert refused.code == 403
                break
            except urllib.error.URLError:
                time.sleep(0.1)
        else:
            pytest.fail("JupyterLab does not listen on 127.0.0.1")
        with urllib.request.urlopen(f"{contents}?token={token}", timeout=30) as reply:
            listed = {item["name"] for item in json.load(reply)["content"]}
        assert "01_tiny.ipynb" in listed
    finally:
        server.terminate()
        server.wait(timeout=30)
