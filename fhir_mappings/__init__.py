"""Step 2 of request -> chart -> facts -> findings -> cards: FHIR resources to criteria inputs."""
