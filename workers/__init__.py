"""Worker processes: poll Atelier's task queues and run workflows and activities."""
