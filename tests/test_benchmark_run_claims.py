"""Tests for benchmarks/run_claims.py: one process per run among processes sharing a results file."""

import json
import os
import socket
import sys
import time

from conftest import REPO_ROOT, start_command

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import run_claims  # pylint: disable=wrong-import-position

_HERE = {"host": socket.gethostname()}


def test_a_claim_holds_this_process_until_released(tmp_path):
  claims = str(tmp_path / "r.jsonl.claims")
  assert run_claims.holder(claims, "k") is None
  assert run_claims.claim(claims, "k")
  assert run_claims.holder(claims, "k") == {**_HERE, "pid": os.getpid()}
  assert not run_claims.claim(claims, "k")  # held, by a live process
  assert run_claims.claim(claims, "other")
  run_claims.release(claims, "k")
  assert run_claims.holder(claims, "k") is None
  assert run_claims.holder(claims, "other") == {**_HERE, "pid": os.getpid()}


def test_a_dead_process_claim_is_taken_over(tmp_path):
  claims = tmp_path / "claims"
  claims.mkdir()
  sleeper = start_command(["sleep", "60"])
  (claims / "k").write_text(json.dumps({**_HERE, "pid": sleeper.pid}))
  assert not run_claims.claim(str(claims), "k")
  sleeper.kill()
  sleeper.communicate()
  assert run_claims.holder(str(claims), "k") is None
  assert run_claims.claim(str(claims), "k")
  assert json.loads((claims / "k").read_text())["pid"] == os.getpid()


def test_another_hosts_claim_is_left_alone_and_a_cut_one_is_free(tmp_path):
  claims = tmp_path / "claims"
  claims.mkdir()
  elsewhere = {"host": _HERE["host"] + "-elsewhere", "pid": 1}
  (claims / "k").write_text(json.dumps(elsewhere))
  assert not run_claims.claim(str(claims), "k")
  assert run_claims.holder(str(claims), "k") == elsewhere
  (claims / "cut").write_text('{"host": ')  # killed while writing
  assert run_claims.claim(str(claims), "cut")


def test_of_processes_racing_for_one_run_exactly_one_claims_it(tmp_path):
  script = ("import sys, time; sys.path.insert(0, sys.argv[1]); "
            "import run_claims; print(run_claims.claim(sys.argv[2], 'k')); "
            "sys.stdout.flush(); time.sleep(5)")
  racers = [start_command([sys.executable, "-c", script,
                           REPO_ROOT / "benchmarks", tmp_path / "claims"])
            for _ in range(6)]
  answers = [racer.stdout.readline().strip() for racer in racers]
  for racer in racers:
    racer.kill()
    racer.communicate()
  assert sorted(answers) == ["False"] * 5 + ["True"]


def test_lines_appended_by_many_processes_stay_whole(tmp_path):
  results = tmp_path / "r.jsonl"
  line = json.dumps({"row": "x" * 20000})  # far above one stdio buffer
  script = ("import sys; sys.path.insert(0, sys.argv[1]); import run_claims; "
            "[run_claims.append_line(sys.argv[2], sys.argv[3]) "
            "for _ in range(20)]")
  writers = [start_command([sys.executable, "-c", script,
                            REPO_ROOT / "benchmarks", results, line])
             for _ in range(4)]
  for writer in writers:
    writer.communicate()
  assert [writer.returncode for writer in writers] == [0] * 4
  assert results.read_text().splitlines() == [line] * 80


def test_an_append_waits_for_the_lock_a_rewrite_holds(tmp_path):
  results = tmp_path / "r.jsonl"
  results.write_text("")
  script = ("import sys; sys.path.insert(0, sys.argv[1]); import run_claims; "
            "run_claims.append_line(sys.argv[2], 'row'); print('appended')")
  with run_claims.locked(run_claims.claims_dir(str(results))):
    writer = start_command([sys.executable, "-c", script,
                            REPO_ROOT / "benchmarks", results])
    time.sleep(3)  # time enough to start and reach the lock
    assert writer.poll() is None
    assert results.read_text() == ""  # what --migrate rewrites stays whole
  assert writer.communicate()[0] == "appended\n"
  assert results.read_text() == "row\n"
