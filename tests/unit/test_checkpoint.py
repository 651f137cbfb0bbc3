"""gpuhub.checkpoint: atomic checkpoints, keep-N, and the preemption notice.

Real files under ``tmp_path``, real signals (to this process inside ``on_notice``, and to
a script run as a job's process would be), and a save killed halfway. The torch tests
and the example notebook's run need torch in this environment and are skipped without.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from gpuhub import checkpoint

from tests.support.paths import REPO

HAS_TORCH = importlib.util.find_spec("torch") is not None
NO_TORCH = "torch is not installed in this environment (the gpuhub/pytorch image has it)"


@pytest.fixture(autouse=True)
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a job, in ``tmp_path``, with no notice received yet."""
    for name in ("GPUHUB_OUTPUT_DIR", "GPUHUB_PREEMPT_FILE", "GPUHUB_ATTEMPT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(checkpoint, "_signalled", None)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- where, and which attempt ----------------------------------------------------------


def test_the_folder_is_the_jobs_output_folder_or_the_current_one(tmp_path, monkeypatch):
    assert checkpoint.folder() == tmp_path / "checkpoints"
    monkeypatch.setenv("GPUHUB_OUTPUT_DIR", str(tmp_path / "artifacts"))
    assert checkpoint.folder() == tmp_path / "artifacts" / "checkpoints"


def test_attempt_counts_from_one(monkeypatch):
    assert checkpoint.attempt() == 1
    monkeypatch.setenv("GPUHUB_ATTEMPT", "3")
    assert checkpoint.attempt() == 3


# -- save and latest -------------------------------------------------------------------


def test_save_and_load_back_the_latest(tmp_path, monkeypatch):
    monkeypatch.setenv("GPUHUB_OUTPUT_DIR", str(tmp_path / "artifacts"))
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # no torch here: pickle
    assert checkpoint.latest() is None
    first = checkpoint.save({"step": 1, "weights": [0.5]}, 1)
    assert first == tmp_path / "artifacts" / "checkpoints" / "checkpoint-00000001.pt"
    assert first.read_bytes()[:1] == b"\x80"  # pickle
    checkpoint.save({"step": 12, "weights": [0.25]}, 12)
    found = checkpoint.latest()
    assert found is not None and found.step == 12 and found.path.name == "checkpoint-00000012.pt"
    assert found.load() == {"step": 12, "weights": [0.25]}
    # an earlier job's output folder (its artifacts/) finds its checkpoints/
    assert checkpoint.latest(tmp_path / "artifacts") == found
    assert checkpoint.latest(tmp_path / "nowhere") is None


def test_steps_order_numerically_past_eight_digits(tmp_path):
    checkpoint.save("a", 99_999_999, keep=None)
    path = checkpoint.save("b", 100_000_000, keep=None)
    assert path.name == "checkpoint-100000000.pt" and checkpoint.latest().load() == "b"


def test_keep_leaves_the_newest_and_never_the_one_just_saved(tmp_path):
    for step in range(1, 6):
        checkpoint.save({"step": step}, step)
    where = checkpoint.folder()
    assert names(where) == [f"checkpoint-0000000{n}.pt" for n in (3, 4, 5)]
    checkpoint.save({"step": 2}, 2, keep=2)  # older than the rest: kept all the same
    assert names(where) == [f"checkpoint-0000000{n}.pt" for n in (2, 4, 5)]
    assert checkpoint.latest().step == 5
    checkpoint.save({"step": 6}, 6, keep=None)
    assert len(names(where)) == 4


def test_save_to_a_folder_of_ones_own(tmp_path):
    path = checkpoint.save([1, 2], 7, folder=tmp_path / "mine")
    assert path.parent == tmp_path / "mine" and not checkpoint.folder().exists()
    assert checkpoint.latest(tmp_path / "mine").load() == [1, 2]


@pytest.mark.parametrize("step", [-1, 1.0, True, "3"])
def test_a_step_is_a_whole_number(step):
    with pytest.raises(ValueError, match="step is an int >= 0"):
        checkpoint.save({}, step)


def test_keep_is_one_or_more():
    with pytest.raises(ValueError, match="keep is the number of checkpoints"):
        checkpoint.save({}, 1, keep=0)


# -- atomic ----------------------------------------------------------------------------


def test_what_a_stopped_save_left_is_never_a_checkpoint_and_is_cleared_later(tmp_path):
    checkpoint.save({"step": 1}, 1)
    where = checkpoint.folder()
    (where / ".checkpoint-00000002.pt.0badc0de.tmp").write_bytes(b"\x80half a pick")
    (where / "checkpoint-00000003.pt.partial").write_bytes(b"??")
    (where / "checkpoint-00000004.pt").mkdir()  # not a file
    assert checkpoint.latest().step == 1
    checkpoint.save({"step": 2}, 2)
    assert ".checkpoint-00000002.pt.0badc0de.tmp" in names(where)  # not from before step 2
    checkpoint.save({"step": 3}, 3)
    assert ".checkpoint-00000002.pt.0badc0de.tmp" not in names(where)
    assert checkpoint.latest().load() == {"step": 3}


def test_a_save_that_fails_leaves_no_file_and_the_previous_checkpoint(tmp_path):
    checkpoint.save({"step": 1}, 1)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        checkpoint.save({"step": 2, "fn": lambda: None}, 2)
    assert names(checkpoint.folder()) == ["checkpoint-00000001.pt"]
    assert checkpoint.latest().step == 1


KILLED_MIDWAY = """
import os, signal
from gpuhub import checkpoint

class Killer:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

checkpoint.save({"step": 1}, 1)
checkpoint.save({"blob": b"x" * 1_000_000, "then": Killer()}, 2)
"""


def test_a_save_killed_halfway_leaves_the_previous_checkpoint_newest(tmp_path):
    proc = subprocess.run([sys.executable, "-c", KILLED_MIDWAY], cwd=tmp_path, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    where = checkpoint.folder()
    [temp] = [n for n in names(where) if n.endswith(".tmp")]
    assert (where / temp).stat().st_size >= 1_000_000  # written halfway, then killed
    found = checkpoint.latest()
    assert found.step == 1 and found.load() == {"step": 1}


# -- torch -----------------------------------------------------------------------------


@pytest.mark.skipif(not HAS_TORCH, reason=NO_TORCH)
def test_torch_states_are_saved_with_torch_and_load_back(tmp_path):
    import torch

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 4}
    path = checkpoint.save(state, 4)
    assert path.read_bytes()[:4] == b"PK\x03\x04"  # torch's zip format
    loaded = checkpoint.latest().load(map_location="cpu")
    assert loaded["epoch"] == 4
    assert torch.equal(loaded["model"]["weight"], model.state_dict()["weight"])
    again = torch.nn.Linear(3, 2)
    again.load_state_dict(loaded["model"])


# -- the notice: file and signals ------------------------------------------------------


def test_the_notice_file(tmp_path, monkeypatch):
    assert not checkpoint.notice_given() and checkpoint.notice() is None
    path = tmp_path / "preempt.json"
    monkeypatch.setenv("GPUHUB_PREEMPT_FILE", str(path))
    assert not checkpoint.notice_given() and checkpoint.notice() is None
    given = {
        "reason": "preempted",
        "notice_at": "2026-12-07T08:00:00+00:00",
        "deadline": "2026-12-07T08:02:00+00:00",
        "grace_s": 120,
    }
    path.write_text(json.dumps(given))
    assert checkpoint.notice_given() and checkpoint.notice() == given
    path.write_text('{"reason": "pre')  # being written
    assert checkpoint.notice_given() and checkpoint.notice() == {}


def test_a_notice_to_an_earlier_attempt_is_no_notice(tmp_path, monkeypatch):
    path = tmp_path / "preempt.json"
    path.write_text('{"reason": "preempted", "attempt": 1}')
    monkeypatch.setenv("GPUHUB_PREEMPT_FILE", str(path))
    assert checkpoint.notice() == {"reason": "preempted", "attempt": 1}
    monkeypatch.setenv("GPUHUB_ATTEMPT", "2")
    assert not checkpoint.notice_given() and checkpoint.notice() is None
    path.write_text('{"reason": "preempted", "attempt": 2}')
    assert checkpoint.notice_given()


def test_sigusr1_in_on_notice_sets_the_flag_and_the_handler_goes_back():
    before = signal.getsignal(signal.SIGUSR1)
    with checkpoint.on_notice() as watch:
        if signal.SIGUSR1 not in watch.catching:
            pytest.skip("the test does not run in the main thread: no handler to catch it")
        assert not checkpoint.notice_given() and not watch.check()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert watch.given() and checkpoint.notice_given() and watch.check()
        assert watch.received == signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) == before
    assert checkpoint.notice_given()  # a notice stays given


def test_check_saves_once_on_notice(tmp_path, monkeypatch):
    notice = tmp_path / "preempt.json"
    monkeypatch.setenv("GPUHUB_PREEMPT_FILE", str(notice))
    step, stopped_at = 0, None
    with checkpoint.on_notice(lambda: checkpoint.save({"step": step}, step)) as watch:
        for step in range(1, 10):
            if step == 4:
                notice.write_text("{}")
            if watch.check():
                stopped_at = step
                break
    assert stopped_at == 4 and watch.check()  # and no second save
    assert watch.saved == checkpoint.folder() / "checkpoint-00000004.pt"
    assert names(checkpoint.folder()) == ["checkpoint-00000004.pt"]


def test_sigterm_is_notice_too_and_is_delivered_again_when_the_block_ends():
    got: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: got.append(signum))
    try:
        with checkpoint.on_notice() as watch:
            if signal.SIGTERM not in watch.catching:
                pytest.skip("the test does not run in the main thread: no handler to catch it")
            os.kill(os.getpid(), signal.SIGTERM)
            assert watch.check() and got == []  # held back while the job saves
        assert got == [signal.SIGTERM]
        with checkpoint.on_notice(sigterm=False) as watch:
            assert watch.catching == (signal.SIGUSR1,)
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_outside_the_main_thread_the_notice_file_tells(tmp_path, monkeypatch):
    notice = tmp_path / "preempt.json"
    monkeypatch.setenv("GPUHUB_PREEMPT_FILE", str(notice))
    before = signal.getsignal(signal.SIGUSR1)
    seen: list[object] = []

    def train() -> None:
        with checkpoint.on_notice(lambda: "saved") as watch:
            seen.append(watch.catching)
            seen.append(watch.check())
            notice.write_text("{}")
            seen.append(watch.check())
            seen.append(watch.saved)

    worker = threading.Thread(target=train)
    worker.start()
    worker.join(timeout=10)
    assert seen == [(), False, True, "saved"]
    assert signal.getsignal(signal.SIGUSR1) == before


# -- a job's process, signalled as gpuhub does ------------------------------------------

JOB = """
import sys, time
from gpuhub import checkpoint

found = checkpoint.latest()
step = found.step if found else 0
print("attempt", checkpoint.attempt(), "from", step, flush=True)
with checkpoint.on_notice(lambda: checkpoint.save({"step": step}, step)) as watch:
    print("ready", flush=True)
    while step < 100_000:
        step += 1
        time.sleep(0.005)
        if watch.check():
            print("saved", watch.saved.name, flush=True)
            break
print("after the loop", flush=True)
"""


def start_job(tmp_path: Path, attempt: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "GPUHUB_OUTPUT_DIR": str(tmp_path / "artifacts"),
        "GPUHUB_PREEMPT_FILE": str(tmp_path / "preempt.json"),
        "GPUHUB_ATTEMPT": str(attempt),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", JOB], env=env, stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith(f"attempt {attempt} from")
    assert proc.stdout.readline() == "ready\n"
    return proc


def ended(proc: subprocess.Popen, within: float) -> tuple[int, str]:
    """The exit status and the rest of the output of ``proc``; SIGTERM (then SIGKILL)
    when it has not ended ``within`` seconds, as gpuhub does at the deadline."""
    try:
        out, _ = proc.communicate(timeout=within)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        pytest.fail(f"the job did not end within {within} s of the notice:\n{out}")
    return proc.returncode, out


def test_a_job_saves_and_exits_on_sigusr1_and_the_next_attempt_goes_on(tmp_path):
    proc = start_job(tmp_path, 1)
    time.sleep(0.2)
    (tmp_path / "preempt.json").write_text('{"reason": "preempted", "grace_s": 120}')
    proc.send_signal(signal.SIGUSR1)
    code, out = ended(proc, within=20)
    assert code == 0, out
    found = checkpoint.latest(tmp_path / "artifacts")
    assert found is not None and found.step > 0
    assert out == f"saved {found.path.name}\nafter the loop\n"
    assert found.load() == {"step": found.step}

    (tmp_path / "preempt.json").unlink()  # gpuhub clears the notice for the next attempt
    again = start_job(tmp_path, 2)  # started from found.step: checked in start_job's line
    again.send_signal(signal.SIGUSR1)
    code, out = ended(again, within=20)
    assert code == 0 and checkpoint.latest(tmp_path / "artifacts").step > found.step, out


def test_a_job_stopped_with_sigterm_saves_then_stops(tmp_path):
    proc = start_job(tmp_path, 1)
    proc.send_signal(signal.SIGTERM)
    code, out = ended(proc, within=20)
    assert code == -signal.SIGTERM, out
    assert out.startswith("saved checkpoint-") and "after the loop" not in out
    assert checkpoint.latest(tmp_path / "artifacts") is not None


# -- the example notebook --------------------------------------------------------------

EXAMPLE = REPO / "examples" / "train-classifier.ipynb"


def run_example(tmp_path: Path, attempt: int, **parameters: object) -> str:
    """The example's code cells as one script (``parameters`` after the parameters
    cell, as papermill injects them), run as a job's attempt; what it printed."""
    cells = json.loads(EXAMPLE.read_text())["cells"]
    code = []
    for cell in cells:
        if cell["cell_type"] == "code":
            code.append("".join(cell["source"]))
            if "parameters" in cell["metadata"].get("tags", []):
                code += [f"{name} = {value!r}" for name, value in parameters.items()]
    env = {
        **os.environ,
        "GPUHUB_OUTPUT_DIR": str(tmp_path / "artifacts"),
        "GPUHUB_PREEMPT_FILE": str(tmp_path / "preempt.json"),
        "GPUHUB_ATTEMPT": str(attempt),
        "CUDA_VISIBLE_DEVICES": "",
    }
    proc = subprocess.run(
        [sys.executable, "-c", "\n".join(code)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.skipif(not HAS_TORCH, reason=NO_TORCH)
def test_the_example_stops_on_notice_and_resumes(tmp_path):
    (tmp_path / "preempt.json").write_text('{"reason": "preempted"}')  # notice from the start
    out = run_example(tmp_path, 1, epochs=3, samples=512)
    assert "epoch 1/3: loss" in out and "epoch 2/3" not in out
    assert "preemption notice: stopping after epoch 1" in out
    assert checkpoint.latest(tmp_path / "artifacts").step == 1

    (tmp_path / "preempt.json").unlink()
    out = run_example(tmp_path, 2, epochs=3, samples=512)
    assert "checkpoint-00000001.pt (epoch 1)" in out
    assert "epoch 1/3" not in out and "epoch 3/3: loss" in out
    metrics = json.loads((tmp_path / "artifacts" / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2, 3]
    assert names(tmp_path / "artifacts" / "checkpoints") == [
        f"checkpoint-0000000{n}.pt" for n in (1, 2, 3)
    ]

    # a new job goes on from this one's artifacts/ (resume_from)
    other = tmp_path / "other"
    other.mkdir()
    out = run_example(other, 1, epochs=4, samples=512, resume_from=str(tmp_path / "artifacts"))
    assert "checkpoint-00000003.pt (epoch 3)" in out and "epoch 4/4: loss" in out
