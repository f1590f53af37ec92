"""Validates every line of an OCSF findings file (acl-audit scan --format ocsf) against the
Detection Finding model of py-ocsf-models (requirements/ocsf.txt): required attributes, types
and enumerations, and no attribute the class or its objects do not define (pydantic would
ignore one). Usage: validate_ocsf.py FILE; exit 0 when every line validates."""

import json
import sys

from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.objects.cloud import Cloud
from py_ocsf_models.objects.finding_info import FindingInformation
from py_ocsf_models.objects.metadata import Metadata
from py_ocsf_models.objects.resource_details import ResourceDetails


def unknown(value, model, where):
    """Attributes of `value` that `model` does not define."""
    extra = sorted(set(value) - set(model.model_fields))
    return [f"{where}: {extra} not in {model.__name__}"] if extra else []


def problems(event):
    found = unknown(event, DetectionFinding, "event")
    for name, model in [("finding_info", FindingInformation), ("metadata", Metadata), ("cloud", Cloud)]:
        if isinstance(event.get(name), dict):
            found += unknown(event[name], model, name)
    for index, resource in enumerate(event.get("resources") or []):
        found += unknown(resource, ResourceDetails, f"resources[{index}]")
    if event.get("class_uid") != 2004:
        found.append(f"class_uid {event.get('class_uid')}, expected 2004 (Detection Finding)")
    try:
        DetectionFinding.model_validate(event)
    except Exception as err:  # pydantic's ValidationError names every failing attribute
        found.append(str(err))
    return found


def main(path):
    lines = errors = 0
    with open(path, encoding="utf-8") as events:
        for number, line in enumerate(events, 1):
            if not line.strip():
                continue
            lines += 1
            for problem in problems(json.loads(line)):
                errors += 1
                print(f"line {number}: {problem}")
    print(f"{path}: {lines} events, {errors} problems")
    return 1 if errors or not lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
