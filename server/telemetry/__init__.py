"""Client telemetry: ``POST /api/telemetry`` validates a browser's batch, feeds the metrics and the timeline."""
