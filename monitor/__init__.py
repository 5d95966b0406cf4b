"""imn-monitor's pure clinical engine: no I/O, no clock; everything takes `as_of`."""

from monitor.assess import Assessment, assess
from monitor.events import LabResult, MedicationEvent, Patient, parse_event
from monitor.findings import Evidence, Finding
from monitor.timeline import Timeline

__all__ = ["Assessment", "Evidence", "Finding", "LabResult", "MedicationEvent", "Patient", "Timeline",
           "assess", "parse_event"]
