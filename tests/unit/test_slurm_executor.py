"""What the Slurm executor hands to ``sbatch``, without a cluster: the command line, the
batch script's environment and command, and the shapes it refuses."""

from __future__ import annotations

import pwd

import pytest
from gpuhub.jobs.executor import JobDevice, JobSpec
from gpuhub.jobs.slurm import SlurmExecutor


def spec(**kw) -> JobSpec:
    devices = tuple(
        JobDevice(uuid=f"GPU-slurm-gpu1-{i}", index=i, model="H100-80GB") for i in range(2)
    )
    fields = dict(
        id=12, user="alice", name="train", kind="script", path="train.py",
        folder="gpuhub-jobs/12-train", source="print(1)\n", lease_id=7, gpus=2,
        shape={"kind": "gpu", "count": 2}, node="gpu1", devices=devices, max_runtime_s=3600,
        env={
            "GPUHUB_JOB_ID": "12", "GPUHUB_LEASE_ID": "7",
            "CUDA_VISIBLE_DEVICES": "GPU-slurm-gpu1-0,GPU-slurm-gpu1-1",
            "NVIDIA_VISIBLE_DEVICES": "GPU-slurm-gpu1-0,GPU-slurm-gpu1-1",
            "JUPYTERHUB_API_TOKEN": "secret",
        },
    )  # fmt: skip
    fields.update(kw)
    return JobSpec(**fields)


@pytest.fixture
def executor(tmp_path) -> SlurmExecutor:
    return SlurmExecutor(home_dir_template=str(tmp_path / "{username}"), python="/opt/py")


def test_sbatch_command_pins_node_gres_time_and_names(executor, tmp_path):
    argv = executor.sbatch_command(spec())
    folder = tmp_path / "alice/gpuhub-jobs/12-train"
    assert argv[:4] == ["sbatch", "--parsable", "--export=ALL", "--no-requeue"]
    for arg in (
        "--nodelist=gpu1", "--gres=gpu:h100:2", "--time=65", "--signal=B:USR1@90",
        "--job-name=gpuhub-12", "--comment=gpuhub:lease=7", f"--output={folder}/slurm.out",
        f"--chdir={folder}",
    ):  # fmt: skip
        assert arg in argv
    assert argv[-1] == f"{folder}/slurm.sh"
    assert not any(a.startswith(("--uid", "--partition", "--account")) for a in argv)


def test_settings_add_their_options(tmp_path):
    executor = SlurmExecutor(
        home_dir_template=str(tmp_path / "{username}"), partition="gpu", account="lab",
        submit_as_user=True, unix_user=lambda name: "nobody",
        sbatch_args=["--qos=x", "--requeue"], time_margin_s=0, signal_lead_s=0,
    )  # fmt: skip
    argv = executor.sbatch_command(spec(max_runtime_s=61))
    nobody = pwd.getpwnam("nobody")  # the account's own group, never root's
    assert {"--partition=gpu", "--account=lab", "--uid=nobody", f"--gid={nobody.pw_gid}",
            "--qos=x", "--time=2"} <= set(argv)  # fmt: skip
    assert argv.index("--no-requeue") > argv.index("--requeue")  # gpuhub decides, not Slurm
    assert not any(a.startswith("--signal") for a in argv)
    assert argv[-1].startswith(str(tmp_path / "nobody"))
    assert "--time" not in " ".join(executor.sbatch_command(spec(max_runtime_s=None)))


def test_gres_type_from_model(executor):
    l4 = (JobDevice(uuid="GPU-slurm-gpu3-0", index=0, model="L4-24GB"),)
    assert executor.gres(spec(devices=l4, gpus=1)) == "gpu:l4:1"
    odd = (JobDevice(uuid="x", index=0, model="weird"),)
    assert executor.gres(spec(devices=odd, gpus=1)) == "gpu:weird:1"  # kept as the type
    assert executor.gres(spec(devices=(), gpus=3, shape={"kind": "gpu"})) == "gpu:3"
    assert executor.gres(spec(devices=(), gpus=0, shape={})) is None
    untyped = SlurmExecutor(models={"": "GPU"})
    assert untyped.gres(spec(devices=(JobDevice(uuid="x", model="GPU"),), gpus=1)) == "gpu:1"


@pytest.mark.parametrize("shape", [{"kind": "mig", "profile": "1g.10gb"}, {"kind": "shared"}])
def test_mig_and_shared_shapes_are_refused(executor, shape):
    with pytest.raises(ValueError, match="whole GPUs only"):
        executor.sbatch_command(spec(shape=shape))


def test_batch_script_environment_and_signals(executor, tmp_path):
    script = executor.batch_script(spec())
    folder = tmp_path / "alice/gpuhub-jobs/12-train"
    assert "CUDA_VISIBLE_DEVICES" not in script and "NVIDIA_VISIBLE_DEVICES" not in script
    assert "secret" not in script and "JUPYTERHUB" not in script
    assert f"export HOME={tmp_path / 'alice'}" in script
    assert f"export GPUHUB_OUTPUT_DIR={folder}/artifacts" in script
    assert f"/opt/py -m gpuhub.jobs.runner {folder} &" in script
    assert f"export GPUHUB_PREEMPT_FILE={folder}/preempt.json" in script
    assert "trap 'kill -TERM $runner 2>/dev/null' TERM" in script  # USR1: see test_spot_jobs


def test_container_command_wraps_the_runner(tmp_path):
    executor = SlurmExecutor(
        home_dir_template=str(tmp_path / "{username}"), python="python3",
        container_command=["apptainer", "exec", "--nv", "--bind", "{folder}", "{image}"],
    )  # fmt: skip
    folder = str(tmp_path / "alice/gpuhub-jobs/12-train")
    assert executor.command(spec(image="/images/train.sif")) == [
        "apptainer", "exec", "--nv", "--bind", folder, "/images/train.sif",
        "python3", "-m", "gpuhub.jobs.runner", folder,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="names no image"):
        executor.command(spec(image=None))
    with pytest.raises(ValueError, match="spans 2 nodes, and this site runs jobs in a container"):
        executor.command(spec(image="/images/train.sif", shape={"kind": "gpu", "nodes": 2}))


def test_a_multinode_job_asks_slurm_for_its_nodes_with_one_task_each(executor):
    devices = tuple(
        JobDevice(uuid=f"g{n}{i}", index=i, model="H100-80GB", node=n)
        for n in ("gpu1", "gpu2")
        for i in (0, 1)
    )
    argv = executor.sbatch_command(
        spec(
            node="gpu1,gpu2", devices=devices, gpus=2, shape={"kind": "gpu", "count": 2, "nodes": 2}
        )
    )
    assert "--nodelist=gpu1,gpu2" in argv and "--nodes=2" in argv
    assert "--ntasks-per-node=1" in argv and "--gres=gpu:h100:2" in argv  # per node
    assert "--nodes=2" not in executor.sbatch_command(spec())


def test_models_default_to_the_inventory_setting():
    from traitlets.config import Config

    config = Config({"SlurmInventory": {"models": {"a100_40g": "A100-40GB"}}})
    executor = SlurmExecutor(config=config)
    devices = (JobDevice(uuid="x", index=0, model="A100-40GB"),)
    assert executor.gres(spec(devices=devices, gpus=1)) == "gpu:a100_40g:1"


def test_placed_reads_the_indices_slurm_gave_on_the_node(tmp_path):
    """`scontrol show job -d` names the GPUs Slurm picked; a job not placed yet (pending,
    or no GRES there) or forgotten answers None, and a failing controller raises."""
    from gpuhub.inventory.slurm import SlurmError

    from tests.support.slurm_output import JOBS, NO_CONTROLLER

    records = {line.split()[0].removeprefix("JobId="): line for line in JOBS.splitlines()}
    asked = []

    def runner(argv):
        asked.append(list(argv))
        if argv[-1] == "999":
            raise SlurmError("`scontrol` failed (exit status 1): Invalid job id specified")
        if argv[-1] == "down":
            raise SlurmError(NO_CONTROLLER)
        return records[argv[-1]] + "\n"

    executor = SlurmExecutor(home_dir_template=str(tmp_path / "{username}"), runner=runner)
    assert executor.picks_devices
    assert executor.placed(spec(node="gpu1"), {"slurm_job": "8"}) == (1, 2)
    assert asked[0] == ["scontrol", "show", "job", "-d", "-o", "8"]
    assert executor.placed(spec(node="gpu2"), {"slurm_job": "10"}) == (0,)  # its part there
    assert executor.placed(spec(node="gpu2"), {"slurm_job": "8"}) is None  # nothing there
    assert executor.placed(spec(node="gpu1"), {"slurm_job": "1"}) is None  # ended
    assert executor.placed(spec(node="gpu1"), {"slurm_job": "999"}) is None  # forgotten
    with pytest.raises(SlurmError, match="Unable to contact"):
        executor.placed(spec(node="gpu1"), {"slurm_job": "down"})


def test_a_job_whose_node_failed_ends_node_failed_naming_the_node_and_why(tmp_path):
    """Slurm ended the job NODE_FAIL (never requeued): the outcome is ``node_failed``, with
    the node's reason in Slurm (its ``[user@time]`` left out), or a sentence without one."""
    from gpuhub.inventory.slurm import SlurmError
    from gpuhub.jobs.views import outcome

    from tests.support.slurm_output import NODES_BUSY

    node = [NODES_BUSY.splitlines()[2] + "\n"]  # gpu3 DOWN, Reason=broken [root@...]

    def runner(argv):
        if argv[0] == "squeue":
            return ""  # squeue lists no ended job
        if argv[:3] == ["scontrol", "show", "job"]:
            return "JobId=42 JobName=gpuhub-12 JobState=NODE_FAIL Reason=NodeDown\n"
        if isinstance(node[0], Exception):
            raise node[0]
        return node[0]

    executor = SlurmExecutor(home_dir_template=str(tmp_path / "{username}"), runner=runner)
    ended = executor.poll(spec(node="gpu3"), {"slurm_job": "42"})
    assert ended.outcome == "node_failed"
    assert ended.error == "node gpu3 failed: broken (Slurm job 42 ended with it)"
    assert outcome(ended) == ("node_failed", ended.error)
    node[0] = SlurmError("`scontrol` failed: Unable to contact slurm controller")
    ended = executor.poll(spec(node="gpu3"), {"slurm_job": "42"})
    assert ended.error == "node gpu3 failed; Slurm gives no reason now (Slurm job 42 ended with it)"
