"""Where things live and how they are written: the device, the folders, safe file writes."""
