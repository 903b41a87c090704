"""A demo run whose process is gone reads as Failed, also when its PID went to a later process."""

from __future__ import annotations

import subprocess
import time

from sconeflow.config import Settings
from sconeflow.workflow.runs import DemoRuns


def test_a_run_whose_pid_went_to_a_later_process_reads_as_failed(settings: Settings) -> None:
    runs = DemoRuns(settings)
    run_id = runs.start("/tmp/out")
    runs.step(run_id, "train")
    time.sleep(1.5)  # the bystander starts clearly after the run was recorded
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        # the kernel cannot be made to reuse a PID on demand: write the bystander's PID as the run's
        runs.db.execute("UPDATE workflow_demo_runs SET pid = ? WHERE id = ?", (bystander.pid, run_id))
        (run,) = runs.list()
        assert run.status == "Failed"
        assert run.summary["failed_step"] == "train"
        assert run.summary["error"].startswith("ProcessExited: the demo process")
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
