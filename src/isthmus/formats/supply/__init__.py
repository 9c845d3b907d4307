"""Supply consumption feeds (issue 8): departmental inventory CSV and FHIR R4 supply."""
