"""History in and out: imported from Oxidized repositories and folders, mirrored to git after each run,
exported whole."""
