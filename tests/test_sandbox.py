"""The sandbox against hostile answers: each scores 0 within its limit and leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from llmcompare import compare
from llmcompare.backends.fake import FunctionModel
from llmcompare.errors import ConfigurationError
from llmcompare.prompts import PromptItem
from llmcompare.sandbox import (
    CodeExecutionWarning,
    Limits,
    SandboxUnavailable,
    UnitTests,
    run_python,
)
from llmcompare.types import Completion, Usage

# The tests: they pass only when the answer's `attack()` returns True, i.e. when the attack
# WORKED. A score of 0 therefore means the sandbox stopped it.
TESTS = "assert attack() is True\n"


@pytest.fixture(scope="module", autouse=True)
def _sandbox(sandbox: None) -> None:
    """Every test here runs model code in the sandbox."""


@pytest.fixture
def scorer() -> Iterator[UnitTests]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodeExecutionWarning)
        yield UnitTests(
            allow_code_execution=True, limits=Limits(timeout_s=5, cpu_s=5, memory_mb=512)
        )


def answer(code: str) -> Completion:
    return Completion(
        text=f"Here it is:\n```python\n{code}\n```",
        finish_reason="stop",
        usage=Usage(),
        model="fake:x",
    )


def item(tests: str = TESTS) -> PromptItem:
    return PromptItem(id="hostile", prompt="Write attack().", reference=tests)


def sandbox_processes() -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if "llmcompare-sandbox-" in line]


def test_a_correct_solution_scores_1(scorer: UnitTests) -> None:
    code = "def add(a, b):\n    return a + b"
    assert scorer(answer(code), item("assert add(2, 3) == 5\n")) is True


def test_a_wrong_solution_scores_0(scorer: UnitTests) -> None:
    code = "def add(a, b):\n    return a - b"
    assert scorer(answer(code), item("assert add(2, 3) == 5\n")) is False


def test_an_infinite_loop_is_killed_at_the_timeout() -> None:
    result = run_python("while True:\n    pass\n", limits=Limits(timeout_s=1, cpu_s=30))
    assert result.status == "timeout"
    assert not sandbox_processes()


def test_a_cpu_bound_loop_hits_the_cpu_limit() -> None:
    result = run_python("while True:\n    pass\n", limits=Limits(timeout_s=30, cpu_s=1))
    assert result.status == "failed"
    assert result.returncode is not None
    assert result.returncode != 0


def test_a_fork_bomb_is_bounded_and_every_process_is_gone(scorer: UnitTests) -> None:
    code = (
        "import os, time\n"
        "def attack():\n"
        "    made = 0\n"
        "    while made < 10_000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        made += 1\n"
        "    return True\n"
    )
    assert scorer(answer(code), item()) is False
    assert not sandbox_processes()


def test_a_huge_allocation_fails(scorer: UnitTests) -> None:
    code = "def attack():\n    block = bytearray(10 * 1024**3)\n    return len(block) > 0"
    assert scorer(answer(code), item()) is False


def test_writing_outside_the_work_folder_fails_and_leaves_nothing(
    scorer: UnitTests, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    planted = Path("/tmp") / f"llmcompare-planted-{uuid.uuid4().hex}"
    code = (
        "import os\n"
        "def attack():\n"
        "    done = False\n"
        f"    for path in ({str(planted)!r}, {str(tmp_path / 'new.txt')!r}):\n"
        "        try:\n"
        "            open(path, 'w').write('x')\n"
        "            done = True\n"
        "        except OSError:\n"
        "            pass\n"
        "    try:\n"
        f"        os.remove({str(victim)!r})\n"
        "        done = True\n"
        "    except OSError:\n"
        "        pass\n"
        "    return done\n"
    )
    assert scorer(answer(code), item()) is False
    assert not planted.exists()
    assert not (tmp_path / "new.txt").exists()
    assert victim.read_text() == "keep me"


def test_writing_inside_the_work_folder_works_and_is_deleted(tmp_path: Path) -> None:
    code = "import os\nopen('out.txt', 'w').write('x')\nprint(os.getcwd())\n"
    result = run_python(code)
    assert result.passed, result.output
    work = Path(result.output.strip())
    assert work.name == "work"
    assert not work.exists()


def test_an_api_key_in_the_environment_is_not_inherited(
    scorer: UnitTests, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_key = "sk-test-" + uuid.uuid4().hex
    monkeypatch.setenv("OPENAI_API_KEY", fake_key)
    code = (
        "import os, glob\n"
        "def attack():\n"
        f"    key = {fake_key!r}\n"
        "    if key in str(os.environ):\n"
        "        return True\n"
        "    for path in glob.glob('/proc/*/environ'):\n"
        "        try:\n"
        "            if key.encode() in open(path, 'rb').read():\n"
        "                return True\n"
        "        except OSError:\n"
        "            pass\n"
        "    return False\n"
    )
    assert os.environ["OPENAI_API_KEY"] == fake_key  # the key IS in the parent's environment
    assert scorer(answer(code), item()) is False


def test_opening_a_socket_to_a_listening_server_fails(scorer: UnitTests) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    code = (
        "import socket\n"
        "def attack():\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).close()\n"
        "    return True\n"
    )
    try:
        # The server is reachable from here: the same connection works outside the sandbox.
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        assert scorer(answer(code), item()) is False
    finally:
        stop.set()
        thread.join()
        server.close()
    assert len(accepted) == 1  # only the connection made from outside


def test_output_is_capped() -> None:
    result = run_python(
        "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n",
        limits=Limits(timeout_s=10, file_size_mb=1, output_chars=100),
    )
    assert result.status == "failed"
    assert len(result.output) <= 100


def test_code_execution_is_off_unless_the_user_opts_in() -> None:
    model = FunctionModel(lambda r: "```python\ndef add(a, b):\n    return a + b\n```")
    items = [
        PromptItem(id="add", prompt="add", reference="assert add(1, 2) == 3", scorers=["pass"])
    ]
    sent: list[object] = []
    counting = FunctionModel(lambda r: sent.append(r) or "x")
    with pytest.raises(ConfigurationError, match="allow_code_execution=True"):
        compare([counting], items, progress=False, cache=False)
    assert not sent  # refused before anything was sent
    with pytest.warns(CodeExecutionWarning, match="no network"):
        result = compare([model], items, progress=False, cache=False, allow_code_execution=True)
    assert result.row("add", model.id).scores == {"unit_tests": 1.0}
    with pytest.raises(ConfigurationError, match="allow_code_execution=True"):
        result.rescore()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CodeExecutionWarning)
        again = result.rescore(allow_code_execution=True)
    assert again.row("add", model.id).scores == {"unit_tests": 1.0}


def test_without_namespaces_it_refuses_unless_the_user_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.platform", "darwin")
    with pytest.raises(SandboxUnavailable, match="cannot deny the network"):
        run_python("print('hi')")
    accepted = run_python("print('hi')", allow_network=True)
    assert accepted.passed
    assert not accepted.isolated


def test_making_the_file_system_writable_again_fails(scorer: UnitTests) -> None:
    # Root of its namespace could bind-mount /tmp and remount the bind writable: the program
    # holds no capabilities, and a namespace of its own gets the mounts locked read-only.
    planted = f"llmcompare-planted-{uuid.uuid4().hex}"
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def escape():\n"
        "    os.makedirs('x', exist_ok=True)\n"
        "    if libc.mount(b'/tmp', b'x', None, 4096, None) != 0:\n"  # MS_BIND
        "        return False\n"
        "    libc.mount(None, b'x', None, 4096 | 32, None)\n"  # MS_REMOUNT: writable
        "    try:\n"
        f"        open('x/{planted}', 'w').write('x')\n"
        "    except OSError:\n"
        "        return False\n"
        "    return True\n"
        "def attack():\n"
        "    if escape():\n"
        "        return True\n"
        "    libc.unshare(0x10000000 | 0x00020000)\n"  # a user + mount namespace of its own
        "    return escape()\n"
    )
    assert scorer(answer(code), item()) is False
    assert not (Path("/tmp") / planted).exists()


def test_dev_holds_only_harmless_devices() -> None:
    result = run_python("import os\nprint(sorted(os.listdir('/dev')))\n")
    assert result.passed, result.output
    assert result.output.strip() == "['null', 'random', 'urandom', 'zero']"


WRONG_ADD = "def add(a, b):\n    return 0\n"
ADD_TESTS = "def check(candidate):\n    assert candidate(2, 3) == 5\n\ncheck(add)\n"


@pytest.mark.parametrize(
    "trick",
    [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "import atexit, sys\natexit.register(lambda: sys.exit(0))",
        "import atexit, os\natexit.register(lambda: os._exit(0))",
        # A check of its own: the tests define theirs after the answer, so it is redefined.
        "def check(candidate):\n    pass",
        # Builtins and hooks the tests rely on.
        "import builtins\nbuiltins.AssertionError = type('Nope', (Exception,), {})",
        "__builtins__['isinstance'] = lambda *a: True",
        "import builtins\nbuiltins.exec = lambda *a, **k: None\n"
        "builtins.compile = lambda *a, **k: None",
        "import sys\nsys.settrace(lambda *a: None)\nsys.settrace = lambda f: None",
        # Printing what a naive harness might take for a pass, on every channel it can reach.
        "import os\nfor fd in range(1, 64):\n    try:\n        os.write(fd, b'PASSED\\n')\n"
        "    except OSError:\n        pass\nimport sys\nsys.exit(0)",
        # Looking for the token where a harness might leave it: files, argv, environment.
        "import os, sys\nfor fd in range(3, 64):\n    try:\n        data = os.read(fd, 256)\n"
        "        os.write(4, data)\n    except OSError:\n        pass\n"
        "print(sys.argv, dict(os.environ), os.listdir('.'))\nos._exit(0)",
        # A thread that ends the run while the tests are running.
        "import threading, time, os\n"
        "threading.Thread(target=lambda: (time.sleep(0.05), os._exit(0))).start()",
        # A result equal to everything, as an int: only the exact built-in types are plain.
        "class Int(int):\n    def __eq__(self, other):\n        return True\n"
        "def add(a, b):\n    return Int(0)",
    ],
)
def test_a_wrong_answer_cannot_forge_a_pass(scorer: UnitTests, trick: str) -> None:
    assert scorer(answer(WRONG_ADD + trick), item(ADD_TESTS)) is False
    # The same trick with a right answer still passes where it leaves the tests alone.
    right = "def add(a, b):\n    return a + b\n"
    assert scorer(answer(right), item(ADD_TESTS)) is True


def test_a_result_whose_truth_flips_scores_0(scorer: UnitTests) -> None:
    code = (
        "class Flip:\n"
        "    state = False\n"
        "    def __bool__(self):\n"
        "        Flip.state = not Flip.state\n"
        "        return Flip.state\n"
        "def is_even(n):\n"
        "    return Flip()\n"
    )
    assert scorer(answer(code), item("assert is_even(2)\nassert not is_even(3)\n")) is False


def test_a_result_of_the_type_the_tests_expect_is_compared(scorer: UnitTests) -> None:
    tests = (
        "from fractions import Fraction\n"
        "assert half() == Fraction(1, 2)\n"
        "assert [half()] == [Fraction(1, 2)] and half() in {Fraction(1, 2)}\n"
    )
    right = "from fractions import Fraction\ndef half():\n    return Fraction(1, 2)\n"
    wrong = "from fractions import Fraction\ndef half():\n    return Fraction(1, 3)\n"
    assert scorer(answer(right), item(tests)) is True
    assert scorer(answer(wrong), item(tests)) is False


def test_a_builtin_the_tests_use_is_restored_before_they_run(scorer: UnitTests) -> None:
    code = "import builtins\nbuiltins.abs = lambda x: 0\ndef close(x):\n    return 0.0\n"
    tests = "assert abs(close(1.0) - 3.14) < 1e-6\n"
    assert scorer(answer(code), item(tests)) is False


def test_the_work_folder_is_capped_in_size() -> None:
    # 128 files of 1 MiB, each under the file-size limit: more than the 64 MiB folder holds.
    code = (
        "import os\n"
        "written = 0\n"
        "try:\n"
        "    for i in range(128):\n"
        "        with open(f'f{i}', 'wb') as f:\n"
        "            f.write(b'x' * 1024 * 1024)\n"
        "        written += 1\n"
        "except OSError as exc:\n"
        "    print(written, exc.errno)\n"
        "    raise SystemExit(3)\n"
    )
    result = run_python(code, limits=Limits(work_mb=64))
    assert result.returncode == 3, result.output
    written, errno = map(int, result.output.split())
    assert errno == 28  # ENOSPC
    assert 50 <= written <= 64


def test_the_program_sees_only_its_own_processes_and_no_private_tree(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("s3cret")
    private = ["/root", "/work", "/home", "/tmp", str(Path.home())]
    code = (
        "import json, os\n"
        f"print(json.dumps([os.path.exists({str(secret)!r}),\n"
        f"    {{d: sorted(os.listdir(d)) for d in {private!r} if os.path.isdir(d)}},\n"
        "    sorted(int(p) for p in os.listdir('/proc') if p.isdigit()), os.getcwd()]))\n"
    )
    result = run_python(code)
    assert result.passed, result.output
    seen_secret, listings, pids, work = json.loads(result.output)
    assert seen_secret is False
    # Only itself, PID 1 of its namespace, not the host's processes; where the kernel refuses a
    # new procfs (a container masking parts of its /proc), no /proc at all.
    assert pids in ([1], [])
    for folder, names in listings.items():
        # At most the way down to this Python's own install (which may live under /root) and
        # to its own work folder.
        on_the_way = {
            Path(p).relative_to(folder).parts[0]
            for p in (sys.prefix, sys.base_prefix, work)
            if Path(p).is_relative_to(folder) and Path(p) != Path(folder)
        }
        assert set(names) <= on_the_way, (folder, names)


def test_where_the_kernel_refuses_namespaces_the_one_line_error_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The kernel's refusal, as the bootstrap reports it (no real machine here refuses it).
    refused = (
        "import sys\nsys.stderr.write('SANDBOX-UNAVAILABLE unshare: Operation not permitted')\n"
    )
    monkeypatch.setattr("llmcompare.sandbox._process._BOOTSTRAP", refused + "sys.exit(97)\n")
    with pytest.raises(SandboxUnavailable) as caught:
        run_python("print('hi')")
    message = str(caught.value)
    assert "\n" not in message
    assert "unshare: Operation not permitted" in message
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in message
    assert "allow_network=True" in message


def processes_with(text: str) -> list[int]:
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    )
    return [int(line.split()[0]) for line in out.stdout.splitlines() if text in line]


def eventually(condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` comes true within a minute (it is polled, never timed)."""
    for _ in range(600):
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_killing_the_run_leaves_no_sandboxed_process_and_no_temp_folder(tmp_path: Path) -> None:
    # A CI timeout or the OOM killer: SIGKILL of the process that called run_python.
    marker = f"llmcompare-marker-{uuid.uuid4().hex}"
    temp = tmp_path / "tmp"
    temp.mkdir()
    # The program puts the marker in its command line (it runs again with it), then waits. The
    # marker is joined in the program, so the command line of the run does not hold it.
    half = len(marker) // 2
    program = (
        "import os, sys\n"
        f"marker = {marker[:half]!r} + {marker[half:]!r}\n"
        "os.execv(sys.executable,\n"
        "    [sys.executable, '-c', 'import time; time.sleep(600)', marker])\n"
    )
    script = (
        "from llmcompare.sandbox import Limits, run_python\n"
        f"run_python({program!r}, limits=Limits(timeout_s=900, cpu_s=900))\n"
    )
    run = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, "TMPDIR": str(temp)})
    try:
        assert eventually(lambda: bool(processes_with(marker))), "the program never started"
        assert any(temp.iterdir())  # its temp folder
        run.kill()
        run.wait()
        assert eventually(lambda: not processes_with(marker)), "the program outlived the run"
        assert eventually(lambda: not processes_with(str(temp))), "the sandbox outlived the run"
        assert eventually(lambda: not any(temp.iterdir())), list(temp.iterdir())
    finally:
        run.kill()
        for pid in processes_with(marker) + processes_with(str(temp)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


FORK_BOMB = (
    "import os, time\n"
    "made = 0\n"
    "try:\n"
    "    for i in range(300):\n"
    "        if os.fork() == 0:\n"
    "            time.sleep(5)\n"
    "            os._exit(0)\n"
    "        made += 1\n"
    "finally:\n"
    "    print('forked', made)\n"
)


def test_the_process_cap_binds_as_root_without_a_pids_cgroup() -> None:
    # As root, RLIMIT_NPROC does not bind uid 0, and a container may give no writable pids
    # cgroup: hide every cgroup behind a read-only tmpfs, as such a container does.
    script = (
        "from llmcompare.sandbox import Limits, run_python\n"
        f"print(run_python({FORK_BOMB!r}, limits=Limits(processes=16, timeout_s=60)).output)\n"
    )
    command = [sys.executable, "-c", script]
    hidden = [
        "unshare", "-m", "sh", "-c",
        'mount -t tmpfs -o ro tmpfs /sys/fs/cgroup || exit 77; exec "$@"', "sh", *command,
    ]  # fmt: skip
    done = None
    if os.geteuid() == 0 and shutil.which("unshare"):
        done = subprocess.run(hidden, check=False, capture_output=True, text=True, timeout=300)
    if done is None or done.returncode == 77:  # not root, or no mount here: the cap as it is
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = re.search(r"forked (\d+)", done.stdout)
    assert found, done.stdout
    assert 0 < int(found.group(1)) < 16, done.stdout
