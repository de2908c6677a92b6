"""The Kubernetes Indexed Job of docs/autograder.md stays documentation, but valid: it is read from the doc
and checked against the Job schema of Kubernetes' OpenAPI (kubernetes-validate's bundled schemas, strict: no
unknown field). A misspelt field must be caught, so the check can fail."""

from __future__ import annotations

import copy
import os
import re

import pytest
import yaml

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "autograder.md")
VERSION = "1.33.0"  # backoffLimitPerIndex is GA from 1.33; appArmorProfile from 1.30


def manifest() -> dict:
    text = open(DOC, encoding="utf-8").read()
    m = re.search(r"Kubernetes Indexed Job.*?```yaml\n(.*?)```", text, re.S)
    assert m, "docs/autograder.md has no Kubernetes Job manifest"
    return yaml.safe_load(m.group(1))


def test_the_job_manifest_matches_the_job_schema():
    kv = pytest.importorskip("kubernetes_validate", reason="pip install kubernetes-validate (in the dev extra)")
    job = manifest()
    assert job["kind"] == "Job" and job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 8
    kv.validate(job, VERSION, strict=True)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"][0]
    assert '--shard "$((JOB_COMPLETION_INDEX + 1))/8"' in args  # shards 1..8, as many as completions
    for path, bad in ((("spec",), {"completionsMode": "Indexed"}),
                      (("spec", "template", "spec", "containers", 0), {"resource": {}})):
        broken = copy.deepcopy(job)
        node = broken
        for key in path:
            node = node[key]
        node.update(bad)
        with pytest.raises(kv.ValidationError):
            kv.validate(broken, VERSION, strict=True)
