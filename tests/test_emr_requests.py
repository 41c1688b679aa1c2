"""The EMR requests are plain data that botocore's own API model accepts, built from the one stage list."""

import botocore.session
import pytest
from botocore.validate import ParamValidator

from orchestration.emr import EmrSettings, job_flow, stage_steps, thrift_step
from orchestration.stages import NAMES
from python_jobs.errors import UserError

RUN_ID = "20261124T000000Z-daily"


def _validate(operation: str, params: dict) -> None:
    model = botocore.session.get_session().get_service_model("emr").operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_run_job_flow_validates_against_botocore():
    request = job_flow(EmrSettings(artifact_bucket="acme-artifacts", log_bucket="acme-logs", subnet_id="subnet-1"),
                       RUN_ID)
    _validate("RunJobFlow", request)
    assert request["ReleaseLabel"] == "emr-7.13.0" and request["Applications"] == [{"Name": "Spark"}]
    classifications = {c["Classification"]: c for c in request["Configurations"]}
    assert "AWSGlueDataCatalogHiveClientFactory" in str(classifications["spark-hive-site"])
    assert 60 <= request["AutoTerminationPolicy"]["IdleTimeout"] <= 7 * 24 * 3600


def test_add_job_flow_steps_validate_and_follow_the_stage_list():
    steps = [thrift_step(), *stage_steps(RUN_ID)]
    _validate("AddJobFlowSteps", {"JobFlowId": "j-123", "Steps": steps})
    stages = steps[1:]
    assert [s["Name"].split()[0] for s in stages] == list(NAMES)
    assert all(s["HadoopJarStep"]["Args"][-2:] == ["--run-id", RUN_ID] for s in stages)
    assert all(s["ActionOnFailure"] == "CANCEL_AND_WAIT" for s in stages)
    submitted = [s for s in stages if s["HadoopJarStep"]["Args"][0] == "spark-submit"]
    assert {s["Name"].split()[0] for s in submitted} == {"marts", "validate-inputs", "train", "validate-outputs", "publish"}


def test_a_bad_run_id_never_reaches_a_request():
    with pytest.raises(UserError):
        stage_steps("../../etc")
    with pytest.raises(UserError):
        job_flow(EmrSettings(artifact_bucket="a-b-c", log_bucket="a-b-c"), "today")
